package index

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
)

// TestEvictedTracesBucket: a bucket keeps its evictedWays newest
// fingerprints, forgets the oldest, reuses the slot of a taken one, and
// take counts each eviction once.
func TestEvictedTracesBucket(t *testing.T) {
	g := new(evictedTraces)
	// Fingerprints of one bucket (same low bits).
	fp := func(i uint64) uint64 { return i<<20 | 7 }
	for i := range uint64(evictedWays + 1) {
		g.add(fp(i + 1))
	}
	assert.False(t, g.take(fp(1)), "the oldest of 5 in a 4-way bucket is forgotten")
	for i := uint64(2); i <= evictedWays+1; i++ {
		assert.True(t, g.take(fp(i)), "fingerprint %d", i)
	}
	assert.False(t, g.take(fp(3)), "taken once")
	assert.Equal(t, int64(evictedWays), g.count())

	// A taken slot is reused before the oldest is dropped.
	g = new(evictedTraces)
	for i := range uint64(evictedWays) {
		g.add(fp(i + 1))
	}
	require.True(t, g.take(fp(3)))
	g.add(fp(10))
	for _, i := range []uint64{1, 2, 4, 10} {
		assert.True(t, g.take(fp(i)), "fingerprint %d kept", i)
	}
	// Re-evicted after its pin was counted: counted again.
	g.add(fp(10))
	assert.True(t, g.take(fp(10)))
	// Another bucket is untouched.
	assert.False(t, g.take(fp(1)+1))
}

// TestEvictedTracesRecall measures the stated recall and false positive
// rate with random trace IDs: a trace followed by n distinct evicted
// traces is remembered with probability P(Poisson(n/buckets) < ways).
func TestEvictedTracesRecall(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	id := func() pcommon.TraceID {
		var tid pcommon.TraceID
		for i := range tid {
			tid[i] = byte(rng.Uint32())
		}
		return tid
	}
	const total = 64 << 10
	ids := make([]pcommon.TraceID, total)
	g := new(evictedTraces)
	for i := range ids {
		ids[i] = id()
		g.add(fingerprint(ids[i]))
	}
	poissonBelow := func(lambda float64, k int) float64 {
		p, term := 0.0, math.Exp(-lambda)
		for i := range k {
			if i > 0 {
				term *= lambda / float64(i)
			}
			p += term
		}
		return p
	}
	for _, later := range []int{16 << 10, 32 << 10, 60 << 10} {
		// 2000 traces followed by about `later` others.
		kept := 0
		from := total - later - 1000
		for i := from; i < from+2000; i++ {
			if g.take(fingerprint(ids[i])) {
				kept++
			}
		}
		want := poissonBelow(float64(later)/evictedBuckets, evictedWays)
		got := float64(kept) / 2000
		t.Logf("followed by %d evicted traces: remembered %.3f, stated %.3f", later, got, want)
		// Binomial σ of 2000 draws ≤ 0.011; 0.05 is > 4σ.
		assert.InDelta(t, want, got, 0.05, "recall after %d", later)
	}
	// Never-evicted traces: no false positive in a million.
	fp := 0
	for range 1_000_000 {
		if g.take(fingerprint(id())) {
			fp++
		}
	}
	assert.Zero(t, fp, "false positives in 1e6 pins of traces never evicted")
}

// TestNotePin: a pin after eviction counts 1 per signal (once, however
// often it is extended); a pin of a trace never seen or still held counts
// 0; a trace whose pin ended and whose pinned records were dropped counts
// again at its next pin; records moved into the pinned budget are not
// lost, so a pin extended then counts 0.
func TestNotePin(t *testing.T) {
	pins := newFakePins()
	spans, logs := NewSpans(tinyBudget), NewLogs(tinyBudget)
	assert.False(t, spans.NotePin(pcommon.TraceID{1}), "no memory before SetPins")
	spans.SetPins(pins, pinnedBudget, pins.Now)
	logs.SetPins(pins, pinnedBudget, pins.Now)

	reqs, td, ld, _ := simtest.Simulate(simtest.NewRand(21), 50, time.Now().Add(-time.Minute))
	var evicted, pinnedFirst simtest.Request
	for _, r := range reqs {
		if r.LogsWritten > 0 {
			if evicted.LogsWritten == 0 {
				evicted = r
			} else if pinnedFirst.LogsWritten == 0 {
				pinnedFirst = r
			}
		}
	}
	require.NotZero(t, pinnedFirst.LogsWritten)
	pins.pin(pinnedFirst.TraceID, time.Minute)
	spans.Append(td)
	logs.Append(ld)
	var seqSpans, seqLogs uint64
	fillSpans(spans, &seqSpans, 2)
	fillLogs(logs, &seqLogs, 2)

	// Still held: the newest batch.
	_, held, heldLogs, _ := simtest.Simulate(simtest.NewRand(22), 5, time.Now())
	spans.Append(held)
	logs.Append(heldLogs)
	heldID := held.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID()

	late := func() (int64, int64) { return spans.Stats().PinsAfterEviction, logs.Stats().PinsAfterEviction }
	for _, tc := range []struct {
		name           string
		id             pcommon.TraceID
		wantS, wantL   bool
		afterS, afterL int64
	}{
		{"never seen", pcommon.TraceID{0xde, 0xad}, false, false, 0, 0},
		{"still held", heldID, false, false, 0, 0},
		{"kept in the pinned budget, pin extended", pinnedFirst.TraceID, false, false, 0, 0},
		{"evicted", evicted.TraceID, true, true, 1, 1},
		{"evicted, pin extended", evicted.TraceID, false, false, 1, 1},
	} {
		pins.pin(tc.id, 2*time.Minute)
		assert.Equal(t, tc.wantS, spans.NotePin(tc.id), "%s: spans", tc.name)
		assert.Equal(t, tc.wantL, logs.NotePin(tc.id), "%s: logs", tc.name)
		s, l := late()
		assert.Equal(t, tc.afterS, s, "%s: spans counter", tc.name)
		assert.Equal(t, tc.afterL, l, "%s: logs counter", tc.name)
	}

	// The pin of pinnedFirst ends: its pinned records are dropped at the
	// next append; a new pin comes after their eviction.
	require.Equal(t, int64(2), spans.Stats().PinnedRecords, "pinnedFirst's spans")
	pins.advance(3 * time.Minute)
	fillSpans(spans, &seqSpans, 3)
	fillLogs(logs, &seqLogs, 3)
	require.Zero(t, spans.Stats().PinnedRecords)
	require.Zero(t, logs.Stats().PinnedRecords)
	pins.pin(pinnedFirst.TraceID, time.Minute)
	assert.True(t, spans.NotePin(pinnedFirst.TraceID), "spans dropped when the pin ended")
	assert.True(t, logs.NotePin(pinnedFirst.TraceID), "logs dropped when the pin ended")
	s, l := late()
	assert.Equal(t, int64(2), s)
	assert.Equal(t, int64(2), l)
}

// BenchmarkRememberEvicted is what the memory of evicted traces adds to
// the eviction of a record whose trace is not pinned: a fingerprint and
// an insert (distinct trace IDs: no shortcut), and the lookup of a pin
// (NotePin, on weft_pins' OnPin).
func BenchmarkRememberEvicted(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	ids := make([]pcommon.TraceID, 1<<16)
	for i := range ids {
		for k := range ids[i] {
			ids[i][k] = byte(rng.Uint32())
		}
	}
	x := NewSpans(tinyBudget)
	x.SetPins(newFakePins(), pinnedBudget, time.Now)
	// As evictOverflow does it: the mutex once per append (here per 100
	// records, simtest.Batch), a fingerprint and an insert per record.
	g := x.gone.Load()
	b.Run("evict", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			g.mu.Lock()
			for range simtest.Batch {
				g.addLocked(fingerprint(ids[i&(len(ids)-1)]))
				i++
			}
			g.mu.Unlock()
		}
		simtest.PerItem(b, "record")
	})
	b.Run("pin", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			x.NotePin(ids[i&(len(ids)-1)])
			i++
		}
	})
}
