package weftquery

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extensions/weftstore"
)

// testHost is a component.Host with a fixed set of extensions.
type testHost struct {
	exts map[component.ID]component.Component
}

func (h testHost) GetExtensions() map[component.ID]component.Component { return h.exts }

var storeID = component.MustNewID("weft_store")

// newTestStore opens and starts a real in-memory weft_store, shut down in
// t.Cleanup.
func newTestStore(t testing.TB) *weftstore.Store {
	t.Helper()
	f := weftstore.NewFactory()
	ext, err := f.Create(t.Context(), extensiontest.NewNopSettings(f.Type()), f.CreateDefaultConfig())
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return ext.(*weftstore.Store)
}

// fixture is a store filled with known data and a started weft_query on a
// loopback port.
type fixture struct {
	store *weftstore.Store
	srv   *server
	url   string // base URL of the HTTP server
	t0    time.Time
	// trace IDs of the stored traces
	checkoutTrace, reviewsTrace pcommon.TraceID
}

// Fixed IDs of the fixture's data.
var (
	checkoutTraceID = pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	reviewsTraceID  = pcommon.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}
	rootSpanID      = pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 1}
	chargeSpanID    = pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 2}
	reviewsSpanID   = pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 3}
	ratingsSpanID   = pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 4}
)

// fixtureOpts changes a fixture before its server starts; every field may be nil.
type fixtureOpts struct {
	mod   func(*Config)
	rules func(t0 time.Time) *fakeRules                         // registered as extension weft_rules
	now   func(t0 time.Time) time.Time                          // the server's clock
	fill  func(t testing.TB, st *weftstore.Store, t0 time.Time) // default fillStore
	// before changes the server before Start (e.g. wraps its queryable).
	before func(s *server, st *weftstore.Store)
	tel    *component.TelemetrySettings // default: nop
}

// newFixture starts weft_query over a store with the fixture's data.
func newFixture(t testing.TB, o fixtureOpts) *fixture {
	t.Helper()
	st := newTestStore(t)
	t0 := time.Now().Truncate(time.Minute).Add(-10 * time.Minute).UTC()
	if o.fill == nil {
		o.fill = fillStore
	}
	o.fill(t, st, t0)

	cfg := createDefaultConfig().(*Config)
	cfg.Endpoint = "127.0.0.1:0"
	if o.mod != nil {
		o.mod(cfg)
	}
	require.NoError(t, cfg.Validate())
	set := componenttest.NewNopTelemetrySettings()
	if o.tel != nil {
		set = *o.tel
	}
	s := newServer(set, cfg)
	if o.before != nil {
		o.before(s, st)
	}
	exts := map[component.ID]component.Component{storeID: st}
	if o.rules != nil {
		exts[component.MustNewID("weft_rules")] = o.rules(t0)
	}
	if o.now != nil {
		s.now = func() time.Time { return o.now(t0) }
	}
	// Bind a free port: start on :0 and read the address back.
	require.NoError(t, s.Start(t.Context(), testHost{exts: exts}))
	require.NoError(t, s.Ready()) // as the collector does once its pipelines run
	t.Cleanup(func() { require.NoError(t, s.Shutdown(context.Background())) })
	return &fixture{store: st, srv: s, url: "http://" + s.addr(), t0: t0, checkoutTrace: checkoutTraceID, reviewsTrace: reviewsTraceID}
}

// ts converts a fixture offset to pdata time.
func ts(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

func putPod(r pcommon.Resource, service, ns, pod, container string) {
	a := r.Attributes()
	a.PutStr("service.name", service)
	a.PutStr("k8s.namespace.name", ns)
	a.PutStr("k8s.pod.name", pod)
	a.PutStr("k8s.container.name", container)
}

// fillStore writes: gauge node_temp_celsius{sensor=a|b} and counter
// http_requests_total{code=200|500} every 15 s for 5 min from t0 (with
// exemplars of the two traces on the 500 series), two traces, and four log
// records.
func fillStore(t testing.TB, st *weftstore.Store, t0 time.Time) {
	t.Helper()
	ctx := context.Background()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	putPod(rm.Resource(), "checkout", "shop", "checkout-7d9c8b5f4-x2x9q", "checkout")
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
			p.SetTimestamp(ts(at))
			p.SetDoubleValue(float64(i) * float64(j+1))
			p.Attributes().PutStr("sensor", sensor)
		}
		for j, code := range []string{"200", "500"} {
			p := sum.DataPoints().AppendEmpty()
			p.SetStartTimestamp(ts(t0.Add(-time.Minute)))
			p.SetTimestamp(ts(at))
			p.SetIntValue(int64(i * 10 / (j*9 + 1)))
			p.Attributes().PutStr("code", code)
			if code == "500" && i == 4 {
				ex := p.Exemplars().AppendEmpty()
				ex.SetTimestamp(ts(at.Add(-time.Second)))
				ex.SetDoubleValue(1)
				ex.SetTraceID(checkoutTraceID)
				ex.SetSpanID(rootSpanID)
			}
		}
	}
	require.NoError(t, st.AppendMetrics(ctx, md))

	require.NoError(t, st.AppendTraces(ctx, fixtureTraces(t0)))

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	putPod(rl.Resource(), "checkout", "shop", "checkout-7d9c8b5f4-x2x9q", "checkout")
	sl := rl.ScopeLogs().AppendEmpty()
	for i, body := range []string{"request received", "payment failed: card declined", "responding 502"} {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(ts(t0.Add(time.Minute + time.Duration(i)*10*time.Millisecond)))
		lr.Body().SetStr(body)
		lr.SetTraceID(checkoutTraceID)
		lr.SetSpanID(rootSpanID)
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
	}
	rl2 := ld.ResourceLogs().AppendEmpty()
	putPod(rl2.Resource(), "reviews", "bookinfo", "reviews-v2-7f5c9c8b6f-4wz7p", "reviews")
	lr := rl2.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(ts(t0.Add(2 * time.Minute)))
	lr.Body().SetStr("served reviews")
	require.NoError(t, st.AppendLogs(ctx, ld))
}

// get sends a GET with optional headers and returns status and body.
func get(t testing.TB, rawURL string, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, rawURL, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// promGet calls a Prometheus API path with params and decodes the envelope.
func promGet(t testing.TB, base, path string, params url.Values) (int, promEnvelope) {
	t.Helper()
	u := base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	code, body := get(t, u)
	var env promEnvelope
	require.NoError(t, json.Unmarshal(body, &env), "body: %s", body)
	return code, env
}

// promEnvelope decodes a Prometheus API answer, data kept raw.
type promEnvelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

// secs formats a time as Prometheus API seconds.
func secs(t time.Time) string { return string(formatMillis(t.UnixMilli())) }

// httpClient does one GET without keep-alive, returning transport errors.
type httpClient struct{}

func (httpClient) get(u string) (int, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

// promPost sends params as a form body.
func promPost(t testing.TB, base, path string, params url.Values) (int, promEnvelope) {
	t.Helper()
	resp, err := http.PostForm(base+path, params)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var env promEnvelope
	require.NoError(t, json.Unmarshal(b, &env), "body: %s", b)
	return resp.StatusCode, env
}

// fixtureTraces are the fixture's two traces: checkout (a failing server
// span and its failing client child in another service, with an event) and
// reviews (one OK span).
func fixtureTraces(t0 time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	putPod(rs.Resource(), "checkout", "shop", "checkout-7d9c8b5f4-x2x9q", "checkout")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("weft/test")
	root := ss.Spans().AppendEmpty()
	root.SetTraceID(checkoutTraceID)
	root.SetSpanID(rootSpanID)
	root.SetName("POST /checkout")
	root.SetKind(ptrace.SpanKindServer)
	root.SetStartTimestamp(ts(t0.Add(time.Minute)))
	root.SetEndTimestamp(ts(t0.Add(time.Minute + 40*time.Millisecond)))
	root.Attributes().PutStr("http.route", "/checkout")
	root.Attributes().PutInt("http.response.status_code", 502)
	root.Attributes().PutDouble("cart.value", 42.5)
	root.Attributes().PutBool("cart.gift", true)
	root.Status().SetCode(ptrace.StatusCodeError)
	root.Status().SetMessage("payment failed")

	rs2 := td.ResourceSpans().AppendEmpty()
	putPod(rs2.Resource(), "payment", "shop", "payment-5c4d7-abcde", "payment")
	ss2 := rs2.ScopeSpans().AppendEmpty()
	child := ss2.Spans().AppendEmpty()
	child.SetTraceID(checkoutTraceID)
	child.SetSpanID(chargeSpanID)
	child.SetParentSpanID(rootSpanID)
	child.SetName("charge card")
	child.SetKind(ptrace.SpanKindClient)
	child.SetStartTimestamp(ts(t0.Add(time.Minute + 10*time.Millisecond)))
	child.SetEndTimestamp(ts(t0.Add(time.Minute + 30*time.Millisecond)))
	child.Attributes().PutStr("payment.provider", "acme")
	ev := child.Events().AppendEmpty()
	ev.SetName("retry")
	ev.SetTimestamp(ts(t0.Add(time.Minute + 20*time.Millisecond)))
	ev.Attributes().PutInt("attempt", 2)
	child.Status().SetCode(ptrace.StatusCodeError)
	child.Status().SetMessage("card declined")

	rs3 := td.ResourceSpans().AppendEmpty()
	putPod(rs3.Resource(), "reviews", "bookinfo", "reviews-v2-7f5c9c8b6f-4wz7p", "reviews")
	rv := rs3.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	rv.SetTraceID(reviewsTraceID)
	rv.SetSpanID(reviewsSpanID)
	rv.SetName("GET /reviews")
	rv.SetKind(ptrace.SpanKindServer)
	rv.SetStartTimestamp(ts(t0.Add(2 * time.Minute)))
	rv.SetEndTimestamp(ts(t0.Add(2*time.Minute + 5*time.Millisecond)))
	rv.Status().SetCode(ptrace.StatusCodeOk)

	// An internal span with what the translation must also carry: a link,
	// trace state, scope version, typed resource attributes, bytes, slice and
	// map attributes, an unnamed event.
	rs4 := td.ResourceSpans().AppendEmpty()
	putPod(rs4.Resource(), "reviews", "bookinfo", "reviews-v2-7f5c9c8b6f-4wz7p", "reviews")
	rs4.Resource().Attributes().PutInt("process.pid", 4242)
	rs4.Resource().Attributes().PutBool("debug", false)
	ss4 := rs4.ScopeSpans().AppendEmpty()
	ss4.Scope().SetName("reviews/db")
	ss4.Scope().SetVersion("1.2.3")
	ld := ss4.Spans().AppendEmpty()
	ld.SetTraceID(reviewsTraceID)
	ld.SetSpanID(ratingsSpanID)
	ld.SetParentSpanID(reviewsSpanID)
	ld.SetName("load ratings")
	ld.SetKind(ptrace.SpanKindInternal)
	ld.TraceState().FromRaw("vendor=abc")
	ld.SetStartTimestamp(ts(t0.Add(2*time.Minute + time.Millisecond)))
	ld.SetEndTimestamp(ts(t0.Add(2*time.Minute + 3*time.Millisecond)))
	ld.Attributes().PutEmptyBytes("db.key").FromRaw([]byte{0xde, 0xad, 0xbe, 0xef})
	ld.Attributes().PutEmptySlice("db.hosts").FromRaw([]any{"a", "b"})
	ld.Attributes().PutEmptyMap("db.opts").PutInt("retries", 3)
	ld.Attributes().PutDouble("db.ratio", 0.5)
	link := ld.Links().AppendEmpty()
	link.SetTraceID(checkoutTraceID)
	link.SetSpanID(rootSpanID)
	unnamed := ld.Events().AppendEmpty()
	unnamed.SetTimestamp(ts(t0.Add(2*time.Minute + 2*time.Millisecond)))
	unnamed.Attributes().PutStr("cache", "miss")
	return td
}
