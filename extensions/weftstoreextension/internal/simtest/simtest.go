// Package simtest makes the test data of weft_store's tests and
// benchmarks: simulated requests across pods (traces, logs and metrics
// with exemplars, as internal/simnode makes them), batches of spans and
// log records, and probes of the heap and the resident set. It is imported
// by _test.go files only.
package simtest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Pod is one simulated pod.
type Pod struct {
	NS, Name, App, Container string
}

// Pods are the simulated pods: Pods[0] is the client of every request.
var Pods = []Pod{
	{"bookinfo", "productpage-v1-6b7f6db7d8-x2x9k", "productpage", "productpage"},
	{"bookinfo", "reviews-v1-5b8b8fcc9c-9kq2m", "reviews", "reviews"},
	{"bookinfo", "reviews-v2-7f5c9c8b6f-4wz7p", "reviews", "reviews"},
	{"bookinfo", "ratings-v1-85c7b6d8d4-l8h2n", "ratings", "ratings"},
	{"fn", "hello-00001-deployment-6c9d7b-abcde", "hello", "user-container"},
}

// Resource sets the resource attributes of the pod on r.
func (p Pod) Resource(r pcommon.Resource) {
	a := r.Attributes()
	a.PutStr("service.name", p.App)
	a.PutStr("k8s.namespace.name", p.NS)
	a.PutStr("k8s.pod.name", p.Name)
	a.PutStr("k8s.container.name", p.Container)
}

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

// Request is one simulated request: a trace across two pods.
type Request struct {
	TraceID     pcommon.TraceID
	Client      Pod
	Server      Pod
	ClientSpan  pcommon.SpanID
	ServerSpan  pcommon.SpanID
	Start, End  time.Time
	Scraped     time.Time // when the metrics point of the request was taken
	Status      int
	Route       string
	LogsWritten int
}

// Simulate generates n requests, like internal/simnode does: each is a
// client and a server span sharing a trace ID, an access log line and an
// application log line of the server pod carrying the trace ID, and an
// exemplar of the server's request counter and latency histogram pointing
// at the trace. Every fifth request fails with 503.
func Simulate(rng *rand.Rand, n int, start time.Time) ([]Request, ptrace.Traces, plog.Logs, pmetric.Metrics) {
	td, ld, md := ptrace.NewTraces(), plog.NewLogs(), pmetric.NewMetrics()
	spans := make(map[string]ptrace.SpanSlice)
	logs := make(map[string]plog.LogRecordSlice)
	spansOf := func(p Pod) ptrace.SpanSlice {
		if s, ok := spans[p.Name]; ok {
			return s
		}
		rs := td.ResourceSpans().AppendEmpty()
		p.Resource(rs.Resource())
		s := rs.ScopeSpans().AppendEmpty().Spans()
		spans[p.Name] = s
		return s
	}
	logsOf := func(p Pod) plog.LogRecordSlice {
		if s, ok := logs[p.Name]; ok {
			return s
		}
		rl := ld.ResourceLogs().AppendEmpty()
		p.Resource(rl.Resource())
		s := rl.ScopeLogs().AppendEmpty().LogRecords()
		logs[p.Name] = s
		return s
	}
	reqs := make([]Request, 0, n)
	for i := range n {
		server := Pods[1+rng.IntN(len(Pods)-1)]
		r := Request{
			TraceID: newTraceID(rng), Client: Pods[0], Server: server,
			ClientSpan: newSpanID(rng), ServerSpan: newSpanID(rng),
			Start:  start.Add(time.Duration(i) * 10 * time.Millisecond),
			Status: 200, Route: "/" + server.App + "/{id}",
		}
		// Distinct end times (the nanoseconds are i), so newest-first orders are unique.
		r.End = r.Start.Add(time.Millisecond + time.Duration(rng.IntN(50_000))*time.Microsecond + time.Duration(i))
		r.Scraped = r.Start.Add(60 * time.Millisecond)
		if i%5 == 4 {
			r.Status = 503
		}
		for _, side := range []struct {
			p      Pod
			id     pcommon.SpanID
			parent pcommon.SpanID
			kind   ptrace.SpanKind
		}{{r.Client, r.ClientSpan, pcommon.SpanID{}, ptrace.SpanKindClient}, {r.Server, r.ServerSpan, r.ClientSpan, ptrace.SpanKindServer}} {
			sp := spansOf(side.p).AppendEmpty()
			sp.SetTraceID(r.TraceID)
			sp.SetSpanID(side.id)
			sp.SetParentSpanID(side.parent)
			sp.SetName("GET " + r.Route)
			sp.SetKind(side.kind)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(r.Start))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(r.End))
			sp.Attributes().PutStr("http.request.method", "GET")
			sp.Attributes().PutInt("http.response.status_code", int64(r.Status))
			if r.Status >= 500 {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
		}
		for j, body := range []string{
			fmt.Sprintf(`{"level":"info","msg":"handled","trace_id":"%s","status":%d}`, r.TraceID, r.Status),
			fmt.Sprintf(`[%s] "GET %s HTTP/1.1" %d - via_upstream traceparent=00-%s-%s-01`, r.End.Format(time.RFC3339), r.Route, r.Status, r.TraceID, r.ServerSpan),
		} {
			lr := logsOf(server).AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(r.End.Add(time.Duration(j) * time.Microsecond)))
			lr.Body().SetStr(body)
			lr.SetTraceID(r.TraceID)
			lr.SetSpanID(r.ServerSpan)
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			if r.Status >= 500 {
				lr.SetSeverityNumber(plog.SeverityNumberError)
			}
			r.LogsWritten++
		}
		reqs = append(reqs, r)
	}
	// One cumulative counter and histogram point per request and server pod,
	// each with the request's exemplar (as a scrape right after it would see).
	counts := make(map[string]int)
	for _, r := range reqs {
		counts[r.Server.Name]++
		rm := md.ResourceMetrics().AppendEmpty()
		r.Server.Resource(rm.Resource())
		rm.Resource().Attributes().PutStr("service.instance.id", r.Server.Name)
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		m := ms.AppendEmpty()
		m.SetName("http.server.requests")
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := sum.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(r.Scraped))
		dp.SetIntValue(int64(counts[r.Server.Name]))
		dp.Attributes().PutStr("http.route", r.Route)
		ex := dp.Exemplars().AppendEmpty()
		ex.SetTraceID(r.TraceID)
		ex.SetSpanID(r.ServerSpan)
		ex.SetIntValue(1)
		ex.SetTimestamp(pcommon.NewTimestampFromTime(r.Scraped))

		h := ms.AppendEmpty()
		h.SetName("http.server.request.duration")
		h.SetUnit("s")
		hist := h.SetEmptyHistogram()
		hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		hp := hist.DataPoints().AppendEmpty()
		hp.SetTimestamp(pcommon.NewTimestampFromTime(r.Scraped))
		hp.Attributes().PutStr("http.route", r.Route)
		hp.ExplicitBounds().FromRaw([]float64{0.005, 0.01, 0.025, 0.05, 0.1})
		d := r.End.Sub(r.Start).Seconds()
		bc := make([]uint64, 6)
		b := 5
		for k, bound := range []float64{0.005, 0.01, 0.025, 0.05, 0.1} {
			if d <= bound {
				b = k
				break
			}
		}
		bc[b] = uint64(counts[r.Server.Name])
		hp.BucketCounts().FromRaw(bc)
		hp.SetCount(uint64(counts[r.Server.Name]))
		hp.SetSum(d * float64(counts[r.Server.Name]))
		hx := hp.Exemplars().AppendEmpty()
		hx.SetTraceID(r.TraceID)
		hx.SetSpanID(r.ServerSpan)
		hx.SetDoubleValue(d)
		hx.SetTimestamp(pcommon.NewTimestampFromTime(r.Scraped))
	}
	return reqs, td, ld, md
}

// NewRand returns a random source seeded with seed.
func NewRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// SpanBatch returns a batch of n spans of one pod with distinct trace IDs,
// numbered on from *seq (the last byte of each span ID is its number).
func SpanBatch(seq *uint64, n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	Pods[1].Resource(rs.Resource())
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for range n {
		*seq++
		sp := spans.AppendEmpty()
		var tid pcommon.TraceID
		tid[0], tid[15] = byte(*seq>>8), byte(*seq)
		tid[7] = byte(*seq >> 16)
		sp.SetTraceID(tid)
		sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, byte(*seq)})
		sp.SetName("GET /reviews/{id}")
		sp.SetStartTimestamp(pcommon.Timestamp(*seq * 1000))
		sp.SetEndTimestamp(pcommon.Timestamp(*seq*1000 + 500))
		sp.Attributes().PutStr("http.request.method", "GET")
		sp.Attributes().PutStr("url.path", "/reviews/0")
		sp.Attributes().PutInt("http.response.status_code", 200)
		if *seq%7 == 0 {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	return td
}

// LogBatch returns a batch of n JSON log records of one pod, numbered on
// from *seq (the last byte of each trace ID is its number).
func LogBatch(seq *uint64, n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	Pods[1].Resource(rl.Resource())
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for range n {
		*seq++
		lr := recs.AppendEmpty()
		lr.SetTimestamp(pcommon.Timestamp(*seq * 1000))
		var tid pcommon.TraceID
		tid[0], tid[15], tid[7] = byte(*seq>>8), byte(*seq), byte(*seq>>16)
		lr.SetTraceID(tid)
		lr.Body().SetStr(`{"level":"info","msg":"GET /reviews/0 200 12ms","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","user":"jason"}`)
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
	}
	return ld
}

// Batch is the size of the benchmarks' batches: an op appends Batch
// spans, records or samples.
const Batch = 100

// PerItem reports the cost per span, record or sample (unit) besides per
// batch.
func PerItem(b *testing.B, unit string) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*Batch), "ns/"+unit)
}

// Gauges returns Batch gauge points of one pod at ts, one per series;
// series differ by a route attribute, prefixed with gen (a new gen: new
// series).
func Gauges(gen int, ts time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	Pods[1].Resource(rm.Resource())
	rm.Resource().Attributes().PutStr("service.instance.id", "10.0.0.7:9080")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("http.server.active_requests")
	pts := m.SetEmptyGauge().DataPoints()
	for i := range Batch {
		dp := pts.AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		dp.SetDoubleValue(float64(i))
		dp.Attributes().PutStr("http.route", "/r"+strconv.Itoa(gen)+"/"+strconv.Itoa(i))
		dp.Attributes().PutStr("http.request.method", "GET")
		dp.Attributes().PutInt("http.response.status_code", 200)
	}
	return md
}

// HeapAlloc returns the live heap after two garbage collections.
func HeapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// RSSAfterFree returns the process's resident set size (VmRSS) after the
// runtime gave its free pages back to the kernel.
func RSSAfterFree(t testing.TB) int64 {
	t.Helper()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}
