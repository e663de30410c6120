//go:build integration

package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/otelcol"

	"github.com/weftobs/weft/internal/backends"
)

// edgeText is exposition in the Prometheus text format with the cases where
// OTel naming and Prometheus naming part: counters with and without _total
// side by side (one family's name is the other's without the suffix),
// double underscores, a counter whose name ends in _total without TYPE,
// histograms, summaries, untyped and unit-like names.
const edgeText = `# HELP app_requests Requests by code (no _total, as Envoy exposes counters).
# TYPE app_requests counter
app_requests{code="2xx"} 41
app_requests{code="5xx"} 3
# TYPE app_requests_total counter
app_requests_total 44
# TYPE app__double__underscore gauge
app__double__underscore{label__with__underscores="x"} 1
# TYPE app_latency_seconds histogram
app_latency_seconds_bucket{route="/a",le="0.1"} 5
app_latency_seconds_bucket{route="/a",le="1"} 9
app_latency_seconds_bucket{route="/a",le="+Inf"} 10
app_latency_seconds_sum{route="/a"} 3.5
app_latency_seconds_count{route="/a"} 10
# TYPE app_size_bytes summary
app_size_bytes{quantile="0.5"} 120
app_size_bytes{quantile="0.99"} 900
app_size_bytes_sum 12345
app_size_bytes_count 70
app_untyped_thing{a="b"} 7
app_memory_bytes 1048576
app_seconds_total_but_gauge 2
# TYPE app_info gauge
app_info{version="1.2.3"} 1
`

// edgeOM is OpenMetrics with info, stateset, gauge histogram-free counters
// with _created, units and exemplars.
const edgeOM = `# TYPE om_build info
om_build_info{version="2.0",revision="abc"} 1
# TYPE om_state stateset
om_state{om_state="ready"} 1
om_state{om_state="starting"} 0
# TYPE om_jobs counter
# HELP om_jobs Jobs done.
om_jobs_total{queue="q1"} 17 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 1
om_jobs_created{queue="q1"} 1700000000.25
# TYPE om_wait_seconds histogram
# UNIT om_wait_seconds seconds
om_wait_seconds_bucket{le="0.5"} 2 # {trace_id="00f067aa0ba902b7b5a8c0e5e0e0a111",span_id="b7ad6b7169203331"} 0.3
om_wait_seconds_bucket{le="+Inf"} 3
om_wait_seconds_sum 2.5
om_wait_seconds_count 3
# TYPE om_temperature_celsius gauge
# UNIT om_temperature_celsius celsius
om_temperature_celsius 21.5
# EOF
`

const (
	ctText = "text/plain; version=0.0.4; charset=utf-8"
	ctOM   = "application/openmetrics-text; version=1.0.0; charset=utf-8"
)

// namingOverride replaces the shipped profile's scrape jobs with static
// targets; everything else (translation, remote write, the store) is the
// profile as shipped.
const namingOverride = `
receivers:
  pod_scrape:
    scrape_interval: 2s
    scrape_configs:
{{- range .}}
      - job_name: {{.Job}}
        static_configs:
          - targets: [{{.Addr}}]
{{- end}}
`

type namingTarget struct{ Job, Addr, body, ct string }

// TestScrapedSeriesMatchPrometheus: the shipped profile scrapes real and
// edge-case payloads next to a real Prometheus 2.42 scraping the same
// targets. The series and their values must be the ones Prometheus stores,
// read through weft_query, and again in a second Prometheus fed by weft's
// remote write.
func TestScrapedSeriesMatchPrometheus(t *testing.T) {
	bin, err := backends.FindPrometheus()
	require.NoError(t, err)
	envoy, err := os.ReadFile("../../testdata/envoy-stats-istio-proxy-merged-1.11.4.txt")
	require.NoError(t, err)
	om, err := os.ReadFile("../../testdata/openmetrics-exemplars-prometheus-omtestdata.txt")
	require.NoError(t, err)
	targets := []*namingTarget{
		{Job: "envoy", body: string(envoy), ct: ctText},
		{Job: "omtestdata", body: string(om), ct: ctOM},
		{Job: "edge-text", body: edgeText, ct: ctText},
		{Job: "edge-om", body: edgeOM, ct: ctOM},
	}
	var scrapeCfg strings.Builder
	scrapeCfg.WriteString("scrape_configs:\n")
	for _, tg := range targets {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", tg.ct)
			_, _ = w.Write([]byte(tg.body))
		}))
		t.Cleanup(srv.Close)
		tg.Addr = strings.TrimPrefix(srv.URL, "http://")
		fmt.Fprintf(&scrapeCfg, "  - job_name: %s\n    scrape_interval: 2s\n    static_configs:\n      - targets: [%s]\n", tg.Job, tg.Addr)
	}

	ctx := t.Context()
	ref, err := backends.StartPrometheus(ctx, bin, t.TempDir(), scrapeCfg.String(), nil)
	require.NoError(t, err)
	t.Cleanup(ref.Stop)
	sink, err := backends.StartPrometheus(ctx, bin, t.TempDir(), "", nil)
	require.NoError(t, err)
	t.Cleanup(sink.Stop)

	podIP := shippedProfileEnv(t, sink.RemoteWriteURL(), filepath.Join(t.TempDir(), "none", "*.yaml"))
	startShippedProfile(t, podIP, renderTemplate(t, namingOverride, targets))
	weftQuery := "http://" + podIP + ":8686"

	// Each side has scraped every payload at least twice (the store's
	// series are complete, remote write has flushed its WAL reader).
	for _, tg := range targets {
		sel := fmt.Sprintf(`{job=%q}`, tg.Job)
		for name, base := range map[string]string{"prometheus": ref.URL(), "weft_query": weftQuery, "remote-write sink": sink.URL()} {
			require.Eventuallyf(t, func() bool {
				return len(querySeries(t, base, sel)) > 0 && len(querySeries(t, base, `up`+sel)) > 0
			}, 60*time.Second, 250*time.Millisecond, "%s has no series of job %s", name, tg.Job)
		}
	}
	var failures []string
	for _, tg := range targets {
		sel := fmt.Sprintf(`{job=%q}`, tg.Job)
		want := querySeries(t, ref.URL(), sel)
		for name, base := range map[string]string{"weft_query": weftQuery, "remote-write sink": sink.URL()} {
			// Remote write carries the external labels (the shipped
			// profile's node), as Prometheus's remote write does; its
			// query API and weft_query's show series without them.
			var ext map[string]string
			if name == "remote-write sink" {
				ext = map[string]string{"node": "node-a"}
			}
			got, want := querySeries(t, base, sel, ext), want
			if name == "remote-write sink" {
				// The contrib exporter formats bucket bounds itself
				// ('f': le="1000000" for an exposed "1e+06"); the
				// bound is the same number. Only remote write differs.
				got, want = numericBounds(got), numericBounds(want)
			}
			if d := diffSets(want, got); d != "" {
				failures = append(failures, fmt.Sprintf("job %s, series, %s vs Prometheus:\n%s", tg.Job, name, d))
			}
			wantV, gotV := queryValues(t, ref.URL(), sel), queryValues(t, base, sel, ext)
			var bad []string
			for k, v := range wantV {
				if strings.HasPrefix(k, "scrape_duration_seconds") || strings.HasPrefix(k, "scrape_series_added") {
					continue // timing and Prometheus's own bookkeeping
				}
				if g, ok := gotV[k]; ok && !sameValue(g, v) {
					bad = append(bad, fmt.Sprintf("  %s: prometheus %s, %s %s", k, v, name, g))
				}
			}
			sort.Strings(bad)
			if len(bad) > 0 {
				failures = append(failures, fmt.Sprintf("job %s, values, %s vs Prometheus:\n%s", tg.Job, name, strings.Join(head(bad, 20), "\n")))
			}
		}
	}
	// Exemplars: the same labels and values, by series, in weft_query.
	for _, tg := range targets {
		sel := fmt.Sprintf(`{job=%q}`, tg.Job)
		want, got := queryExemplars(t, ref.URL(), sel), queryExemplars(t, weftQuery, sel)
		if tg.Job == "edge-om" {
			require.Len(t, want, 2, "Prometheus stored the edge payload's exemplars")
		}
		if d := diffSets(want, got); d != "" {
			failures = append(failures, fmt.Sprintf("job %s, exemplars, weft_query vs Prometheus:\n%s", tg.Job, d))
		}
	}
	require.Empty(t, failures, strings.Join(failures, "\n\n"))
}

// queryExemplars returns the exemplars of sel over the last 10 minutes as
// "series labels value" strings (timestamps differ between scrapers).
func queryExemplars(t *testing.T, base, sel string) []string {
	t.Helper()
	// From 2023 on: the real OpenMetrics sample's exemplars carry their
	// own (2024) timestamps.
	q := url.Values{"query": {sel}, "start": {"1672531200"}, "end": {fmt.Sprint(time.Now().Unix())}}
	var r struct {
		Data []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []struct {
				Labels map[string]string `json:"labels"`
				Value  string            `json:"value"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	mustGetJSON(t, t.Context(), base+"/api/v1/query_exemplars?"+q.Encode(), &r)
	seen := map[string]bool{}
	for _, d := range r.Data {
		for _, e := range d.Exemplars {
			v, _ := strconv.ParseFloat(e.Value, 64)
			seen[fmt.Sprintf("%s %s %g", seriesString(d.SeriesLabels), seriesString(e.Labels), v)] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// querySeries returns the label sets of /api/v1/series for sel over the
// last 10 minutes, each as a canonical string.
// querySeries returns the series of sel over the last 10 minutes, each as
// its canonical string. Every series must carry the labels of external[0]
// (if given), which are left out of the strings.
func querySeries(t *testing.T, base, sel string, external ...map[string]string) []string {
	t.Helper()
	q := url.Values{"match[]": {sel}, "start": {fmt.Sprint(time.Now().Add(-10 * time.Minute).Unix())}, "end": {fmt.Sprint(time.Now().Unix())}}
	var r struct {
		Data []map[string]string `json:"data"`
	}
	mustGetJSON(t, t.Context(), base+"/api/v1/series?"+q.Encode(), &r)
	out := make([]string, 0, len(r.Data))
	for _, ls := range r.Data {
		out = append(out, seriesString(withoutExternal(t, ls, external...)))
	}
	sort.Strings(out)
	return out
}

// withoutExternal checks that ls carries the external labels (at most one
// map) with their values and returns ls without them.
func withoutExternal(t *testing.T, ls map[string]string, external ...map[string]string) map[string]string {
	t.Helper()
	for _, ext := range external {
		for k, v := range ext {
			require.Equalf(t, v, ls[k], "external label %s of %v", k, ls)
			delete(ls, k)
		}
	}
	return ls
}

// queryValues returns the instant values of sel now, by canonical series.
func queryValues(t *testing.T, base, sel string, external ...map[string]string) map[string]string {
	t.Helper()
	var r promResult
	mustGetJSON(t, t.Context(), base+"/api/v1/query?"+url.Values{"query": {sel}}.Encode(), &r)
	out := map[string]string{}
	for _, s := range r.Data.Result {
		out[seriesString(withoutExternal(t, s.Metric, external...))] = fmt.Sprint(s.Value[1])
	}
	return out
}

func seriesString(ls map[string]string) string {
	keys := make([]string, 0, len(ls))
	for k := range ls {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(ls["__name__"])
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, ls[k])
	}
	b.WriteByte('}')
	return b.String()
}

// diffSets lists what want has and got lacks, and the reverse.
func diffSets(want, got []string) string {
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, "  - "+w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, "  + "+g)
		}
	}
	if len(missing)+len(extra) == 0 {
		return ""
	}
	return fmt.Sprintf("%d missing, %d extra (of %d)\n%s", len(missing), len(extra), len(want),
		strings.Join(append(head(missing, 15), head(extra, 15)...), "\n"))
}

func head(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("  ... %d more", len(s)-n))
	}
	return s
}

// sameValue compares two API sample values as numbers: Prometheus 2.42 and
// the Prometheus 3 library weft_query uses format floats differently
// (7.689e-07 and 0.0000007689).
func sameValue(a, b string) bool {
	fa, errA := strconv.ParseFloat(a, 64)
	fb, errB := strconv.ParseFloat(b, 64)
	if errA != nil || errB != nil {
		return a == b
	}
	return fa == fb || math.IsNaN(fa) && math.IsNaN(fb)
}

var boundLabel = regexp.MustCompile(`(le|quantile)="([^"]*)"`)

// numericBounds rewrites the le and quantile values of canonical series
// strings into one float format, so that equal bounds compare equal.
func numericBounds(series []string) []string {
	out := make([]string, len(series))
	for i, s := range series {
		out[i] = boundLabel.ReplaceAllStringFunc(s, func(m string) string {
			sub := boundLabel.FindStringSubmatch(m)
			f, err := strconv.ParseFloat(sub[2], 64)
			if err != nil {
				return m
			}
			return fmt.Sprintf("%s=%q", sub[1], strconv.FormatFloat(f, 'g', -1, 64))
		})
	}
	sort.Strings(out)
	return out
}

// shippedProfileEnv sets the environment the embedded DaemonSet profile
// reads: a pod IP of its own in 127.0.0.0/8 (the profile binds fixed ports
// on it), remote write to remoteWrite, rule files from ruleGlob, an empty
// Kubernetes API, and closed loopback ports for the other backends. It
// returns the pod IP.
func shippedProfileEnv(t *testing.T, remoteWrite, ruleGlob string) string {
	t.Helper()
	podIP := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(250), 1+rand.IntN(250))
	t.Setenv("POD_IP", podIP)
	t.Setenv("NODE_NAME", "node-a")
	t.Setenv("WEFT_DATA_DIR", t.TempDir())
	t.Setenv("WEFT_JAEGER_ENDPOINT", "127.0.0.1:9")
	t.Setenv("WEFT_REMOTE_WRITE_URL", remoteWrite)
	t.Setenv("WEFT_KUBERNETES_API", emptyKubernetesAPI(t))
	t.Setenv("WEFT_ALERTMANAGER_URL", "http://127.0.0.1:9")
	t.Setenv("WEFT_FLUENT_ENDPOINT", "127.0.0.1:9")
	t.Setenv("WEFT_RULE_FILES", ruleGlob)
	return podIP
}

// startShippedProfile runs the embedded profile merged with override in
// this process until the test ends, and waits until it is healthy.
func startShippedProfile(t *testing.T, podIP string, override []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "override.yaml")
	require.NoError(t, os.WriteFile(path, override, 0o600))
	col, err := otelcol.NewCollector(collectorSettings(defaultConfigURI, "file:"+path))
	require.NoError(t, err)
	agentCtx, stopAgent := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = col.Run(agentCtx) }()
	t.Cleanup(func() { stopAgent(); <-done })
	require.NoError(t, waitHTTP(t.Context(), "http://"+podIP+":13133/", done))
}
