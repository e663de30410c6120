//go:build integration

package podscrapereceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap/zaptest"

	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
	"github.com/weftobs/weft/internal/backends"
	"github.com/weftobs/weft/internal/loopback"
)

const prometheusBin = "/usr/bin/prometheus"

// startPrometheus runs the Debian package's Prometheus with the
// remote-write receiver on a free loopback port; it returns its base URL.
func startPrometheus(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(prometheusBin); err != nil {
		t.Fatalf("%s not found (%v): `make tools` installs it (Debian package prometheus)", prometheusBin, err)
	}
	addrs, err := loopback.FreeAddrs(1)
	require.NoError(t, err)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte("global:\n  scrape_interval: 1h\n"), 0o644))
	cmd := exec.Command(prometheusBin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addrs[0],
		"--web.enable-remote-write-receiver",
		"--log.level=warn",
	)
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	base := "http://" + addrs[0]
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 50*time.Millisecond, "Prometheus did not get ready")
	return base
}

type queryResult struct {
	Status string `json:"status"`
	Data   struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
	Error string `json:"error"`
}

// querySamples runs an instant query and flattens the result like the
// payload (without the per-target self series).
func querySamples(t *testing.T, base, q string, withSelf bool) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	require.NoError(t, err)
	defer resp.Body.Close()
	var r queryResult
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	require.Equal(t, "success", r.Status, r.Error)
	out := map[string]float64{}
	for _, s := range r.Data.Result {
		name := s.Metric["__name__"]
		if selfMetricNames[name] && !withSelf {
			continue
		}
		delete(s.Metric, "__name__")
		v, err := strconv.ParseFloat(s.Value[1].(string), 64)
		require.NoError(t, err)
		out[seriesKey(name, s.Metric)] = v
	}
	return out
}

func TestRemoteWriteToPrometheus(t *testing.T) {
	promURL := startPrometheus(t)

	fact := prometheusremotewriteexporter.NewFactory()
	ecfg := fact.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"http":                 map[string]any{"endpoint": promURL + "/api/v1/write"},
		"translation_strategy": "UnderscoreEscapingWithoutSuffixes",
		"disable_scope_info":   true,
		"target_info":          map[string]any{"enabled": false},
	}).Unmarshal(ecfg))
	eset := exportertest.NewNopSettings(fact.Type())
	eset.Logger = zaptest.NewLogger(t)
	exp, err := fact.CreateMetrics(t.Context(), eset, ecfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })

	for _, tc := range []struct {
		job  string
		body []byte
	}{
		{"envoy-realdata", readFile(t, envoyFile)},
		{"envoy-50k", envoyPayload(50000)},
	} {
		t.Run(tc.job, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain; version=0.0.4")
				_, _ = w.Write(tc.body)
			}))
			defer srv.Close()
			instance := srv.Listener.Addr().String()
			cfg := staticConfig(tc.job, instance, func(sc *ScrapeConfig) {
				sc.MetricsPath = "/stats/prometheus"
				// A 50k-series scrape under the race detector on a loaded
				// machine can pass 5s: scrape again rather than wait an
				// hour after a timeout.
				sc.ScrapeInterval, sc.ScrapeTimeout = 30*time.Second, 25*time.Second
			})
			set := receivertest.NewNopSettings(component.MustNewType(typeStr))
			set.Logger = zaptest.NewLogger(t)
			r, err := newReceiver(set, cfg, exp)
			require.NoError(t, err)
			r.firstScrapeNow = true
			require.NoError(t, r.Start(t.Context(), componenttest.NewNopHost()))
			defer func() { require.NoError(t, r.Shutdown(context.Background())) }()

			want := flattenText(t, tc.body, map[string]string{"job": tc.job, "instance": instance})
			sel := fmt.Sprintf(`{job=%q}`, tc.job)
			require.Eventually(t, func() bool {
				return len(querySamples(t, promURL, sel, false)) >= len(want)
			}, 120*time.Second, 250*time.Millisecond, "series did not all arrive")
			got := querySamples(t, promURL, sel, false)
			require.Len(t, got, len(want))
			t.Logf("%d series with labels and values equal in Prometheus", len(got))
			assertSamples(t, want, got)
			up := querySamples(t, promURL, fmt.Sprintf(`up{job=%q}`, tc.job), true)
			require.Equal(t, map[string]float64{seriesKey("up", map[string]string{"job": tc.job, "instance": instance}): 1}, up)

			// The target goes away: its stale markers hide every series in
			// Prometheus at once (no 5-minute lookback tail).
			r.update(t.Context(), r.jobs[0], []*targetgroup.Group{{Source: r.jobs[0].static[0].Source}})
			require.Eventually(t, func() bool {
				return len(querySamples(t, promURL, sel, true)) == 0
			}, 60*time.Second, 250*time.Millisecond, "stale markers did not end every series (buckets, sums, up)")
		})
	}
}

// promVector runs an instant query on Prometheus's HTTP API: value by
// series (labels.String form of the result's labels).
func promVector(t *testing.T, base, q string) map[string]string {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	require.NoError(t, err)
	defer resp.Body.Close()
	var r queryResult
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	require.Equal(t, "success", r.Status, r.Error)
	out := map[string]string{}
	for _, s := range r.Data.Result {
		out[labels.FromMap(s.Metric).String()] = s.Value[1].(string)
	}
	return out
}

// storeVector runs the same instant query on a weft_store.
func storeVector(t *testing.T, st *weftstoreextension.Store, q string) map[string]string {
	t.Helper()
	qry, err := st.Engine().NewInstantQuery(t.Context(), st.Queryable(), nil, q, time.Now())
	require.NoError(t, err)
	defer qry.Close()
	vec, err := qry.Exec(t.Context()).Vector()
	require.NoError(t, err)
	out := map[string]string{}
	for _, s := range vec {
		out[s.Metric.String()] = strconv.FormatFloat(s.F, 'f', -1, 64)
	}
	return out
}

// promExemplars returns Prometheus's exemplars of sel as "series
// exemplar-labels value ts" strings.
func promExemplars(t *testing.T, base, sel string) []string {
	t.Helper()
	q := url.Values{"query": {sel}, "start": {"1672531200"}, "end": {strconv.FormatInt(time.Now().Unix()+60, 10)}}
	resp, err := http.Get(base + "/api/v1/query_exemplars?" + q.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	var r struct {
		Data []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []struct {
				Labels    map[string]string `json:"labels"`
				Value     string            `json:"value"`
				Timestamp float64           `json:"timestamp"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	var out []string
	for _, d := range r.Data {
		for _, e := range d.Exemplars {
			v, err := strconv.ParseFloat(e.Value, 64)
			require.NoError(t, err)
			out = append(out, fmt.Sprintf("%s %s %g %d", labels.FromMap(d.SeriesLabels), labels.FromMap(e.Labels), v, int64(math.Round(e.Timestamp*1000))))
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// storeExemplars returns a weft_store's exemplars of job as promExemplars
// does.
func storeExemplars(t *testing.T, st *weftstoreextension.Store, job string) []string {
	t.Helper()
	eq, err := st.ExemplarQueryable().ExemplarQuerier(t.Context())
	require.NoError(t, err)
	res, err := eq.Select(math.MinInt64, math.MaxInt64, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "job", job)})
	require.NoError(t, err)
	var out []string
	for _, r := range res {
		for _, e := range r.Exemplars {
			out = append(out, fmt.Sprintf("%s %s %g %d", r.SeriesLabels, e.Labels, e.Value, e.Ts))
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// edgeBody is exposition where labels take work: exposed job and instance
// labels that clash with the target's (exported_), a bound exposed as
// "1.0" and one as "1e+06", an empty label value, a series that metric
// relabeling drops and one whose label it rewrites.
const edgeBody = `# TYPE edge_requests counter
edge_requests{code="2xx",job="exposed-job",instance="exposed"} 41
edge_requests_total{team="exposed-team"} 44
# TYPE edge_latency_seconds histogram
edge_latency_seconds_bucket{le="0.1"} 5
edge_latency_seconds_bucket{le="1.0"} 9
edge_latency_seconds_bucket{le="1e+06"} 9
edge_latency_seconds_bucket{le="+Inf"} 10
edge_latency_seconds_sum 3.5
edge_latency_seconds_count 10
edge_untyped{a="b",empty=""} 7
edge_dropped_total 3
`

// edgePromConfig is the edge job's target labels and metric relabeling in
// Prometheus's configuration, after its static_configs targets line.
const edgePromConfig = `        labels: {team: mesh}
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: edge_dropped_total
        action: drop
      - source_labels: [a]
        regex: (.+)
        target_label: b
        replacement: x$1
`

// edgeRelabel is edgePromConfig's metric relabeling for pod_scrape.
func edgeRelabel() []RelabelConfig {
	dropRe, aRe, repl := "edge_dropped_total", "(.+)", "x$1"
	return []RelabelConfig{
		{SourceLabels: []string{"__name__"}, Regex: &dropRe, Action: "drop"},
		{SourceLabels: []string{"a"}, Regex: &aRe, TargetLabel: "b", Replacement: &repl},
	}
}

// TestNativeMatchesPrometheus has Prometheus 2.42 and pod_scrape's native
// path (pdata off, into a weft_store) scrape the same targets (real Envoy
// and OpenMetrics samples, and edgeBody with target labels and metric
// relabeling) every second. Both must hold the same series
// with the same values, the same exemplars, and after the targets start
// failing, the same picture: every scraped series ended by a stale marker,
// up=0.
func TestNativeMatchesPrometheus(t *testing.T) {
	bin, err := backends.FindPrometheus()
	require.NoError(t, err)
	type tgt struct {
		job, ct string
		body    []byte
		srv     *switchServer
		addr    string
		edge    bool // with target labels and metric relabeling
	}
	targets := []*tgt{
		{job: "envoy", body: readFile(t, envoyFile), ct: "text/plain; version=0.0.4"},
		{job: "omtestdata", body: readFile(t, omFile), ct: "application/openmetrics-text; version=1.0.0; charset=utf-8"},
		{job: "edge", body: []byte(edgeBody), ct: "text/plain; version=0.0.4", edge: true},
	}
	var promCfg strings.Builder
	promCfg.WriteString("scrape_configs:\n")
	cfg := createDefaultConfig().(*Config)
	for _, tg := range targets {
		tg.srv = &switchServer{ct: tg.ct}
		tg.srv.serve(tg.body)
		hs := httptest.NewServer(tg.srv)
		t.Cleanup(hs.Close)
		tg.addr = strings.TrimPrefix(hs.URL, "http://")
		fmt.Fprintf(&promCfg, "  - job_name: %s\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n      - targets: [%s]\n", tg.job, tg.addr)
		sc := ScrapeConfig{
			JobName: tg.job, ScrapeInterval: time.Second, ScrapeTimeout: time.Second,
			StaticConfigs: []StaticConfig{{Targets: []string{tg.addr}}},
		}
		if tg.edge {
			promCfg.WriteString(edgePromConfig)
			sc.StaticConfigs[0].Labels = map[string]string{"team": "mesh"}
			sc.MetricRelabelConfigs = edgeRelabel()
		}
		cfg.ScrapeConfigs = append(cfg.ScrapeConfigs, sc)
	}
	ref, err := backends.StartPrometheus(t.Context(), bin, t.TempDir(), promCfg.String(), nil)
	require.NoError(t, err)
	t.Cleanup(ref.Stop)

	st := weftstoretest.Start(t, nil)
	cfg.Appendables = []component.ID{weftstoretest.ID}
	cfg.PData = false
	require.NoError(t, cfg.Validate())
	set := receivertest.NewNopSettings(component.MustNewType(typeStr))
	set.Logger = zaptest.NewLogger(t)
	r, err := newReceiver(set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, r.Start(t.Context(), weftstoretest.Host(st)))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })

	// Self series whose values are timing or bookkeeping of one scraper.
	skipValue := func(k string) bool {
		return strings.Contains(k, `"scrape_duration_seconds"`) || strings.Contains(k, `"scrape_series_added"`)
	}
	for _, tg := range targets {
		sel := fmt.Sprintf(`{job=%q}`, tg.job)
		up := fmt.Sprintf(`scrape_samples_scraped{job=%q} > 0`, tg.job)
		require.Eventually(t, func() bool {
			return len(promVector(t, ref.URL(), up)) == 1 && len(storeVector(t, st, up)) == 1
		}, 60*time.Second, 250*time.Millisecond, "job %s not scraped by both", tg.job)
		want, got := promVector(t, ref.URL(), sel), storeVector(t, st, sel)
		require.NotEmpty(t, want)
		assert.Equal(t, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)), "job %s: series", tg.job)
		for k, v := range want {
			if skipValue(k) {
				continue
			}
			// The two APIs format numbers differently (7.6e-07 and
			// 0.00000076): compare the numbers.
			wf, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			gf, err := strconv.ParseFloat(got[k], 64)
			require.NoError(t, err, "job %s: %s", tg.job, k)
			if !(math.IsNaN(wf) && math.IsNaN(gf)) {
				assert.Equal(t, wf, gf, "job %s: %s", tg.job, k)
			}
		}
		wantEx, gotEx := promExemplars(t, ref.URL(), sel), storeExemplars(t, st, tg.job)
		assert.Equal(t, wantEx, gotEx, "job %s: exemplars", tg.job)
		t.Logf("job %s: %d series and %d exemplars the same in Prometheus 2.42 and weft_store (native path)", tg.job, len(want), len(wantEx))
	}

	// The targets fail: both scrapers end every scraped series with a
	// stale marker and report up=0.
	for _, tg := range targets {
		tg.srv.status.Store(http.StatusServiceUnavailable)
	}
	for _, tg := range targets {
		sel := fmt.Sprintf(`{job=%q}`, tg.job)
		down := fmt.Sprintf(`up{job=%q} == 0`, tg.job)
		require.Eventually(t, func() bool {
			return len(promVector(t, ref.URL(), down)) == 1 && len(storeVector(t, st, down)) == 1
		}, 60*time.Second, 250*time.Millisecond, "job %s not down in both", tg.job)
		want, got := promVector(t, ref.URL(), sel), storeVector(t, st, sel)
		for k := range got {
			if strings.Contains(k, failuresMetricName) {
				delete(got, k) // weft's own counter of failed scrapes
			}
		}
		assert.Equal(t, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)), "job %s: series after the failure", tg.job)
		assert.Len(t, want, len(selfGauges), "only the scrape's own series remain: %v", want)
	}
}
