package weftqueryextension

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/querytest"
	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
	"github.com/weftobs/weft/internal/nodestatus"
	"github.com/weftobs/weft/internal/rulesapi"
	"github.com/weftobs/weft/internal/weftest"
)

func TestStatusPage(t *testing.T) {
	f := newFixture(t, fixtureOpts{rules: fakeRulesExt})
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
	assert.Contains(t, page, `<td class="d1">charge card`, "child indented one level")
	assert.Contains(t, page, ".d1{padding-left:24px}")
	// 40 ms trace: the child starts at 10 ms and lasts 20 ms.
	assert.Contains(t, page, `<rect class="bar error" x="0%" width="100%"`)
	assert.Contains(t, page, `<rect class="bar error" x="25%" width="50%"`)
	assert.Equal(t, 3, strings.Count(page, `<tr class="log">`))
	assert.Less(t, strings.Index(page, "request received"), strings.Index(page, "responding 502"), "logs oldest first")
	assert.Contains(t, page, `<li class="firing">HighErrorRate (firing)</li>`)

	code, _ = get(t, f.url+"/trace/nothex")
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = get(t, f.url+"/trace/00000000000000000000000000000bad")
	assert.Equal(t, http.StatusNotFound, code)
}

// TestPagesContentSecurityPolicy: every HTML page carries a CSP that
// allows no script and only its own stylesheet, by hash, and the pages
// need nothing else: no script, no style attribute, no event handler, and
// every <style> element's text hashes to a source the policy lists.
func TestPagesContentSecurityPolicy(t *testing.T) {
	f := newFixture(t, fixtureOpts{rules: fakeRulesExt})
	styleEl := regexp.MustCompile(`(?s)<style>(.*?)</style>`)
	handler := regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=`)
	for _, c := range []struct {
		path string
		code int
	}{
		{"/", http.StatusOK},
		{"/trace/" + checkoutTraceID.String(), http.StatusOK},
		{"/trace/00000000000000000000000000000bad", http.StatusNotFound},
	} {
		t.Run(c.path, func(t *testing.T) {
			resp, err := http.Get(f.url + c.path)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, c.code, resp.StatusCode)
			page := string(body)
			csp := resp.Header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'self'", "script-src 'none'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
				assert.Contains(t, csp, want)
			}
			assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			assert.NotContains(t, strings.ToLower(page), "<script")
			assert.NotContains(t, page, " style=", "style attributes would need 'unsafe-inline'")
			assert.False(t, handler.MatchString(page), "an inline event handler")
			styles := styleEl.FindAllStringSubmatch(page, -1)
			require.Len(t, styles, 1)
			for _, m := range styles {
				sum := sha256.Sum256([]byte(m[1]))
				assert.Contains(t, csp, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'", "the stylesheet is allowed by its hash")
			}
		})
	}
}

func TestStatusPageWithoutRules(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	code, body := get(t, f.url+"/")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), "no rules engine")
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
# TYPE container_logs_records_dropped_total counter
container_logs_records_dropped_total{log_file_path="/var/log/pods/a/b/0.log",reason="rejected",service_name="weft"} 4
container_logs_records_dropped_total{log_file_path="/var/log/pods/c/d/0.log",reason="rejected"} 0
# TYPE container_logs_bytes_read_total counter
container_logs_bytes_read_total 999
`

func TestStatusPagePipelines(t *testing.T) {
	tel := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(selfMetrics))
	}))
	defer tel.Close()
	f := newFixture(t, fixtureOpts{mod: func(c *Config) { c.TelemetryURL = tel.URL + "/metrics" }})
	// The receivers find weft_query among the host's extensions and publish on its board.
	host := weftest.Host{component.MustNewID("weft_query"): f.srv}
	defer nodestatus.PublishFiles(host, "container_logs", func() []nodestatus.File {
		return []nodestatus.File{{Path: "/var/log/pods/a/b/0.log", Size: 5000, Offset: 4000, Acked: 3900, Records: 42, Following: true}}
	})()
	defer nodestatus.PublishTargets(host, "pod_scrape", func() []nodestatus.Target {
		return []nodestatus.Target{
			{Job: "envoy", URL: "http://10.0.0.7:15090/stats/prometheus", Health: "up", Samples: 812, LastDuration: 12 * time.Millisecond},
			{Job: "apps", URL: "http://10.0.0.8:8080/metrics", Health: "down", LastError: "connection refused"},
		}
	})()

	code, body := get(t, f.url+"/")
	require.Equal(t, http.StatusOK, code)
	page := string(body)
	for _, want := range []string{
		`<td>envoy</td><td>http://10.0.0.7:15090/stats/prometheus</td><td class="up">up</td>`,
		`<td class="down">down</td>`, `<span class="err">connection refused</span>`, "<td>812</td>",
		`<td>/var/log/pods/a/b/0.log</td>`, `<td>5000</td><td>4000</td><td class="lag">1000</td><td>3900</td><td>42</td>`,
		`<td>fluent_forward</td><td>120</td><td>5000</td>`, `<td>900</td><td class="err">7</td><td class="err">3</td>`,
		`<td>weft_store</td><td><span class="muted">no queue</span></td><td></td>` + "\n<td>1050</td>",
		`<td>container_logs_records_dropped_total</td><td><code>log_file_path=/var/log/pods/a/b/0.log reason=rejected</code></td><td class="err">4</td>`,
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
	health rulesapi.Health
}

func (h *healthyRules) RulesHealth() rulesapi.Health {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.health
}

func (h *healthyRules) set(r rulesapi.Health) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.health = r
}

func TestStatusPageRulesHealth(t *testing.T) {
	f := newFixture(t, fixtureOpts{rules: fakeRulesExt})
	_, body := get(t, f.url+"/")
	assert.NotContains(t, string(body), `class="rules-health"`, "an engine without health reports shows none")

	hr := &healthyRules{}
	g := newFixture(t, fixtureOpts{rules: func(t0 time.Time) component.Component {
		hr.fakeRules = newFakeRules(t0)
		return hr
	}})
	_, body = get(t, g.url+"/")
	assert.Contains(t, string(body), `<span class="err">failed: </span>`, "a never-applied set is a failure")

	hr.set(rulesapi.Health{LastReload: time.Now(), ReloadOK: false, LastError: "rules.yaml:7: bad expr",
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
	hr.set(rulesapi.Health{LastReload: time.Now(), ReloadOK: true})
	_, body = get(t, g.url+"/")
	assert.Contains(t, string(body), `<span class="ok">applied</span>`)
	assert.NotContains(t, string(body), "left out")
}

// TestStatusPageStorageLosses: a store whose metrics WAL was torn (a crash
// mid-write) starts with what it could read; the status page lists the
// loss with its reason, file, bytes and where the original was moved.
func TestStatusPageStorageLosses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	startStore := func() *weftstoreextension.Store {
		f := weftstoreextension.NewFactory()
		cfg := f.CreateDefaultConfig().(*weftstoreextension.Config)
		cfg.Directory = dir
		ext, err := f.Create(t.Context(), extensiontest.NewNopSettings(f.Type()), cfg)
		require.NoError(t, err)
		require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
		return ext.(*weftstoreextension.Store)
	}
	st := startStore()
	base := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	for i := range 8 { // one WAL record per append
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "ratings")
		g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		g.SetName("queue_depth")
		p := g.SetEmptyGauge().DataPoints().AppendEmpty()
		p.SetTimestamp(querytest.TS(base.Add(time.Duration(i) * time.Second)))
		p.SetDoubleValue(float64(i))
		require.NoError(t, st.AppendMetrics(context.Background(), md))
	}
	require.NoError(t, st.Shutdown(context.Background()))
	assert.Empty(t, st.OpenLosses())

	// Tear the last segment that holds records in the middle of its
	// fourth record.
	walDir := filepath.Join(dir, "wal")
	first, last, err := wlog.Segments(walDir)
	require.NoError(t, err)
	var fn string
	var ends []int64
	for i := first; i <= last; i++ {
		if e := walRecordEnds(t, wlog.SegmentName(walDir, i)); len(e) >= 4 {
			fn, ends = wlog.SegmentName(walDir, i), e
		}
	}
	require.NotEmpty(t, fn, "a WAL segment with the samples")
	require.NoError(t, os.Truncate(fn, ends[2]+8))

	st = startStore()
	t.Cleanup(func() { require.NoError(t, st.Shutdown(context.Background())) })
	losses := st.OpenLosses()
	require.Len(t, losses, 1)
	s := newServer(componenttest.NewNopTelemetrySettings(), func() *Config {
		c := createDefaultConfig().(*Config)
		c.HTTP.NetAddr.Endpoint = "127.0.0.1:0"
		return c
	}())
	require.NoError(t, s.Start(t.Context(), weftstoretest.Host(st)))
	t.Cleanup(func() { require.NoError(t, s.Shutdown(context.Background())) })
	code, body := get(t, "http://"+s.addr()+"/")
	require.Equal(t, http.StatusOK, code)
	page := string(body)
	l := losses[0]
	assert.Contains(t, page, "<h3>Storage losses at the last start</h3>")
	assert.Contains(t, page, fmt.Sprintf(`<tr class="storage-loss"><td class="err">%s</td><td>%s</td><td>%d</td>`, l.Reason, l.File, l.Bytes))
	assert.Contains(t, page, "<td>"+l.MovedTo+"</td>")
	assert.Contains(t, page, fmt.Sprintf(`<span class="lbl">%s: %d</span>`, l.Reason, l.Bytes), "bytes lost by reason")
	assert.Equal(t, 1, strings.Count(page, `<tr class="storage-loss">`))

	// The fixture's store lost nothing: no panel.
	f := newFixture(t, fixtureOpts{})
	_, body = get(t, f.url+"/")
	assert.NotContains(t, string(body), "Storage losses")
}

// walRecordEnds returns the offset after each record of a WAL segment.
func walRecordEnds(t *testing.T, fn string) []int64 {
	t.Helper()
	f, err := os.Open(fn)
	require.NoError(t, err)
	defer f.Close()
	r := wlog.NewReader(bufio.NewReader(f))
	var ends []int64
	for r.Next() {
		ends = append(ends, r.Offset())
	}
	require.NoError(t, r.Err())
	return ends
}
