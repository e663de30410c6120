//go:build integration

package podscrapereceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/weftobs/weft/internal/loopback"
	"go.uber.org/zap/zaptest"
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
