package evidencesamplingprocessor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/weftobs/weft/extensions/weftpinsextension"
	"github.com/weftobs/weft/internal/weftest"
)

const (
	waitFor = 10 * time.Second
	tick    = 5 * time.Millisecond
)

// localHost is a host with one weft_pins extension without gossip.
func localHost(t *testing.T) (weftest.Host, *weftpinsextension.Pins) {
	t.Helper()
	id, pins := newPins(t, "", nil)
	return weftest.Host{id: pins}, pins
}

func tenPercent(c *Config) { c.SamplingPercentage = 10 }

// TestKeepEverythingByDefault: at the default 100 % every span passes at
// once, its TraceState untouched, nothing waits; error spans still pin.
func TestKeepEverythingByDefault(t *testing.T) {
	host, pins := localHost(t)
	r := newTracesRig(t, testConfig(nil), host)
	td := traces(span{trace: unsampledID(1)}, span{trace: unsampledID(2), status: ptrace.StatusCodeError})
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceState().FromRaw("vendor=x")
	require.NoError(t, r.front.ConsumeTraces(context.Background(), td))
	assert.Equal(t, 2, r.sink.SpanCount(), "passed on synchronously")
	got := r.sink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	assert.Equal(t, "vendor=x", got.At(0).TraceState().AsRaw())
	assert.True(t, pins.Pinned(unsampledID(2)))
	assert.False(t, pins.Pinned(unsampledID(1)))
	items, _ := r.p.buf.size()
	assert.Zero(t, items)
	assert.Equal(t, int64(1), r.p.counts.kept[keptSampled].Load())
	assert.Equal(t, int64(1), r.p.counts.kept[keptPinned].Load(), "the error span pinned its trace first")
	assert.Equal(t, int64(1), r.p.counts.pins.Load())
}

// TestErrorSpanPins: each kind of error span pins its trace, and the
// spans of that trace already waiting are kept at once (not at the
// deadline); a 404 or an OK span pins nothing.
func TestErrorSpanPins(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    func(ptrace.Span)
		pins bool
	}{
		{"status error", func(s ptrace.Span) { s.Status().SetCode(ptrace.StatusCodeError) }, true},
		{"http.response.status_code 503", func(s ptrace.Span) { s.Attributes().PutInt(attrHTTPResponseStatus, 503) }, true},
		{"http.status_code 500", func(s ptrace.Span) { s.Attributes().PutInt(attrHTTPStatus, 500) }, true},
		{"http.status_code \"502\"", func(s ptrace.Span) { s.Attributes().PutStr(attrHTTPStatus, "502") }, true},
		{"client 504 as double", func(s ptrace.Span) {
			s.SetKind(ptrace.SpanKindClient)
			s.Attributes().PutDouble(attrHTTPResponseStatus, 504)
		}, true},
		{"404", func(s ptrace.Span) { s.Attributes().PutInt(attrHTTPResponseStatus, 404) }, false},
		{"status ok", func(s ptrace.Span) { s.Status().SetCode(ptrace.StatusCodeOk) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, pins := localHost(t)
			r := newTracesRig(t, testConfig(tenPercent), host)
			id := unsampledID(7)
			ctx := context.Background()
			require.NoError(t, r.front.ConsumeTraces(ctx, traces(span{trace: id, n: 1}, span{trace: id, n: 2})))
			assert.Zero(t, r.sink.SpanCount(), "unsampled: waiting")
			td := traces(span{trace: id, n: 3})
			tc.s(td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0))
			require.NoError(t, r.front.ConsumeTraces(ctx, td))
			assert.Equal(t, tc.pins, pins.Pinned(id))
			if !tc.pins {
				r.clock.Advance(r.p.cfg.DecisionWait)
				r.p.flush(ctx, false)
				assert.Zero(t, r.sink.SpanCount())
				assert.Equal(t, int64(3), r.p.counts.dropped[droppedUnsampled].Load())
				return
			}
			assert.GreaterOrEqual(t, r.sink.SpanCount(), 1, "the error span passes at once")
			require.Eventually(t, func() bool { return r.sink.SpanCount() == 3 }, waitFor, tick,
				"the waiting spans are released by the pin, before the deadline")
			assert.Equal(t, int64(3), r.p.counts.kept[keptPinned].Load())
			assert.Equal(t, int64(1), r.p.counts.pins.Load())
		})
	}
}

// TestErrorLogPins: a log record at pin_log_severity or above with a
// trace ID pins its trace; the trace's waiting log records and spans
// (another processor on the same weft_pins) are kept; a record without
// trace ID always passes and pins nothing.
func TestErrorLogPins(t *testing.T) {
	host, pins := localHost(t)
	lr := newLogsRig(t, testConfig(tenPercent), host)
	tr := newTracesRig(t, testConfig(tenPercent), host)
	ctx := context.Background()
	id, other := unsampledID(9), unsampledID(10)

	require.NoError(t, tr.front.ConsumeTraces(ctx, traces(span{trace: id})))
	require.NoError(t, lr.front.ConsumeLogs(ctx, logs(
		logRecord{trace: id, severity: plog.SeverityNumberInfo, body: "GET /reviews"},
		logRecord{trace: other, severity: plog.SeverityNumberWarn4, body: "slow"},
		logRecord{severity: plog.SeverityNumberFatal, body: "no trace"},
	)))
	assert.Equal(t, 1, lr.sink.LogRecordCount(), "only the record without trace ID passed")
	assert.False(t, pins.Pinned(pcommon.TraceID{}))
	assert.False(t, pins.Pinned(other), "WARN is below ERROR")

	require.NoError(t, lr.front.ConsumeLogs(ctx, logs(logRecord{trace: id, severity: plog.SeverityNumberError, body: "upstream 503"})))
	assert.True(t, pins.Pinned(id))
	require.Eventually(t, func() bool { return lr.sink.LogRecordCount() == 3 }, waitFor, tick)
	require.Eventually(t, func() bool { return tr.sink.SpanCount() == 1 }, waitFor, tick, "the span processor keeps the trace too")
	assert.Equal(t, 2, keptLogs(lr.sink)[id])
	assert.Equal(t, int64(1), lr.p.counts.pins.Load())
	assert.Equal(t, int64(1), lr.p.counts.kept[keptNoTraceID].Load())

	lr.clock.Advance(time.Minute)
	lr.p.flush(ctx, false)
	assert.Equal(t, int64(1), lr.p.counts.dropped[droppedUnsampled].Load(), "the WARN record's trace")
	assert.Zero(t, keptLogs(lr.sink)[other])
}

// TestPinLogSeverityNone: NONE turns log pinning off.
func TestPinLogSeverityNone(t *testing.T) {
	host, pins := localHost(t)
	lr := newLogsRig(t, testConfig(func(c *Config) { c.PinLogSeverity = "none" }), host)
	require.NoError(t, lr.front.ConsumeLogs(context.Background(), logs(logRecord{trace: unsampledID(1), severity: plog.SeverityNumberFatal})))
	assert.False(t, pins.Pinned(unsampledID(1)))
	assert.Equal(t, 1, lr.sink.LogRecordCount(), "100 %: kept anyway")
}

// TestDecisionAtDeadline: data of an unsampled trace waits
// decision_wait; a pin set meanwhile (an alert, a peer) keeps it; without
// one it is dropped at the deadline, not before; once a trace is pinned,
// everything arriving later passes at once.
func TestDecisionAtDeadline(t *testing.T) {
	host, pins := localHost(t)
	r := newTracesRig(t, testConfig(tenPercent), host)
	ctx := context.Background()
	kept, dropped := unsampledID(1), unsampledID(2)
	require.NoError(t, r.front.ConsumeTraces(ctx, traces(span{trace: kept, n: 1}, span{trace: dropped, n: 2})))
	r.clock.Advance(r.p.cfg.DecisionWait - time.Second)
	r.p.flush(ctx, false)
	assert.Zero(t, r.p.counts.dropped[droppedUnsampled].Load(), "not yet")

	// Unsubscribed, so that only the decision's own Pinned check can keep it.
	r.p.cancelPin()
	require.True(t, pins.Pin(kept, time.Time{}, weftpinsextension.ReasonAlert))
	r.clock.Advance(time.Second)
	r.p.flush(ctx, false)
	assert.Equal(t, map[pcommon.TraceID]int{kept: 1}, keptSpans(r.sink))
	assert.Equal(t, int64(1), r.p.counts.dropped[droppedUnsampled].Load())
	items, bytes := r.p.buf.size()
	assert.Zero(t, items)
	assert.Zero(t, bytes, "every accounted byte returned")

	require.NoError(t, r.front.ConsumeTraces(ctx, traces(span{trace: kept, n: 3})))
	assert.Equal(t, 2, keptSpans(r.sink)[kept], "late span of a pinned trace passes at once")

	// A pin for the dropped trace comes too late: counted, once.
	r.p.cancelPin = r.p.pins.OnPin(r.p.onPin)
	require.True(t, pins.Pin(dropped, time.Time{}, weftpinsextension.ReasonErrorLog))
	require.True(t, pins.Pin(dropped, time.Now().Add(time.Hour), weftpinsextension.ReasonAlert))
	assert.Equal(t, int64(1), r.p.counts.late.Load())
}

// TestBufferFull: at max_buffered_spans the oldest trace is decided
// early: kept if pinned, else dropped as buffer_full; a batch larger
// than the bound cannot wait and is dropped (or kept if pinned).
func TestBufferFull(t *testing.T) {
	host, pins := localHost(t)
	r := newTracesRig(t, testConfig(func(c *Config) {
		tenPercent(c)
		c.MaxBufferedSpans = 4
	}), host)
	ctx := context.Background()
	r.p.cancelPin() // pins reach the buffer only through its decisions here
	for i := range 4 {
		require.NoError(t, r.front.ConsumeTraces(ctx, traces(span{trace: unsampledID(uint64(i + 1))})))
	}
	items, _ := r.p.buf.size()
	require.Equal(t, 4, items)
	pins.Pin(unsampledID(2), time.Time{}, weftpinsextension.ReasonAlert)

	// Traces 5 and 6 evict 1 and 2, the oldest.
	require.NoError(t, r.front.ConsumeTraces(ctx, traces(span{trace: unsampledID(5)}, span{trace: unsampledID(6)})))
	assert.Equal(t, int64(1), r.p.counts.dropped[droppedBufferFull].Load(), "trace 1 dropped")
	assert.Equal(t, map[pcommon.TraceID]int{unsampledID(2): 1}, keptSpans(r.sink), "trace 2 evicted but pinned: kept with the batch")
	assert.Equal(t, int64(1), r.p.counts.kept[keptPinned].Load())
	require.NoError(t, r.front.ConsumeTraces(ctx, traces(span{trace: unsampledID(7)})))
	assert.Equal(t, int64(2), r.p.counts.dropped[droppedBufferFull].Load(), "trace 3 dropped")

	// Five spans of one trace never fit in four.
	big := traces(span{trace: unsampledID(8), n: 1}, span{trace: unsampledID(8), n: 2}, span{trace: unsampledID(8), n: 3},
		span{trace: unsampledID(8), n: 4}, span{trace: unsampledID(8), n: 5})
	require.NoError(t, r.front.ConsumeTraces(ctx, big))
	assert.Equal(t, int64(2+5), r.p.counts.dropped[droppedBufferFull].Load())
	items, _ = r.p.buf.size()
	assert.Equal(t, 4, items, "traces 4, 5, 6, 7 wait")
}

// TestBufferFullBytes: the byte bound evicts the same way.
func TestBufferFullBytes(t *testing.T) {
	host, _ := localHost(t)
	r := newTracesRig(t, testConfig(func(c *Config) {
		tenPercent(c)
		c.MaxBufferedSpanBytes = 2000
	}), host)
	ctx := context.Background()
	for i := range 20 {
		require.NoError(t, r.front.ConsumeTraces(ctx, traces(span{trace: unsampledID(uint64(i + 1))})))
		_, bytes := r.p.buf.size()
		require.LessOrEqual(t, bytes, 2000)
	}
	assert.Positive(t, r.p.counts.dropped[droppedBufferFull].Load())
	items, _ := r.p.buf.size()
	assert.Equal(t, int64(20), int64(items)+r.p.counts.dropped[droppedBufferFull].Load())
}

// TestShutdownFlush: shutdown decides everything waiting: pinned traces
// go on, the rest is dropped as shutdown; the buffer is empty after.
func TestShutdownFlush(t *testing.T) {
	host, pins := localHost(t)
	r := newTracesRig(t, testConfig(tenPercent), host)
	ctx := context.Background()
	r.p.cancelPin()
	require.NoError(t, r.front.ConsumeTraces(ctx, traces(span{trace: unsampledID(1), n: 1}, span{trace: unsampledID(1), n: 2}, span{trace: unsampledID(2)})))
	pins.Pin(unsampledID(1), time.Time{}, weftpinsextension.ReasonAlert)
	require.NoError(t, r.front.Shutdown(ctx))
	assert.Equal(t, map[pcommon.TraceID]int{unsampledID(1): 2}, keptSpans(r.sink))
	assert.Equal(t, int64(1), r.p.counts.dropped[droppedShutdown].Load())
	items, bytes := r.p.buf.size()
	assert.Zero(t, items)
	assert.Zero(t, bytes)
	require.NoError(t, r.front.Shutdown(ctx), "twice")
}

// TestRefusedAfterWait: kept data the next consumer refuses after the
// wait is counted as refused.
func TestRefusedAfterWait(t *testing.T) {
	host, pins := localHost(t)
	cfg := testConfig(tenPercent)
	p, err := newTracesProcessor(processortestSettings(), cfg, consumertest.NewErr(errors.New("queue full")))
	require.NoError(t, err)
	clock := newFakeClock()
	p.now = clock.Now
	ctx := context.Background()
	require.NoError(t, p.start(ctx, host))
	defer func() { require.NoError(t, p.shutdown(ctx)) }()
	p.cancelPin()
	_, err = p.process(ctx, traces(span{trace: unsampledID(1)}))
	require.ErrorIs(t, err, processorhelper.ErrSkipProcessingData, "everything waits")
	pins.Pin(unsampledID(1), time.Time{}, weftpinsextension.ReasonAlert)
	clock.Advance(cfg.DecisionWait)
	p.flush(ctx, false)
	assert.Equal(t, int64(1), p.counts.kept[keptPinned].Load())
	assert.Equal(t, int64(1), p.counts.dropped[droppedRefused].Load())
}

// TestNoFragments: 1000 traces of 5 spans each arrive over 5 batches,
// interleaved; without late pins each trace is kept whole (exactly the
// sampled ones) or dropped whole, on this node.
func TestNoFragments(t *testing.T) {
	host, pins := localHost(t)
	r := newTracesRig(t, testConfig(tenPercent), host)
	ctx := context.Background()
	const nTraces, perTrace = 1000, 5
	ids := randomIDs(nTraces, 3)
	errTrace := ids[17]
	for b := range perTrace {
		var spans []span
		for i, id := range ids {
			s := span{trace: id, n: uint64(i*perTrace + b)}
			if id == errTrace && b == perTrace-1 {
				s.http = 503 // the last span of one trace fails
			}
			spans = append(spans, s)
		}
		require.NoError(t, r.front.ConsumeTraces(ctx, traces(spans...)))
		r.clock.Advance(time.Second)
	}
	r.clock.Advance(r.p.cfg.DecisionWait)
	r.p.flush(ctx, false)
	// The failing span pinned its trace: the worker goroutine, woken by the
	// pin, sends the four spans that waited, maybe still after the flush
	// above returned (seen in a cold make test: 1 of 5 at the sink).
	require.Eventually(t, func() bool { return keptSpans(r.sink)[errTrace] == perTrace },
		10*time.Second, time.Millisecond, "the failing trace is whole")
	got := keptSpans(r.sink)
	th := thresholdFor(10)
	for _, id := range ids {
		want := 0
		if th.sampled(traceRandomness(id)) || pins.Pinned(id) {
			want = perTrace
		}
		assert.Equal(t, want, got[id], "trace %s", id)
	}
	assert.Equal(t, perTrace, got[errTrace], "the failing trace is whole")
	items, _ := r.p.buf.size()
	assert.Zero(t, items)
}

// TestThresholdWritten: a sampled span leaves with th; a pinned span
// that is not sampled leaves with its TraceState as it came (a
// conditional keep, not a probability).
func TestThresholdWritten(t *testing.T) {
	host, pins := localHost(t)
	r := newTracesRig(t, testConfig(tenPercent), host)
	pins.Pin(unsampledID(1), time.Time{}, weftpinsextension.ReasonAlert)
	td := traces(span{trace: sampledID(1)}, span{trace: unsampledID(1)})
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1).TraceState().FromRaw("vendor=x")
	require.NoError(t, r.front.ConsumeTraces(context.Background(), td))
	spans := r.sink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	require.Equal(t, 2, spans.Len())
	assert.Equal(t, "ot=th:e666", spans.At(0).TraceState().AsRaw())
	assert.Equal(t, "vendor=x", spans.At(1).TraceState().AsRaw())
}

// TestPinsKey: "" finds the first weft_pins by ID, "none" and a host
// without weft_pins mean no pinning, a named ID must exist.
func TestPinsKey(t *testing.T) {
	idB, pinsB := newPins(t, "b", nil)
	idA, pinsA := newPins(t, "a", nil)
	host := weftest.Host{idB: pinsB, idA: pinsA}

	got, err := weftpinsextension.Find(host, "")
	require.NoError(t, err)
	assert.Same(t, pinsA, got, "weft_pins/a sorts first")
	got, err = weftpinsextension.Find(host, "weft_pins/b")
	require.NoError(t, err)
	assert.Same(t, pinsB, got)
	got, err = weftpinsextension.Find(host, PinsNone)
	require.NoError(t, err)
	assert.Nil(t, got)
	got, err = weftpinsextension.Find(weftest.Host{}, "")
	require.NoError(t, err)
	assert.Nil(t, got)
	_, err = weftpinsextension.Find(weftest.Host{}, "weft_pins/c")
	require.ErrorContains(t, err, "not configured")

	// Without pins, sampling alone decides.
	r := newTracesRig(t, testConfig(func(c *Config) { tenPercent(c); c.Pins = PinsNone }), host)
	require.NoError(t, r.front.ConsumeTraces(context.Background(), traces(span{trace: unsampledID(1), status: ptrace.StatusCodeError}, span{trace: sampledID(1)})))
	assert.False(t, pinsA.Pinned(unsampledID(1)))
	assert.Equal(t, 1, r.sink.SpanCount())

	cfg := testConfig(func(c *Config) { c.Pins = "weft_pins/c" })
	p, err := newTracesProcessor(processortestSettings(), cfg, r.sink)
	require.NoError(t, err)
	require.ErrorContains(t, p.start(context.Background(), host), "weft_pins/c")
	require.NoError(t, p.shutdown(context.Background()))
}
