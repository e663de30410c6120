package exemplars

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"
	"github.com/stretchr/testify/require"
)

// openStorage returns a storage of capacity over ss with its WAL in dir
// replayed, and what the replay lost.
func openStorage(t *testing.T, dir string, capacity int, ss seriesSet) (*Storage, *Loss) {
	t.Helper()
	s, err := New(capacity, ss.lookup, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	loss, err := s.OpenWAL(dir, compression.Snappy)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, loss
}

// batches returns n exemplars of the series of ss, in batches of size,
// each series' in order: trace and span IDs, one in five with another
// label too.
func batches(ss seriesSet, n, size int, seed uint64) [][]Held {
	g := exemplarGen{rand.New(rand.NewPCG(seed, 7))}
	var out [][]Held
	var b []Held
	for i := range n {
		l := labels.FromStrings("trace_id", g.hex(32), "span_id", g.hex(16))
		if i%5 == 0 {
			l = labels.FromStrings("trace_id", g.hex(32), "span_id", g.hex(16), "user", g.hex(4))
		}
		b = append(b, Held{Ref: storage.SeriesRef(i%len(ss) + 1), E: exemplar.Exemplar{Labels: l, Value: float64(i), Ts: int64(i), HasTs: true}})
		if len(b) == size {
			out = append(out, b)
			b = nil
		}
	}
	if len(b) > 0 {
		out = append(out, b)
	}
	return out
}

func selectAll(t *testing.T, s *Storage) []exemplar.QueryResult {
	t.Helper()
	res, err := s.Select(math.MinInt64, math.MaxInt64, all)
	require.NoError(t, err)
	// A replayed exemplar has no HasTs (the WAL record has none), as the
	// TSDB's after its replay.
	for _, r := range res {
		for i := range r.Exemplars {
			r.Exemplars[i].HasTs = false
		}
	}
	return res
}

// TestWALReplay: a restart gives the ring back as it was, less the
// exemplars of series the head no longer holds.
func TestWALReplay(t *testing.T) {
	dir := t.TempDir()
	ss := newSeriesSet(50)
	s, loss := openStorage(t, dir, 1000, ss)
	require.Nil(t, loss)
	stored := 0
	for _, b := range batches(ss, 3000, 300, 1) {
		stored += s.Add(b)
	}
	require.Equal(t, 3000, stored)
	want := selectAll(t, s)
	require.NoError(t, s.Close())

	s2, loss := openStorage(t, dir, 1000, ss)
	require.Nil(t, loss)
	require.Equal(t, want, selectAll(t, s2))
	n, _ := s2.Len()
	require.Equal(t, 1000, n)
	require.NoError(t, s2.Close())

	// The head lost series 41 to 50.
	s3, loss := openStorage(t, dir, 1000, ss[:40])
	require.Nil(t, loss)
	got := selectAll(t, s3)
	require.Len(t, got, 40)
	n, _ = s3.Len()
	require.Equal(t, 1000, n, "older exemplars of the series left take the slots of those dropped")
	byPod := map[string][]exemplar.Exemplar{}
	for _, r := range want {
		byPod[r.SeriesLabels.Get("pod")] = r.Exemplars
	}
	for _, r := range got {
		w := byPod[r.SeriesLabels.Get("pod")]
		require.NotEmpty(t, w, r.SeriesLabels.String())
		require.Greater(t, len(r.Exemplars), len(w), r.SeriesLabels.String())
		require.True(t, slices.EqualFunc(w, r.Exemplars[len(r.Exemplars)-len(w):], exemplar.Exemplar.Equals),
			"%s: the newest exemplars are those before the restart", r.SeriesLabels)
	}
	require.NoError(t, s3.Close())

	// New series took refs 41 to 50: the exemplars of the series that had
	// them do not come back.
	s4, loss := openStorage(t, dir, 1000, ss)
	require.Nil(t, loss)
	require.Equal(t, got, selectAll(t, s4))
}

// TestWALTrim: the WAL keeps the segments a replay needs to refill the
// ring, no more.
func TestWALTrim(t *testing.T) {
	dir := t.TempDir()
	ss := newSeriesSet(500)
	s, _ := openStorage(t, dir, 2000, ss)
	for _, b := range batches(ss, 160_000, exemplarsPerBatch, 2) {
		s.Add(b)
	}
	first, last, err := wlog.Segments(dir)
	require.NoError(t, err)
	require.Positive(t, first, "old segments were deleted")
	require.LessOrEqual(t, last-first, 1, "2,000 exemplars fit in one segment: at most it and the one written to")
	want := selectAll(t, s)
	require.NoError(t, s.Close())

	s2, loss := openStorage(t, dir, 2000, ss)
	require.Nil(t, loss)
	require.Equal(t, want, selectAll(t, s2))
}

// exemplarsPerBatch is the batch size of the store's commits.
const exemplarsPerBatch = 1024

// TestWALDamage: a damaged record ends the replay: the exemplars before it
// are kept, the loss is reported, and the WAL is whole again for the next
// start.
func TestWALDamage(t *testing.T) {
	dir := t.TempDir()
	ss := newSeriesSet(3000)
	s, _ := openStorage(t, dir, 10_000, ss)
	bs := batches(ss, 3*exemplarsPerBatch, exemplarsPerBatch, 3)
	require.Equal(t, exemplarsPerBatch, s.Add(bs[0]))
	_, end1, err := s.wal.wl.LastSegmentAndOffset()
	require.NoError(t, err)
	require.Equal(t, exemplarsPerBatch, s.Add(bs[1]))
	_, end2, err := s.wal.wl.LastSegmentAndOffset()
	require.NoError(t, err)
	require.Equal(t, exemplarsPerBatch, s.Add(bs[2]))
	require.NoError(t, s.Close())

	seg := wlog.SegmentName(dir, 0)
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	require.NoError(t, err)
	at := int64(end1 + (end2-end1)/2) // in the second record
	b := make([]byte, 1)
	_, err = f.ReadAt(b, at)
	require.NoError(t, err)
	b[0] ^= 0xff
	_, err = f.WriteAt(b, at)
	require.NoError(t, err)
	fi, err := f.Stat()
	require.NoError(t, err)
	require.NoError(t, f.Close())

	s2, loss := openStorage(t, dir, 10_000, ss)
	require.NotNil(t, loss)
	require.Equal(t, "00000000", loss.File)
	require.Positive(t, loss.Bytes)
	require.LessOrEqual(t, loss.Bytes, fi.Size()-int64(end1))
	require.NotEmpty(t, loss.Err)
	n, _ := s2.Len()
	require.Equal(t, exemplarsPerBatch, n, "the first record's exemplars")

	// The repaired WAL takes new exemplars and replays cleanly.
	require.Equal(t, exemplarsPerBatch, s2.Add(bs[2]))
	require.NoError(t, s2.Close())
	s3, loss := openStorage(t, dir, 10_000, ss)
	require.Nil(t, loss)
	n, _ = s3.Len()
	require.Equal(t, 2*exemplarsPerBatch, n)
	_, err = os.Stat(filepath.Join(dir, "00000000.repair"))
	require.True(t, os.IsNotExist(err), "the repair leaves no file behind")
}

// TestImport reads the exemplar records of a TSDB WAL as the head replays
// them: its last checkpoint, then only the segments after it; other
// records are skipped.
func TestImport(t *testing.T) {
	dir := t.TempDir()
	var enc record.Encoder
	ex := func(ref storage.SeriesRef, ts int64) []byte {
		return enc.Exemplars([]record.RefExemplar{{Ref: chunks.HeadSeriesRef(ref), T: ts, V: float64(ts),
			Labels: labels.FromStrings("trace_id", fmt.Sprintf("%032x", ts))}}, nil)
	}
	w, err := wlog.New(nil, nil, dir, compression.None)
	require.NoError(t, err)
	require.NoError(t, w.Log(ex(1, 10))) // segment 0: covered by the checkpoint
	_, err = w.NextSegmentSync()
	require.NoError(t, err)
	require.NoError(t, w.Log(ex(1, 20))) // segment 1: covered too
	_, err = w.NextSegmentSync()
	require.NoError(t, err)
	require.NoError(t, w.Log(enc.Series([]record.RefSeries{{Ref: 1, Labels: labels.FromStrings("a", "b")}}, nil), ex(1, 30)))
	require.NoError(t, w.Close())
	cp, err := wlog.New(nil, nil, filepath.Join(dir, "checkpoint.00000001"), compression.None)
	require.NoError(t, err)
	require.NoError(t, cp.Log(ex(2, 15)))
	require.NoError(t, cp.Close())

	ss := newSeriesSet(2)
	s := newStorage(t, 100, ss)
	n, err := s.Import(dir)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	got := map[string][]int64{}
	for _, r := range selectAll(t, s) {
		for _, e := range r.Exemplars {
			got[r.SeriesLabels.Get("pod")] = append(got[r.SeriesLabels.Get("pod")], e.Ts)
		}
	}
	require.Equal(t, map[string][]int64{"pod-0": {30}, "pod-1": {15}}, got)
}

// TestWALFailureCounted: when the WAL cannot be written the exemplars are
// still kept in memory, and the failed writes are counted and logged.
func TestWALFailureCounted(t *testing.T) {
	ss := newSeriesSet(10)
	s, err := New(100, ss.lookup, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	var logged []string
	s.logger = slog.New(recordHandler{msgs: &logged})
	_, err = s.OpenWAL(t.TempDir(), compression.None)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.wal.wl.Close()) // the WAL's file is gone from under it

	bs := batches(ss, 20, 10, 3)
	require.Equal(t, 10, s.Add(bs[0]), "stored in memory all the same")
	require.Equal(t, 10, s.Add(bs[1]))
	n, _ := s.Len()
	require.Equal(t, 20, n)
	require.Equal(t, int64(2), s.WALFailures())
	require.Len(t, logged, 1, "logged once a minute at most")
}

// recordHandler is a slog handler that keeps the messages.
type recordHandler struct{ msgs *[]string }

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	*h.msgs = append(*h.msgs, r.Message)
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }
