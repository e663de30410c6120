package weftstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// newTestStore creates a store from the default config changed by mod and
// starts it; it is shut down in t.Cleanup.
func newTestStore(t testing.TB, mod func(*Config)) *Store {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	if mod != nil {
		mod(cfg)
	}
	st, err := newStore(componenttest.NewNopTelemetrySettings(), cfg)
	require.NoError(t, err)
	require.NoError(t, st.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, st.Shutdown(context.Background())) })
	return st
}

// testPod is one simulated pod.
type testPod struct {
	ns, name, app, container string
}

var testPods = []testPod{
	{"bookinfo", "productpage-v1-6b7f6db7d8-x2x9k", "productpage", "productpage"},
	{"bookinfo", "reviews-v1-5b8b8fcc9c-9kq2m", "reviews", "reviews"},
	{"bookinfo", "reviews-v2-7f5c9c8b6f-4wz7p", "reviews", "reviews"},
	{"bookinfo", "ratings-v1-85c7b6d8d4-l8h2n", "ratings", "ratings"},
	{"fn", "hello-00001-deployment-6c9d7b-abcde", "hello", "user-container"},
}

func (p testPod) resource(r pcommon.Resource) {
	a := r.Attributes()
	a.PutStr("service.name", p.app)
	a.PutStr("k8s.namespace.name", p.ns)
	a.PutStr("k8s.pod.name", p.name)
	a.PutStr("k8s.container.name", p.container)
}

func (p testPod) key() Pod { return Pod{Namespace: p.ns, Name: p.name} }

func newTraceID(rng *rand.Rand) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], rng.Uint64())
	binary.BigEndian.PutUint64(id[8:], rng.Uint64()|1)
	return id
}

func newSpanID(rng *rand.Rand) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], rng.Uint64()|1)
	return id
}

// simRequest is one simulated request: a trace across two pods.
type simRequest struct {
	traceID     pcommon.TraceID
	client      testPod
	server      testPod
	clientSpan  pcommon.SpanID
	serverSpan  pcommon.SpanID
	start, end  time.Time
	scraped     time.Time // when the metrics point of the request was taken
	status      int
	route       string
	logsWritten int
}

// simulate generates n requests, like internal/simnode does: each is a
// client and a server span sharing a trace ID, an access log line and an
// application log line of the server pod carrying the trace ID, and an
// exemplar of the server's request counter and latency histogram pointing
// at the trace. Every fifth request fails with 503.
func simulate(rng *rand.Rand, n int, start time.Time) ([]simRequest, ptrace.Traces, plog.Logs, pmetric.Metrics) {
	td, ld, md := ptrace.NewTraces(), plog.NewLogs(), pmetric.NewMetrics()
	spans := make(map[string]ptrace.SpanSlice)
	logs := make(map[string]plog.LogRecordSlice)
	spansOf := func(p testPod) ptrace.SpanSlice {
		if s, ok := spans[p.name]; ok {
			return s
		}
		rs := td.ResourceSpans().AppendEmpty()
		p.resource(rs.Resource())
		s := rs.ScopeSpans().AppendEmpty().Spans()
		spans[p.name] = s
		return s
	}
	logsOf := func(p testPod) plog.LogRecordSlice {
		if s, ok := logs[p.name]; ok {
			return s
		}
		rl := ld.ResourceLogs().AppendEmpty()
		p.resource(rl.Resource())
		s := rl.ScopeLogs().AppendEmpty().LogRecords()
		logs[p.name] = s
		return s
	}
	reqs := make([]simRequest, 0, n)
	for i := range n {
		server := testPods[1+rng.IntN(len(testPods)-1)]
		r := simRequest{
			traceID: newTraceID(rng), client: testPods[0], server: server,
			clientSpan: newSpanID(rng), serverSpan: newSpanID(rng),
			start:  start.Add(time.Duration(i) * 10 * time.Millisecond),
			status: 200, route: "/" + server.app + "/{id}",
		}
		// Distinct end times (the nanoseconds are i), so newest-first orders are unique.
		r.end = r.start.Add(time.Millisecond + time.Duration(rng.IntN(50_000))*time.Microsecond + time.Duration(i))
		r.scraped = r.start.Add(60 * time.Millisecond)
		if i%5 == 4 {
			r.status = 503
		}
		for _, side := range []struct {
			p      testPod
			id     pcommon.SpanID
			parent pcommon.SpanID
			kind   ptrace.SpanKind
		}{{r.client, r.clientSpan, pcommon.SpanID{}, ptrace.SpanKindClient}, {r.server, r.serverSpan, r.clientSpan, ptrace.SpanKindServer}} {
			sp := spansOf(side.p).AppendEmpty()
			sp.SetTraceID(r.traceID)
			sp.SetSpanID(side.id)
			sp.SetParentSpanID(side.parent)
			sp.SetName("GET " + r.route)
			sp.SetKind(side.kind)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(r.start))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(r.end))
			sp.Attributes().PutStr("http.request.method", "GET")
			sp.Attributes().PutInt("http.response.status_code", int64(r.status))
			if r.status >= 500 {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
		}
		for j, body := range []string{
			fmt.Sprintf(`{"level":"info","msg":"handled","trace_id":"%s","status":%d}`, r.traceID, r.status),
			fmt.Sprintf(`[%s] "GET %s HTTP/1.1" %d - via_upstream traceparent=00-%s-%s-01`, r.end.Format(time.RFC3339), r.route, r.status, r.traceID, r.serverSpan),
		} {
			lr := logsOf(server).AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(r.end.Add(time.Duration(j) * time.Microsecond)))
			lr.Body().SetStr(body)
			lr.SetTraceID(r.traceID)
			lr.SetSpanID(r.serverSpan)
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			if r.status >= 500 {
				lr.SetSeverityNumber(plog.SeverityNumberError)
			}
			r.logsWritten++
		}
		reqs = append(reqs, r)
	}
	// One cumulative counter and histogram point per request and server pod,
	// each with the request's exemplar (as a scrape right after it would see).
	counts := make(map[string]int)
	for _, r := range reqs {
		counts[r.server.name]++
		rm := md.ResourceMetrics().AppendEmpty()
		r.server.resource(rm.Resource())
		rm.Resource().Attributes().PutStr("service.instance.id", r.server.name)
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		m := ms.AppendEmpty()
		m.SetName("http.server.requests")
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := sum.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(r.scraped))
		dp.SetIntValue(int64(counts[r.server.name]))
		dp.Attributes().PutStr("http.route", r.route)
		ex := dp.Exemplars().AppendEmpty()
		ex.SetTraceID(r.traceID)
		ex.SetSpanID(r.serverSpan)
		ex.SetIntValue(1)
		ex.SetTimestamp(pcommon.NewTimestampFromTime(r.scraped))

		h := ms.AppendEmpty()
		h.SetName("http.server.request.duration")
		h.SetUnit("s")
		hist := h.SetEmptyHistogram()
		hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		hp := hist.DataPoints().AppendEmpty()
		hp.SetTimestamp(pcommon.NewTimestampFromTime(r.scraped))
		hp.Attributes().PutStr("http.route", r.route)
		hp.ExplicitBounds().FromRaw([]float64{0.005, 0.01, 0.025, 0.05, 0.1})
		d := r.end.Sub(r.start).Seconds()
		bc := make([]uint64, 6)
		b := 5
		for k, bound := range []float64{0.005, 0.01, 0.025, 0.05, 0.1} {
			if d <= bound {
				b = k
				break
			}
		}
		bc[b] = uint64(counts[r.server.name])
		hp.BucketCounts().FromRaw(bc)
		hp.SetCount(uint64(counts[r.server.name]))
		hp.SetSum(d * float64(counts[r.server.name]))
		hx := hp.Exemplars().AppendEmpty()
		hx.SetTraceID(r.traceID)
		hx.SetSpanID(r.serverSpan)
		hx.SetDoubleValue(d)
		hx.SetTimestamp(pcommon.NewTimestampFromTime(r.scraped))
	}
	return reqs, td, ld, md
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
