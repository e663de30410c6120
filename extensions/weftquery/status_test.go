package weftquery

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extensions/weftstore"
	"github.com/weftobs/weft/internal/nodestatus"
)

func TestStatusPage(t *testing.T) {
	f := newFixture(t, fixtureOpts{rules: newFakeRules})
	code, body := get(t, f.url+"/")
	require.Equal(t, http.StatusOK, code)
	page := string(body)
	for _, want := range []string{
		"<h1>weft node status</h1>",
		`<td>HighErrorRate</td><td class="firing">firing</td>`,
		`<a href="trace/` + checkoutTraceID.String() + `">`, // evidence link of the alert and failing trace
		"job:http_requests:rate1m", `class="err">err: boom`, // rules with health
		"<td>spans</td><td>4</td>", "<td>logs</td><td>4</td>", // store counters
		`<span class="lbl">checkout</span>`, // services
	} {
		assert.Contains(t, page, want)
	}
	assert.Equal(t, 2, strings.Count(page, `<a href="trace/`+checkoutTraceID.String()+`">`), "alert evidence + failing trace")

	code, body = get(t, f.url+"/trace/"+checkoutTraceID.String())
	require.Equal(t, http.StatusOK, code)
	page = string(body)
	assert.Equal(t, 2, strings.Count(page, `<tr class="span">`))
	root := strings.Index(page, "POST /checkout")
	child := strings.Index(page, "charge card")
	require.True(t, root > 0 && child > root, "root span row before its child")
	assert.Contains(t, page, `<td style="padding-left:24px">charge card`, "child indented one level")
	// 40 ms trace: the child starts at 10 ms and lasts 20 ms.
	assert.Contains(t, page, `<div class="bar error" style="left:0%;width:100%">`)
	assert.Contains(t, page, `<div class="bar error" style="left:25%;width:50%">`)
	assert.Equal(t, 3, strings.Count(page, `<tr class="log">`))
	assert.Less(t, strings.Index(page, "request received"), strings.Index(page, "responding 502"), "logs oldest first")
	assert.Contains(t, page, `<li class="firing">HighErrorRate (firing)</li>`)

	code, _ = get(t, f.url+"/trace/nothex")
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = get(t, f.url+"/trace/00000000000000000000000000000bad")
	assert.Equal(t, http.StatusNotFound, code)
}

func TestStatusPageWithoutRules(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	code, body := get(t, f.url+"/")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), "no rules engine")
}

func TestTracePageEscapes(t *testing.T) {
	rec := httptest.NewRecorder()
	renderHTML(rec, traceTmpl, http.StatusOK, tracePage{
		TraceID: "x", Logs: []logJSON{{Time: time.Unix(0, 0), Body: `<script>alert(1)</script>`}},
		Spans: []waterfallSpan{{Operation: `<img src=x onerror=alert(1)>`}},
	})
	assert.NotContains(t, rec.Body.String(), "<script>alert")
	assert.NotContains(t, rec.Body.String(), "<img")
	assert.Contains(t, rec.Body.String(), "&lt;script&gt;")
}

func TestWaterfallOrphan(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	spans, err := f.store.Trace(checkoutTraceID)
	require.NoError(t, err)
	// Only the child: its parent is missing, so it becomes a root.
	rows := waterfall(spans[1:])
	require.Len(t, rows, 1)
	assert.Equal(t, "charge card", rows[0].Operation)
	assert.Equal(t, 8, rows[0].Indent)
	assert.Equal(t, 0.0, rows[0].Left)
	assert.Equal(t, 100.0, rows[0].Width)
	assert.Nil(t, waterfall([]weftstore.Span(nil)))
}

// selfMetrics is a collector self-metrics page as the pull reader serves it.
const selfMetrics = `# TYPE otelcol_exporter_queue_size gauge
otelcol_exporter_queue_size{exporter="fluent_forward",otel_scope_name="x"} 120
# TYPE otelcol_exporter_queue_capacity gauge
otelcol_exporter_queue_capacity{exporter="fluent_forward"} 5000
# TYPE otelcol_exporter_sent_log_records_total counter
otelcol_exporter_sent_log_records_total{exporter="fluent_forward"} 900
otelcol_exporter_sent_log_records_total{exporter="weft_store"} 1000
# TYPE otelcol_exporter_sent_spans_total counter
otelcol_exporter_sent_spans_total{exporter="weft_store"} 50
# TYPE otelcol_exporter_send_failed_log_records_total counter
otelcol_exporter_send_failed_log_records_total{exporter="fluent_forward"} 7
# TYPE otelcol_exporter_enqueue_failed_log_records_total counter
otelcol_exporter_enqueue_failed_log_records_total{exporter="fluent_forward"} 3
# TYPE weft_container_logs_records_dropped_total counter
weft_container_logs_records_dropped_total{log_file_path="/var/log/pods/a/b/0.log",reason="rejected",service_name="weft"} 4
weft_container_logs_records_dropped_total{log_file_path="/var/log/pods/c/d/0.log",reason="rejected"} 0
# TYPE weft_container_logs_bytes_read_total counter
weft_container_logs_bytes_read_total 999
`

func TestStatusPagePipelines(t *testing.T) {
	tel := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(selfMetrics))
	}))
	defer tel.Close()
	defer nodestatus.RegisterFiles("container_logs", func() []nodestatus.File {
		return []nodestatus.File{{Path: "/var/log/pods/a/b/0.log", Size: 5000, Offset: 4000, Acked: 3900, Records: 42, Following: true}}
	})()
	defer nodestatus.RegisterTargets("pod_scrape", func() []nodestatus.Target {
		return []nodestatus.Target{
			{Job: "envoy", URL: "http://10.0.0.7:15090/stats/prometheus", Health: "up", Samples: 812, LastDuration: 12 * time.Millisecond},
			{Job: "apps", URL: "http://10.0.0.8:8080/metrics", Health: "down", LastError: "connection refused"},
		}
	})()

	f := newFixture(t, fixtureOpts{mod: func(c *Config) { c.TelemetryURL = tel.URL + "/metrics" }})
	code, body := get(t, f.url+"/")
	require.Equal(t, http.StatusOK, code)
	page := string(body)
	for _, want := range []string{
		`<td>envoy</td><td>http://10.0.0.7:15090/stats/prometheus</td><td class="up">up</td>`,
		`<td class="down">down</td>`, `<span class="err">connection refused</span>`, "<td>812</td>",
		`<td>/var/log/pods/a/b/0.log</td>`, `<td>5000</td><td>4000</td><td class="lag">1000</td><td>3900</td><td>42</td>`,
		`<td>fluent_forward</td><td>120</td><td>5000</td>`, `<td>900</td><td class="err">7</td><td class="err">3</td>`,
		`<td>weft_store</td><td><span class="muted">no queue</span></td><td></td>` + "\n<td>1050</td>",
		`<td>weft_container_logs_records_dropped_total</td><td><code>log_file_path=/var/log/pods/a/b/0.log reason=rejected</code></td><td class="err">4</td>`,
	} {
		assert.Contains(t, page, want)
	}
	assert.Equal(t, 1, strings.Count(page, `<tr class="loss">`), "zero counters and non-loss counters are not listed")

	// An unreachable self-metrics endpoint is reported, the rest renders.
	tel.Close()
	code, body = get(t, f.url+"/")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `<p class="err">self-metrics: `)
	assert.Contains(t, string(body), `<td class="down">down</td>`)
}

func TestStatusPageWithoutTelemetry(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	_, body := get(t, f.url+"/")
	assert.Contains(t, string(body), "set telemetry_url")
	assert.NotContains(t, string(body), `<tr class="exporter">`)
}

// healthyRules is a rules engine that also reports its sources' health.
type healthyRules struct {
	*fakeRules
	mu     sync.Mutex
	health RulesHealth
}

func (h *healthyRules) RulesHealth() RulesHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.health
}

func (h *healthyRules) set(r RulesHealth) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.health = r
}

func TestStatusPageRulesHealth(t *testing.T) {
	f := newFixture(t, fixtureOpts{rules: newFakeRules})
	_, body := get(t, f.url+"/")
	assert.NotContains(t, string(body), `class="rules-health"`, "an engine without health reports shows none")

	hr := &healthyRules{fakeRules: newFakeRules(f.t0)}
	g := newFixture(t, fixtureOpts{})
	g.srv.rules = hr // before the first request
	_, body = get(t, g.url+"/")
	assert.Contains(t, string(body), `<span class="err">failed: </span>`, "a never-applied set is a failure")

	hr.set(RulesHealth{LastReload: time.Now(), ReloadOK: false, LastError: "rules.yaml:7: bad expr",
		Inherited: true, Rejected: []string{"shop/broken: parse error"}, SourceError: "list: 403 Forbidden"})
	_, body = get(t, g.url+"/")
	page := string(body)
	for _, want := range []string{
		`<span class="err">failed: rules.yaml:7: bad expr</span>`,
		"running the previous configuration's rules",
		`left out: shop/broken: parse error`,
		`Kubernetes source: list: 403 Forbidden`,
	} {
		assert.Contains(t, page, want)
	}
	hr.set(RulesHealth{LastReload: time.Now(), ReloadOK: true})
	_, body = get(t, g.url+"/")
	assert.Contains(t, string(body), `<span class="ok">applied</span>`)
	assert.NotContains(t, string(body), "left out")
}

func TestRoundDuration(t *testing.T) {
	for in, want := range map[time.Duration]string{
		647662 * time.Nanosecond:     "648µs",
		9149634 * time.Nanosecond:    "9.15ms",
		12345678 * time.Nanosecond:   "12.3ms",
		345678901 * time.Nanosecond:  "346ms",
		2345678901 * time.Nanosecond: "2.35s",
		0:                            "0s",
	} {
		assert.Equal(t, want, roundDuration(in).String(), "%v", in)
	}
}
