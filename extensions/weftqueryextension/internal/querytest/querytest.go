// Package querytest holds the data the tests of weft_query and its rooms
// query: two traces, metrics with exemplars, log records, written into a
// weft_store. It is imported by _test.go files only.
package querytest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extensions/weftstoreextension"
)

// Fixed IDs of the fixture's data.
var (
	CheckoutTraceID = pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	ReviewsTraceID  = pcommon.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}
	RootSpanID      = pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 1}
	ChargeSpanID    = pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 2}
	ReviewsSpanID   = pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 3}
	RatingsSpanID   = pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 4}
)

// TS converts a fixture time to pdata time.
func TS(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

// PutPod sets a resource's service and Kubernetes pod attributes.
func PutPod(r pcommon.Resource, service, ns, pod, container string) {
	a := r.Attributes()
	a.PutStr("service.name", service)
	a.PutStr("k8s.namespace.name", ns)
	a.PutStr("k8s.pod.name", pod)
	a.PutStr("k8s.container.name", container)
}

// Fill writes: gauge node_temp_celsius{sensor=a|b} and counter
// http_requests_total{code=200|500} every 15 s for 5 min from t0 (with
// exemplars of the two traces on the 500 series), two traces, and four log
// records.
func Fill(t testing.TB, st *weftstoreextension.Store, t0 time.Time) {
	t.Helper()
	ctx := context.Background()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	PutPod(rm.Resource(), "checkout", "shop", "checkout-7d9c8b5f4-x2x9q", "checkout")
	sm := rm.ScopeMetrics().AppendEmpty()
	g := sm.Metrics().AppendEmpty()
	g.SetName("node_temp_celsius")
	gauge := g.SetEmptyGauge()
	c := sm.Metrics().AppendEmpty()
	c.SetName("http_requests")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i := range 21 {
		at := t0.Add(time.Duration(i) * 15 * time.Second)
		for j, sensor := range []string{"a", "b"} {
			p := gauge.DataPoints().AppendEmpty()
			p.SetTimestamp(TS(at))
			p.SetDoubleValue(float64(i) * float64(j+1))
			p.Attributes().PutStr("sensor", sensor)
		}
		for j, code := range []string{"200", "500"} {
			p := sum.DataPoints().AppendEmpty()
			p.SetStartTimestamp(TS(t0.Add(-time.Minute)))
			p.SetTimestamp(TS(at))
			p.SetIntValue(int64(i * 10 / (j*9 + 1)))
			p.Attributes().PutStr("code", code)
			if code == "500" && i == 4 {
				ex := p.Exemplars().AppendEmpty()
				ex.SetTimestamp(TS(at.Add(-time.Second)))
				ex.SetDoubleValue(1)
				ex.SetTraceID(CheckoutTraceID)
				ex.SetSpanID(RootSpanID)
			}
		}
	}
	require.NoError(t, st.AppendMetrics(ctx, md))

	require.NoError(t, st.AppendTraces(ctx, Traces(t0)))

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	PutPod(rl.Resource(), "checkout", "shop", "checkout-7d9c8b5f4-x2x9q", "checkout")
	sl := rl.ScopeLogs().AppendEmpty()
	for i, body := range []string{"request received", "payment failed: card declined", "responding 502"} {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(TS(t0.Add(time.Minute + time.Duration(i)*10*time.Millisecond)))
		lr.Body().SetStr(body)
		lr.SetTraceID(CheckoutTraceID)
		lr.SetSpanID(RootSpanID)
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
	}
	rl2 := ld.ResourceLogs().AppendEmpty()
	PutPod(rl2.Resource(), "reviews", "bookinfo", "reviews-v2-7f5c9c8b6f-4wz7p", "reviews")
	lr := rl2.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(TS(t0.Add(2 * time.Minute)))
	lr.Body().SetStr("served reviews")
	require.NoError(t, st.AppendLogs(ctx, ld))
}

// get sends a GET with optional headers and returns status and body.
// Traces are the fixture's two traces: checkout (a failing server
// span and its failing client child in another service, with an event) and
// reviews (one OK span).
func Traces(t0 time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	PutPod(rs.Resource(), "checkout", "shop", "checkout-7d9c8b5f4-x2x9q", "checkout")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("weft/test")
	root := ss.Spans().AppendEmpty()
	root.SetTraceID(CheckoutTraceID)
	root.SetSpanID(RootSpanID)
	root.SetName("POST /checkout")
	root.SetKind(ptrace.SpanKindServer)
	root.SetStartTimestamp(TS(t0.Add(time.Minute)))
	root.SetEndTimestamp(TS(t0.Add(time.Minute + 40*time.Millisecond)))
	root.Attributes().PutStr("http.route", "/checkout")
	root.Attributes().PutInt("http.response.status_code", 502)
	root.Attributes().PutDouble("cart.value", 42.5)
	root.Attributes().PutBool("cart.gift", true)
	root.Status().SetCode(ptrace.StatusCodeError)
	root.Status().SetMessage("payment failed")

	rs2 := td.ResourceSpans().AppendEmpty()
	PutPod(rs2.Resource(), "payment", "shop", "payment-5c4d7-abcde", "payment")
	ss2 := rs2.ScopeSpans().AppendEmpty()
	child := ss2.Spans().AppendEmpty()
	child.SetTraceID(CheckoutTraceID)
	child.SetSpanID(ChargeSpanID)
	child.SetParentSpanID(RootSpanID)
	child.SetName("charge card")
	child.SetKind(ptrace.SpanKindClient)
	child.SetStartTimestamp(TS(t0.Add(time.Minute + 10*time.Millisecond)))
	child.SetEndTimestamp(TS(t0.Add(time.Minute + 30*time.Millisecond)))
	child.Attributes().PutStr("payment.provider", "acme")
	ev := child.Events().AppendEmpty()
	ev.SetName("retry")
	ev.SetTimestamp(TS(t0.Add(time.Minute + 20*time.Millisecond)))
	ev.Attributes().PutInt("attempt", 2)
	child.Status().SetCode(ptrace.StatusCodeError)
	child.Status().SetMessage("card declined")

	rs3 := td.ResourceSpans().AppendEmpty()
	PutPod(rs3.Resource(), "reviews", "bookinfo", "reviews-v2-7f5c9c8b6f-4wz7p", "reviews")
	rv := rs3.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	rv.SetTraceID(ReviewsTraceID)
	rv.SetSpanID(ReviewsSpanID)
	rv.SetName("GET /reviews")
	rv.SetKind(ptrace.SpanKindServer)
	rv.SetStartTimestamp(TS(t0.Add(2 * time.Minute)))
	rv.SetEndTimestamp(TS(t0.Add(2*time.Minute + 5*time.Millisecond)))
	rv.Status().SetCode(ptrace.StatusCodeOk)

	// An internal span with what the translation must also carry: a link,
	// trace state, scope version, typed resource attributes, bytes, slice and
	// map attributes, an unnamed event.
	rs4 := td.ResourceSpans().AppendEmpty()
	PutPod(rs4.Resource(), "reviews", "bookinfo", "reviews-v2-7f5c9c8b6f-4wz7p", "reviews")
	rs4.Resource().Attributes().PutInt("process.pid", 4242)
	rs4.Resource().Attributes().PutBool("debug", false)
	ss4 := rs4.ScopeSpans().AppendEmpty()
	ss4.Scope().SetName("reviews/db")
	ss4.Scope().SetVersion("1.2.3")
	ld := ss4.Spans().AppendEmpty()
	ld.SetTraceID(ReviewsTraceID)
	ld.SetSpanID(RatingsSpanID)
	ld.SetParentSpanID(ReviewsSpanID)
	ld.SetName("load ratings")
	ld.SetKind(ptrace.SpanKindInternal)
	ld.TraceState().FromRaw("vendor=abc")
	ld.SetStartTimestamp(TS(t0.Add(2*time.Minute + time.Millisecond)))
	ld.SetEndTimestamp(TS(t0.Add(2*time.Minute + 3*time.Millisecond)))
	ld.Attributes().PutEmptyBytes("db.key").FromRaw([]byte{0xde, 0xad, 0xbe, 0xef})
	ld.Attributes().PutEmptySlice("db.hosts").FromRaw([]any{"a", "b"})
	ld.Attributes().PutEmptyMap("db.opts").PutInt("retries", 3)
	ld.Attributes().PutDouble("db.ratio", 0.5)
	link := ld.Links().AppendEmpty()
	link.SetTraceID(CheckoutTraceID)
	link.SetSpanID(RootSpanID)
	unnamed := ld.Events().AppendEmpty()
	unnamed.SetTimestamp(TS(t0.Add(2*time.Minute + 2*time.Millisecond)))
	unnamed.Attributes().PutStr("cache", "miss")
	return td
}
