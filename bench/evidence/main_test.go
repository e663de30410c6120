package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOptionsValidate(t *testing.T) {
	ok := options{Sides: "weft,peer", Rate: 100, Duration: 5 * time.Second, DecisionWait: 2 * time.Second, MemRate: 300, MemDuration: 5 * time.Second}
	require.NoError(t, ok.validate())
	tests := []struct {
		name, key string
		edit      func(*options)
	}{
		{"rate too low", "-rate", func(o *options) { o.Rate = 5 }},
		{"duration too short", "-duration", func(o *options) { o.Duration = 100 * time.Millisecond }},
		{"decision_wait below tail_sampling's tick", "-decision-wait", func(o *options) { o.DecisionWait = 500 * time.Millisecond }},
		{"memory rate too low", "-mem-rate", func(o *options) { o.MemRate = 10 }},
		{"negative memory duration", "-mem-duration", func(o *options) { o.MemDuration = -time.Second }},
		{"unknown side", "-sides", func(o *options) { o.Sides = "weft,jaeger" }},
		{"no side", "-sides", func(o *options) { o.Sides = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			err := o.validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.key)
		})
	}
	o := ok
	o.MemDuration, o.MemRate = 0, 0
	assert.NoError(t, o.validate(), "no memory runs: -mem-rate unused")
}

// One request in errorEvery fails, on one hop, the hop and the kind of
// failure rotating; hop spans carry the hop in the span ID.
func TestMesh(t *testing.T) {
	m := newMesh(42)
	reqs := m.next(1200)
	var errs int
	kinds := map[[2]int]int{}
	ids := map[pcommon.TraceID]bool{}
	for i, r := range reqs {
		assert.False(t, ids[r.id], "trace ID %s repeated", r.id)
		ids[r.id] = true
		if i%errorEvery != 0 {
			assert.EqualValues(t, -1, r.errHop)
			continue
		}
		errs++
		k := 0
		if r.http500 {
			k = 1
		}
		kinds[[2]int{int(r.errHop), k}]++
	}
	assert.Equal(t, 12, errs)
	assert.Len(t, kinds, 6, "every hop fails both ways")
	assert.Equal(t, newMesh(42).next(1200), reqs, "the seed fixes the trace IDs")

	td := hopTraces(reqs[:200], 1, time.Now())
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	require.Equal(t, 200, spans.Len())
	var failed int
	for i := range spans.Len() {
		sp, r := spans.At(i), reqs[i]
		assert.Equal(t, r.spanID(1), sp.SpanID())
		assert.Equal(t, r.spanID(0), sp.ParentSpanID())
		code, _ := sp.Attributes().Get("http.response.status_code")
		if sp.Status().Code() == ptrace.StatusCodeError || code.Int() == 500 {
			failed++
			assert.EqualValues(t, 1, r.errHop, "only the failing hop's span is an error")
		}
	}
	assert.Equal(t, 1, failed, "request 100 fails on hop 1")
}

// The sink counts hops per trace, duplicates and spans that are not the
// workload's.
func TestSink(t *testing.T) {
	s, err := startSink()
	require.NoError(t, err)
	defer s.stop()
	defer http.DefaultClient.CloseIdleConnections()
	reqs := newMesh(7).next(3)
	post := func(td ptrace.Traces) {
		body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		require.NoError(t, err)
		resp, err := http.Post(s.endpoint()+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	now := time.Now()
	for h := range hops {
		post(hopTraces(reqs[:1], h, now)) // request 0: complete
	}
	post(hopTraces(reqs[1:2], 2, now)) // request 1: a fragment
	post(hopTraces(reqs[1:2], 2, now)) // … sent twice
	foreign := hopTraces(reqs[2:3], 0, now)
	foreign.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetSpanID(pcommon.SpanID{9, 9, 9, 9, 9, 9, 9, 9})
	post(foreign)

	assert.Equal(t, 3, s.hopsOf(reqs[0].id))
	assert.Equal(t, 1, s.hopsOf(reqs[1].id))
	assert.Equal(t, 0, s.hopsOf(reqs[2].id))
	r := tally("test", s, reqs, 0.1, nil)
	assert.Equal(t, 6, r.SinkSpans)
	assert.Equal(t, 1, r.Duplicates)
	assert.Equal(t, 1, r.Foreign)
	assert.Equal(t, 4, r.WorkloadSpans)
	assert.Equal(t, 2, r.Exported)
	assert.Equal(t, 1, r.Fragments)
	assert.Equal(t, 1, r.ErrorTraces, "request 0 is an error trace")
	assert.Equal(t, 1, r.ErrorComplete)
	assert.Equal(t, 1, r.NonErrorFragment)
}

func TestMetricsTextSum(t *testing.T) {
	text := metricsText(`# HELP x
{"weft_pins.gossip_bytes_total",direction="sent",otel_scope_name="a"} 120
{"weft_pins.gossip_bytes_total",direction="received",otel_scope_name="a"} 80
weft_pins_members{otel_scope_name="a"} 3
evidence_sampling_spans_kept_total{reason="pinned"} 4
evidence_sampling_spans_kept_total{reason="sampled"} 6
evidence_sampling_spans_kept_bytes 99
`)
	v, ok := text.sum("weft_pins.gossip_bytes", map[string]string{"direction": "sent"})
	assert.True(t, ok)
	assert.Equal(t, 120.0, v)
	v, _ = text.sum("weft_pins.gossip_bytes", nil)
	assert.Equal(t, 200.0, v)
	v, _ = text.sum("weft_pins.members", nil)
	assert.Equal(t, 3.0, v)
	v, _ = text.sum("evidence_sampling.spans_kept", nil)
	assert.Equal(t, 10.0, v, "a longer name with the same prefix is another metric")
	_, ok = text.sum("weft_pins.pins", nil)
	assert.False(t, ok)
	_, err := text.must("weft_pins.pins", nil)
	assert.ErrorContains(t, err, "weft_pins.pins")
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestSideBySide runs the harness small: both sides (weft only with
// -short: building the tailpeer module from a cold cache takes minutes),
// then the memory runs. weft must deliver every error trace whole and no
// fragment, and the sink must hold exactly the traces weft's rule keeps;
// the peer's figures must be computed and add up.
func TestSideBySide(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	o := options{
		Sides:        "weft,peer",
		Rate:         200,
		Duration:     10 * time.Second,
		DecisionWait: 3 * time.Second,
		MemRate:      1500,
		MemDuration:  7 * time.Second,
		WorkDir:      t.TempDir(),
	}
	if testing.Short() {
		o.Sides = "weft"
	}
	res, err := run(t.Context(), o, testWriter{t})
	require.NoError(t, err)
	md := res.markdown()
	t.Log("\n" + md)

	w := res.Weft
	require.NotNil(t, w)
	assert.Equal(t, 2000, w.Requests, "requests sent at 200/s for 10 s")
	assert.Equal(t, w.Requests/errorEvery, w.ErrorTraces)
	assert.Equal(t, w.ErrorTraces, w.ErrorComplete, "weft: every error trace complete")
	assert.Zero(t, w.Fragments, "weft: fragments")
	assert.Zero(t, w.Mismatched, "weft: traces whose spans at the sink differ from 'error or sampled: all 3, else none'")
	assert.Equal(t, int(w.WeftKeptSpans), w.SinkSpans, "weft: every span the agents kept reached the sink")
	assert.Equal(t, hops*w.Exported, w.SinkSpans)
	assert.Zero(t, w.Duplicates+w.Foreign+w.Refused)
	assert.True(t, w.withinTolerance(), "weft: complete non-error traces %d of %d, p %.6f", w.NonErrorComplete, w.NonError, w.P)
	var local float64
	for _, n := range w.Nodes {
		local += n.PinsLocal
		assert.Positive(t, n.GossipSent, "%s gossip bytes sent", n.Node)
		assert.Positive(t, n.GossipReceived, "%s gossip bytes received", n.Node)
		assert.Equal(t, float64(w.ErrorTraces), n.PinsLocal+n.PinsReceived, "%s: every error trace pinned here or received", n.Node)
		assert.Zero(t, n.LatePins+n.BufferFull+n.Refused, "%s: late pins, buffer_full, refused", n.Node)
	}
	assert.Equal(t, float64(w.ErrorTraces), local, "each error trace pinned once, by its failing node")
	assert.Positive(t, w.gossipPerNodePerSecond())

	if !testing.Short() {
		p := res.Peer
		require.NotNil(t, p)
		assert.Equal(t, 2000, p.Requests)
		assert.Equal(t, p.Requests, p.ErrorTraces+p.NonError)
		assert.Equal(t, p.ErrorTraces, p.ErrorComplete+p.ErrorFragment+p.ErrorMissing)
		assert.Equal(t, p.Exported, p.ErrorComplete+p.ErrorFragment+p.NonErrorComplete+p.NonErrorFragment)
		assert.Equal(t, p.SinkSpans, p.WorkloadSpans+p.Duplicates+p.Foreign)
		assert.Zero(t, p.ErrorMissing, "tail_sampling keeps at least the failing node's span of every error trace")
		assert.Positive(t, p.ErrorFragment, "tail_sampling per node leaves error traces in fragments (the point of the comparison)")
		assert.Equal(t, -1, p.Mismatched)
	}
	assert.Contains(t, md, "| error traces complete (3/3 spans) | **100.0 %**")

	mw, mo := res.MemWith, res.MemWithout
	require.NotNil(t, mw)
	require.NotNil(t, mo)
	assert.Positive(t, mw.Samples, "buffer gauges sampled after decision_wait")
	// 1500 spans/s, 90 % of them waiting 3 s (plus up to a tick): about
	// 4,050 spans; at least half that.
	assert.Greater(t, mw.BufferedSpansMax, 2025.0)
	assert.Greater(t, mw.BufferedBytesMax, mw.BufferedSpansMax*100, "at least 100 accounted bytes per waiting span")
	for _, m := range []*memResult{mw, mo} {
		assert.Equal(t, 10500, m.SpansSent, "500 requests/s × 3 hops for 7 s")
		assert.Zero(t, m.Refused)
		// Not HWM ≥ max sampled RSS: the kernel updates VmHWM lazily
		// (per-thread RSS counters), a VmRSS sample can pass it by a few
		// hundred KiB (seen: 61,504 against 61,288 KiB).
		assert.Positive(t, m.HWMKiB)
		assert.Greater(t, m.MaxRSSKiB, m.ReadyRSSKiB, "RSS grew under the workload")
	}
	assert.Contains(t, md, "Decision buffer memory")
}
