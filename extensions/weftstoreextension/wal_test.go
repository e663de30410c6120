package weftstoreextension

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/walsalvage"
)

// samplesPerPhase is how many samples each start writes, one transaction
// (one WAL record) each.
const samplesPerPhase = 8

// walPhase starts a store in dir (each start begins a new WAL segment),
// writes samplesPerPhase samples of the gauge name from base on, one per
// second, and shuts it down.
func walPhase(t *testing.T, dir, name string, base time.Time) {
	t.Helper()
	st := startStore(t, dir)
	writeSamples(t, st, name, base)
	require.NoError(t, st.Shutdown(context.Background()))
}

func startStore(t *testing.T, dir string) *Store {
	t.Helper()
	st, err := newStore(componenttest.NewNopTelemetrySettings(), withDefaults(func(c *Config) { c.Directory = dir }))
	require.NoError(t, err)
	require.NoError(t, st.Start(context.Background(), componenttest.NewNopHost()))
	return st
}

func writeSamples(t *testing.T, st *Store, name string, base time.Time) {
	t.Helper()
	for i := range samplesPerPhase {
		require.NoError(t, st.AppendMetrics(context.Background(), gaugeAt(otlpSource, name, base.Add(time.Duration(i)*time.Second), float64(i+1), "x")))
	}
}

// stored returns how many samples of the gauge name the store holds.
func stored(t *testing.T, st *Store, name string, base time.Time) int {
	t.Helper()
	v := instant(t, st.Queryable(), fmt.Sprintf("count_over_time(%s[10m])", name), base.Add(samplesPerPhase*time.Second))
	if len(v) == 0 {
		return 0
	}
	require.Len(t, v, 1)
	return int(v[0].F)
}

// recordEnds returns the offset after each record of the segment file fn.
func recordEnds(t *testing.T, fn string) []int64 {
	t.Helper()
	f, err := os.Open(fn)
	require.NoError(t, err)
	defer f.Close()
	r := wlog.NewReader(bufio.NewReader(f))
	var ends []int64
	for r.Next() {
		ends = append(ends, r.Offset())
	}
	require.NoError(t, r.Err())
	return ends
}

// dataSegments returns the WAL segments after the last checkpoint that
// hold records, in order. (Each start opens a segment, and its first
// retention pass cuts another one before checkpointing: a store's samples
// are in the second.)
func dataSegments(t *testing.T, dir string) []int {
	t.Helper()
	walDir := filepath.Join(dir, "wal")
	first, last, err := wlog.Segments(walDir)
	require.NoError(t, err)
	var segs []int
	for i := first; i <= last; i++ {
		if len(recordEnds(t, wlog.SegmentName(walDir, i))) > 0 {
			segs = append(segs, i)
		}
	}
	return segs
}

// damage damages the file fn inside record k (from 0): it flips a byte of
// the record's data, or cuts the file there. It returns the bytes of the
// file from the start of record k on, which the replay cannot read.
func damage(t *testing.T, fn string, ends []int64, k int, cut bool) int64 {
	t.Helper()
	at := ends[k-1] + 8 // past the 7-byte record header
	b, err := os.ReadFile(fn)
	require.NoError(t, err)
	if cut {
		require.NoError(t, os.Truncate(fn, at))
		return at - ends[k-1]
	}
	b[at] ^= 0xff
	require.NoError(t, os.WriteFile(fn, b, 0o640))
	return int64(len(b)) - ends[k-1]
}

// requireLoss checks the one loss of the last start and that the damaged
// original is kept.
func requireLoss(t *testing.T, st *Store, dir, reason, file string, bytes int64) {
	t.Helper()
	losses := st.OpenLosses()
	require.Len(t, losses, 1, "%+v", losses)
	l := losses[0]
	assert.Equal(t, reason, l.Reason)
	assert.Equal(t, file, l.File)
	assert.Equal(t, bytes, l.Bytes)
	assert.NotEmpty(t, l.Err)
	assert.True(t, strings.HasPrefix(l.MovedTo, "damaged-"), l.MovedTo)
	assert.FileExists(t, filepath.Join(dir, l.MovedTo), "the damaged original is kept")
	assert.Equal(t, bytes, st.Stats().LostBytes[reason])
}

// TestDamagedCheckpoint: a WAL checkpoint damaged in the middle (a flipped
// byte, or cut off) does not stop the start: the records before the damage
// and the segments after the checkpoint are replayed, the loss is counted
// with its reason, the original is moved aside, and the next start is
// clean.
func TestDamagedCheckpoint(t *testing.T) {
	for _, cut := range []bool{false, true} {
		t.Run(map[bool]string{false: "flipped byte", true: "cut off"}[cut], func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
			// The retention pass of each start checkpoints the older
			// segments: after the fourth, a and b are in the checkpoint.
			for _, n := range []string{"a", "b", "c", "d"} {
				walPhase(t, dir, n, base)
			}
			cpDir, _, err := wlog.LastCheckpoint(filepath.Join(dir, "wal"))
			require.NoError(t, err, "a checkpoint was made")
			require.Len(t, dataSegments(t, dir), 2, "c and d after the checkpoint")

			fn := wlog.SegmentName(cpDir, 0)
			ends := recordEnds(t, fn)
			// a's series record and samples, then b's: damage b's series record.
			require.Len(t, ends, 2*(1+samplesPerPhase))
			lost := damage(t, fn, ends, 1+samplesPerPhase, cut)

			st := startStore(t, dir)
			requireLoss(t, st, dir, walsalvage.CheckpointCorrupt, filepath.Join("wal", filepath.Base(cpDir), "00000000"), lost)
			for name, want := range map[string]int{"a": samplesPerPhase, "b": 0, "c": samplesPerPhase, "d": samplesPerPhase} {
				assert.Equal(t, want, stored(t, st, name, base), name)
			}
			require.NoError(t, st.Shutdown(context.Background()))

			st = startStore(t, dir)
			t.Cleanup(func() { require.NoError(t, st.Shutdown(context.Background())) })
			assert.Empty(t, st.OpenLosses(), "the second start is clean")
			assert.Zero(t, st.Stats().LostBytes[walsalvage.CheckpointCorrupt])
			for name, want := range map[string]int{"a": samplesPerPhase, "c": samplesPerPhase, "d": samplesPerPhase} {
				assert.Equal(t, want, stored(t, st, name, base), name)
			}
		})
	}
}

// TestDamagedSegment: a WAL segment damaged in the middle of the WAL, or
// the last one torn (a crash mid-write), does not stop the start: its
// records before the damage and the other segments are replayed, the loss
// is counted, and the next start is clean.
func TestDamagedSegment(t *testing.T) {
	// After three starts a is in the checkpoint, b and c in segments.
	tests := []struct {
		name    string
		segment int // of dataSegments: 0 holds b, 1 holds c
		cut     bool
	}{
		{"flipped byte in a middle segment", 0, false},
		{"middle segment cut off", 0, true},
		{"last segment torn", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
			for _, n := range []string{"a", "b", "c"} {
				walPhase(t, dir, n, base)
			}
			segs := dataSegments(t, dir)
			require.Len(t, segs, 2)
			seg := segs[tt.segment]
			fn := wlog.SegmentName(filepath.Join(dir, "wal"), seg)
			ends := recordEnds(t, fn)
			require.Len(t, ends, 1+samplesPerPhase, "a series record, then one record per sample")
			k := 1 + samplesPerPhase/2 // the samples before it are kept
			lost := damage(t, fn, ends, k, tt.cut)

			want := map[string]int{"a": samplesPerPhase, "b": samplesPerPhase, "c": samplesPerPhase}
			want[[]string{"b", "c"}[tt.segment]] = k - 1
			st := startStore(t, dir)
			requireLoss(t, st, dir, walsalvage.SegmentCorrupt, filepath.Join("wal", fmt.Sprintf("%08d", seg)), lost)
			for name, n := range want {
				assert.Equal(t, n, stored(t, st, name, base), name)
			}
			// The store keeps taking samples.
			writeSamples(t, st, "e", base.Add(time.Minute))
			require.NoError(t, st.Shutdown(context.Background()))

			st = startStore(t, dir)
			t.Cleanup(func() { require.NoError(t, st.Shutdown(context.Background())) })
			assert.Empty(t, st.OpenLosses(), "the second start is clean")
			for name, n := range want {
				assert.Equal(t, n, stored(t, st, name, base), name)
			}
			assert.Equal(t, samplesPerPhase, stored(t, st, "e", base.Add(time.Minute)))
		})
	}
}

// TestWALUnreadable: a checkpoint record that passes its checksum but does
// not decode escapes the salvage; tsdb.Open (v0.315.1) then deletes the
// WAL segments and fails ("repair corrupted WAL"). The store moves what is
// left aside, counts it, and starts empty; the next start is clean.
func TestWALUnreadable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	for _, n := range []string{"a", "b", "c", "d"} {
		walPhase(t, dir, n, base)
	}
	cpDir, _, err := wlog.LastCheckpoint(filepath.Join(dir, "wal"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(wlog.SegmentName(cpDir, 0)))
	w, err := wlog.NewSize(nil, nil, cpDir, wlog.DefaultSegmentSize, compression.None)
	require.NoError(t, err)
	require.NoError(t, w.Log([]byte{byte(record.Samples), 1, 2, 3})) // a samples record cut short
	require.NoError(t, w.Close())

	st := startStore(t, dir)
	losses := st.OpenLosses()
	require.Len(t, losses, 1, "%+v", losses)
	assert.Equal(t, walsalvage.WALUnreadable, losses[0].Reason)
	assert.Contains(t, losses[0].Err, "repair corrupted WAL", "the wording walOpenError matches")
	assert.Positive(t, losses[0].Bytes)
	assert.DirExists(t, filepath.Join(dir, losses[0].MovedTo))
	assert.Equal(t, losses[0].Bytes, st.Stats().LostBytes[walsalvage.WALUnreadable])
	writeSamples(t, st, "e", base)
	require.NoError(t, st.Shutdown(context.Background()))

	st = startStore(t, dir)
	t.Cleanup(func() { require.NoError(t, st.Shutdown(context.Background())) })
	assert.Empty(t, st.OpenLosses(), "the second start is clean")
	assert.Equal(t, samplesPerPhase, stored(t, st, "e", base))
}

// TestWALRepairCounted: a record that passes its checksum but does not
// decode, in a middle segment: tsdb.Open cuts that segment there and
// deletes the later ones itself (v0.315.1). The store counts both files.
func TestWALRepairCounted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	for _, n := range []string{"a", "b", "c"} {
		walPhase(t, dir, n, base)
	}
	segs := dataSegments(t, dir) // b, c
	require.Len(t, segs, 2)
	// b's segment becomes one undecodable record.
	walDir := filepath.Join(dir, "wal")
	tmp := t.TempDir()
	s, err := wlog.CreateSegment(tmp, segs[0]-1)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	w, err := wlog.NewSize(nil, nil, tmp, wlog.DefaultSegmentSize, compression.None) // writes segment segs[0]
	require.NoError(t, err)
	require.NoError(t, w.Log([]byte{byte(record.Samples), 1, 2, 3}))
	require.NoError(t, w.Close())
	require.NoError(t, os.Rename(wlog.SegmentName(tmp, segs[0]), wlog.SegmentName(walDir, segs[0])))
	want := map[string]int64{}
	for _, i := range segs {
		info, err := os.Stat(wlog.SegmentName(walDir, i))
		require.NoError(t, err)
		want[filepath.Join("wal", fmt.Sprintf("%08d", i))] = info.Size()
	}

	st := startStore(t, dir)
	got := map[string]int64{}
	for _, l := range st.OpenLosses() {
		assert.Equal(t, walsalvage.SegmentCorrupt, l.Reason)
		got[l.File] = l.Bytes
	}
	assert.Equal(t, want, got, "b's segment rewritten empty, c's deleted")
	assert.Equal(t, samplesPerPhase, stored(t, st, "a", base))
	assert.Zero(t, stored(t, st, "c", base))
	require.NoError(t, st.Shutdown(context.Background()))

	st = startStore(t, dir)
	t.Cleanup(func() { require.NoError(t, st.Shutdown(context.Background())) })
	assert.Empty(t, st.OpenLosses(), "the second start is clean")
	assert.Equal(t, samplesPerPhase, stored(t, st, "a", base))
}
