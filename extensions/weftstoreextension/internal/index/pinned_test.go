package index

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
)

// fakePins is a pin set on a settable clock (weft_pins' own semantics:
// whole seconds, pinned while the end is after now).
type fakePins struct {
	mu    sync.Mutex
	now   time.Time
	until map[pcommon.TraceID]int64
	asked int // PinnedUntil calls
}

func newFakePins() *fakePins {
	return &fakePins{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), until: map[pcommon.TraceID]int64{}}
}

func (f *fakePins) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakePins) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (f *fakePins) pin(id pcommon.TraceID, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.until[id] = max(f.until[id], f.now.Add(d).Unix())
}

func (f *fakePins) Pinned(id pcommon.TraceID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.until[id] > f.now.Unix()
}

func (f *fakePins) PinnedUntil(id pcommon.TraceID) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	if u := f.until[id]; u > f.now.Unix() {
		return time.Unix(u, 0), true
	}
	return time.Time{}, false
}

const (
	tinyBudget   = 256 << 10
	pinnedBudget = 128 << 10
)

// fill appends batches of unpinned spans until the index has evicted
// factor times its budget.
func fillSpans(x *Spans, seq *uint64, factor int64) {
	for x.Stats().EvictedBytes < factor*x.Stats().MaxBytes {
		x.Append(simtest.SpanBatch(seq, 256))
	}
}

func fillLogs(x *Logs, seq *uint64, factor int64) {
	for x.Stats().EvictedBytes < factor*x.Stats().MaxBytes {
		x.Append(simtest.LogBatch(seq, 256))
	}
}

// TestPinnedSurviveEviction is the acceptance in miniature: the
// spans and log records of a pinned trace outlive 10x the budget of other
// traffic and every query still finds them; those of an unpinned trace of
// the same batch are evicted.
func TestPinnedSurviveEviction(t *testing.T) {
	pins := newFakePins()
	spans, logs := NewSpans(tinyBudget), NewLogs(tinyBudget)
	spans.SetPins(pins, pinnedBudget, pins.Now)
	logs.SetPins(pins, pinnedBudget, pins.Now)

	reqs, td, ld, _ := simtest.Simulate(simtest.NewRand(7), 50, time.Now().Add(-time.Minute))
	pinned, other := reqs[4], reqs[5] // reqs[4] failed (every fifth fails)
	require.Equal(t, 503, pinned.Status)
	pins.pin(pinned.TraceID, 30*time.Minute)
	spans.Append(td)
	logs.Append(ld)

	var seqSpans, seqLogs uint64
	fillSpans(spans, &seqSpans, 10)
	fillLogs(logs, &seqLogs, 10)

	got, err := Trace(spans, pinned.TraceID, same)
	require.NoError(t, err)
	assert.ElementsMatch(t, []pcommon.SpanID{pinned.ClientSpan, pinned.ServerSpan}, []pcommon.SpanID{got[0].SpanID, got[1].SpanID})
	assert.Equal(t, "GET "+pinned.Route, got[0].Operation)
	recs, err := SearchLogs(logs, LogQuery{TraceID: pinned.TraceID}, sameLog)
	require.NoError(t, err)
	assert.Len(t, recs, pinned.LogsWritten)
	assert.Equal(t, pinned.TraceID, recs[0].Data.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).TraceID())

	// The scans find them too.
	ids, err := spans.FindTraces(SpanQuery{Service: pinned.Server.App, Limit: 1000})
	require.NoError(t, err)
	assert.Contains(t, ids, pinned.TraceID)
	failing := FailingTraces(spans, TraceSelector{Pod: key(pinned.Server), Limit: 1000}, same)
	require.NotEmpty(t, failing)
	assert.Equal(t, pinned.TraceID, failing[len(failing)-1].TraceID, "the oldest failing trace")
	assert.Contains(t, spans.Services(), pinned.Server.App)
	byPod, err := SearchLogs(logs, LogQuery{Namespace: pinned.Server.NS, Pod: pinned.Server.Name, Limit: 100000}, sameLog)
	require.NoError(t, err)
	assert.Contains(t, traceIDsOfLogs(byPod), pinned.TraceID)

	// The unpinned trace of the same batch is gone.
	got, err = Trace(spans, other.TraceID, same)
	require.NoError(t, err)
	assert.Empty(t, got)
	recs, err = SearchLogs(logs, LogQuery{TraceID: other.TraceID}, sameLog)
	require.NoError(t, err)
	assert.Empty(t, recs)

	for name, st := range map[string]Stats{"spans": spans.Stats(), "logs": logs.Stats()} {
		assert.Equal(t, int64(2), st.PinnedRecords, name)
		assert.Equal(t, int64(2), st.Pinned, name)
		assert.LessOrEqual(t, st.Bytes, st.MaxBytes, name)
		assert.Positive(t, st.PinnedBytes, name)
		assert.Zero(t, st.EvictedPinnedFull+st.EvictedPinnedExpired, name)
	}
	// Every record is stored (ring or pinned budget) or counted as evicted.
	st := spans.Stats()
	assert.Equal(t, int64(2*len(reqs))+int64(seqSpans), st.Records+st.PinnedRecords+st.Evicted, "spans")
	st = logs.Stats()
	assert.Equal(t, int64(2*len(reqs))+int64(seqLogs), st.Records+st.PinnedRecords+st.Evicted, "logs")
}

func traceIDsOfLogs(ls []Log) []pcommon.TraceID {
	out := make([]pcommon.TraceID, len(ls))
	for i, l := range ls {
		out[i] = l.TraceID
	}
	return out
}

// TestPinnedBudgetFull: when the pinned budget is full, the records of the
// trace whose pin ends soonest are evicted first and counted as
// budget_full; extending a pin moves its trace back in that order.
func TestPinnedBudgetFull(t *testing.T) {
	pins := newFakePins()
	x := NewSpans(tinyBudget)
	x.SetPins(pins, pinnedBudget, pins.Now)
	var seq uint64
	// 600 spans, each of its own trace, pinned with ends a second apart
	// in a shuffled order: far more than the pinned budget holds.
	td := simtest.SpanBatch(&seq, 600)
	ids := traceIDsOf(td)
	ends := make(map[pcommon.TraceID]time.Duration, len(ids))
	for i, id := range ids {
		d := time.Hour + time.Duration((i*337)%len(ids))*time.Second
		ends[id] = d
		pins.pin(id, d)
	}
	// The trace that would end first is extended past all others.
	extended := ids[0]
	require.Equal(t, time.Hour, ends[extended])
	pins.pin(extended, 3*time.Hour)
	ends[extended] = 3 * time.Hour
	x.Append(td)
	fillSpans(x, &seq, 10)

	st := x.Stats()
	require.Positive(t, st.EvictedPinnedFull)
	assert.Zero(t, st.EvictedPinnedExpired)
	assert.LessOrEqual(t, st.PinnedBytes, st.PinnedMaxBytes)
	assert.Greater(t, st.PinnedBytes, int64(pinnedBudget)*8/10, "the pinned budget is used")
	assert.Equal(t, int64(len(ids)), st.PinnedRecords+st.EvictedPinnedFull)
	var kept, dropped []time.Duration
	for _, id := range ids {
		got, err := Trace(x, id, same)
		require.NoError(t, err)
		if len(got) > 0 {
			kept = append(kept, ends[id])
		} else {
			dropped = append(dropped, ends[id])
		}
	}
	require.NotEmpty(t, kept)
	require.NotEmpty(t, dropped)
	assert.Len(t, dropped, int(st.EvictedPinnedFull))
	assert.GreaterOrEqual(t, slicesMin(kept), slicesMax(dropped), "every kept pin ends after every evicted one")
	assert.Contains(t, kept, 3*time.Hour, "the extended pin was kept")
}

func slicesMin(s []time.Duration) time.Duration {
	m := s[0]
	for _, v := range s {
		m = min(m, v)
	}
	return m
}

func slicesMax(s []time.Duration) time.Duration {
	m := s[0]
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

func traceIDsOf(td ptrace.Traces) []pcommon.TraceID {
	var out []pcommon.TraceID
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := range spans.Len() {
		out = append(out, spans.At(i).TraceID())
	}
	return out
}

// TestPinnedExpired: when a pin ends, its records leave the pinned budget
// at the next append (or ExpirePinned), counted as expired; an extended
// pin keeps them; the pinned budget's bytes return to zero.
func TestPinnedExpired(t *testing.T) {
	pins := newFakePins()
	x := NewLogs(tinyBudget)
	x.SetPins(pins, pinnedBudget, pins.Now)
	var seq uint64
	ld := simtest.LogBatch(&seq, 10)
	recs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	short, long := recs.At(0).TraceID(), recs.At(1).TraceID()
	pins.pin(short, time.Minute)
	pins.pin(long, time.Minute)
	x.Append(ld)
	fillLogs(x, &seq, 2)
	require.Equal(t, int64(2), x.Stats().PinnedRecords)

	pins.advance(30 * time.Second)
	pins.pin(long, 10*time.Minute) // extended after it was kept
	pins.advance(31 * time.Second)
	x.Append(simtest.LogBatch(&seq, 1))
	st := x.Stats()
	assert.Equal(t, int64(1), st.EvictedPinnedExpired)
	assert.Equal(t, int64(1), st.PinnedRecords)
	got, err := SearchLogs(x, LogQuery{TraceID: short}, sameLog)
	require.NoError(t, err)
	assert.Empty(t, got)
	got, err = SearchLogs(x, LogQuery{TraceID: long}, sameLog)
	require.NoError(t, err)
	assert.Len(t, got, 1)

	// No append: ExpirePinned (the store's retention loop) does it.
	pins.advance(10 * time.Minute)
	x.ExpirePinned()
	st = x.Stats()
	assert.Equal(t, int64(2), st.EvictedPinnedExpired)
	assert.Zero(t, st.PinnedRecords)
	assert.Zero(t, st.PinnedBytes, "every pinned byte is released")
	assert.Equal(t, int64(seq), st.Records+st.Evicted)
}

// TestPinnedUnpinnedPath: without pins, or with pins but no pinned trace,
// eviction is unchanged (oldest first, nothing kept), and a pin asked at
// eviction time — not at arrival — decides.
func TestPinnedUnpinnedPath(t *testing.T) {
	pins := newFakePins()
	x := NewSpans(tinyBudget)
	x.SetPins(pins, pinnedBudget, pins.Now)
	var seq uint64
	td := simtest.SpanBatch(&seq, 100)
	late := traceIDsOf(td)[3]
	x.Append(td)
	pins.pin(late, time.Hour) // pinned after arrival, before eviction
	fillSpans(x, &seq, 3)
	st := x.Stats()
	assert.Equal(t, int64(1), st.PinnedRecords)
	assert.Equal(t, 1, pins.asked, "PinnedUntil is asked only for pinned records")
	got, err := Trace(x, late, same)
	require.NoError(t, err)
	assert.Len(t, got, 1)

	// A zero pinned budget turns the exemption off.
	y := NewSpans(tinyBudget)
	y.SetPins(pins, 0, pins.Now)
	seq = 0
	td = simtest.SpanBatch(&seq, 100)
	pins.pin(traceIDsOf(td)[0], time.Hour)
	y.Append(td)
	fillSpans(y, &seq, 3)
	assert.Zero(t, y.Stats().PinnedRecords)
	assert.Zero(t, y.Stats().PinnedMaxBytes)
}

func sameLog(l Log) Log { return l }

// tenthPinned pins every trace whose last ID byte is a multiple of 10,
// for an hour, without holding anything per trace.
type tenthPinned struct{ until time.Time }

func (p tenthPinned) Pinned(id pcommon.TraceID) bool { return id[15]%10 == 0 }
func (p tenthPinned) PinnedUntil(id pcommon.TraceID) (time.Time, bool) {
	return p.until, p.Pinned(id)
}

// TestPinnedBudgetMemory: the pinned budget's charged bytes estimate the
// heap it holds, like the ring's (TestEvictionBounds): with 10 % of the
// traffic pinned and 10x the budget fed, the heap grows by at most 1.5x
// both budgets, and each budget holds.
func TestPinnedBudgetMemory(t *testing.T) {
	const budget, pinnedMax = 4 << 20, 4 << 20
	pins := tenthPinned{until: time.Now().Add(time.Hour)}
	for _, tt := range []struct {
		name string
		// start returns the index's Stats and a feed of one batch.
		start func() (stats func() Stats, feed func(seq *uint64))
	}{
		{"spans", func() (func() Stats, func(*uint64)) {
			x := NewSpans(budget)
			x.SetPins(pins, pinnedMax, time.Now)
			return x.Stats, func(seq *uint64) { x.Append(simtest.SpanBatch(seq, 512)) }
		}},
		{"logs", func() (func() Stats, func(*uint64)) {
			x := NewLogs(budget)
			x.SetPins(pins, pinnedMax, time.Now)
			return x.Stats, func(seq *uint64) { x.Append(simtest.LogBatch(seq, 512)) }
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := simtest.HeapAlloc()
			stats, feed := tt.start()
			var seq uint64
			var peak uint64
			for stats().EvictedBytes < 10*budget {
				feed(&seq)
				s := stats()
				require.LessOrEqual(t, s.PinnedBytes, s.PinnedMaxBytes)
				if seq%(512*40) == 0 {
					peak = max(peak, simtest.HeapAlloc())
				}
			}
			peak = max(peak, simtest.HeapAlloc())
			s := stats()
			t.Logf("fed %d, kept %d + %d pinned (%d + %d B charged), moved %d, evicted %d (pinned: %d full); heap grew by %d B",
				seq, s.Records, s.PinnedRecords, s.Bytes, s.PinnedBytes, s.Pinned, s.Evicted, s.EvictedPinnedFull, int64(peak)-int64(before))
			assert.Equal(t, int64(seq), s.Records+s.PinnedRecords+s.Evicted)
			assert.Positive(t, s.EvictedPinnedFull)
			assert.Greater(t, s.PinnedBytes, int64(pinnedMax)*9/10, "the pinned budget fills")
			assert.Less(t, int64(peak)-int64(before), int64(budget+pinnedMax)*3/2, "heap stays bounded")
		})
	}
}
