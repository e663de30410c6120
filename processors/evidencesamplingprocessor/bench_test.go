package evidencesamplingprocessor

import (
	"context"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/weftest"
)

// envoyBatch is a batch of n server spans of an Istio sidecar, one trace
// each, with the resource of a pod and the attributes Envoy's OpenTelemetry
// tracer sets: what a node's agent receives.
func envoyBatch(ids []pcommon.TraceID) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", "reviews.bookinfo")
	ra.PutStr("service.version", "v2")
	ra.PutStr("k8s.pod.name", "reviews-v2-7d9f8c6b5-x2x4q")
	ra.PutStr("k8s.pod.uid", "1b4e28ba-2fa1-11d2-883f-0016d3cca427")
	ra.PutStr("k8s.namespace.name", "bookinfo")
	ra.PutStr("k8s.node.name", "gke-prod-pool-1-3f2a9c1d-x8kq")
	ra.PutStr("k8s.deployment.name", "reviews-v2")
	ra.PutStr("host.name", "reviews-v2-7d9f8c6b5-x2x4q")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("envoy")
	start := pcommon.NewTimestampFromTime(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	for i, id := range ids {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(id)
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], uint64(i)+1)
		s.SetSpanID(sid)
		s.SetParentSpanID(sid)
		s.SetName("reviews.bookinfo.svc.cluster.local:9080/*")
		s.SetKind(ptrace.SpanKindServer)
		s.SetStartTimestamp(start)
		s.SetEndTimestamp(start + 3_500_000)
		a := s.Attributes()
		a.PutStr("http.request.method", "GET")
		a.PutStr("url.full", "http://reviews:9080/reviews/0")
		a.PutInt("http.response.status_code", 200)
		a.PutStr("user_agent.original", "python-requests/2.31.0")
		a.PutStr("upstream_cluster", "inbound|9080||")
		a.PutStr("network.peer.address", "10.12.3.45")
		a.PutStr("node_id", "sidecar~10.12.3.45~reviews-v2-7d9f8c6b5-x2x4q.bookinfo~bookinfo.svc.cluster.local")
		a.PutStr("component", "proxy")
	}
	return td
}

// BenchmarkProcessSpans: ns per span through the processor (pins held in
// a local weft_pins, error checks, sampling, th writes, the waiting 90 %
// encoded into the buffer; at steady state the buffer is full and evicts
// the oldest, as it decides at deadlines), in batches of 100 spans of
// distinct traces.
func BenchmarkProcessSpans(b *testing.B) {
	for _, bc := range []struct {
		name    string
		percent float64
	}{{"100pct", 100}, {"10pct", 10}} {
		b.Run(bc.name, func(b *testing.B) {
			id, pins := newPins(b, "", nil)
			cfg := testConfig(func(c *Config) { c.SamplingPercentage = bc.percent })
			p, err := newTracesProcessor(processortestSettings(), cfg, consumertest.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			if err := p.start(context.Background(), weftest.Host{id: pins}); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = p.shutdown(context.Background()) }()
			const batch = 100
			ids := randomIDs(batch*1000, 1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				off := (i * batch) % len(ids)
				td := envoyBatch(ids[off : off+batch])
				b.StartTimer()
				_, _ = p.process(context.Background(), td)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/span")
		})
	}
}

// BenchmarkBufferBytesPerSpan: the memory of the decision buffer at 5k
// spans/s with the default 10 s wait, i.e. 50,000 spans waiting (a 0 %
// sampling keeps every span waiting), in batches of 100 spans of
// distinct traces: heap bytes per waiting span (live heap after GC,
// before and after) and the bytes the bound accounts per span.
func BenchmarkBufferBytesPerSpan(b *testing.B) {
	const spans = 50_000
	ids := randomIDs(spans, 2)
	for i := 0; i < b.N; i++ {
		cfg := testConfig(func(c *Config) { c.SamplingPercentage = 0; c.Pins = PinsNone; c.MaxBufferedSpanBytes = 1 << 30 })
		p, err := newTracesProcessor(processortestSettings(), cfg, consumertest.NewNop())
		if err != nil {
			b.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for off := 0; off < spans; off += 100 {
			_, _ = p.process(context.Background(), envoyBatch(ids[off:off+100]))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		items, bytes := p.buf.size()
		if items != spans {
			b.Fatalf("%d spans waiting, want %d", items, spans)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/spans, "heapB/span")
		b.ReportMetric(float64(bytes)/spans, "accountedB/span")
		runtime.KeepAlive(p)
	}
}
