//go:build integration

package weftqueryextension

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/internal/backends"
)

// vectorOf runs an instant query on a Prometheus API (weft's or a real
// Prometheus's) at ts and returns each series, labels in name order with
// extra added where the series lacks them, with its value.
func vectorOf(t *testing.T, base, query string, ts time.Time, extra map[string]string) map[string]float64 {
	t.Helper()
	code, env := promGet(t, base, "/api/v1/query", url.Values{"query": {query}, "time": {secs(ts)}})
	require.Equal(t, 200, code, "%s: %+v", base, env)
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(env.Data, &data))
	out := map[string]float64{}
	for _, s := range data.Result {
		for k, v := range extra {
			if _, ok := s.Metric[k]; !ok {
				s.Metric[k] = v
			}
		}
		pairs := make([]string, 0, len(s.Metric))
		for k, v := range s.Metric {
			pairs = append(pairs, fmt.Sprintf("%s=%q", k, v))
		}
		slices.Sort(pairs)
		v, err := strconv.ParseFloat(s.Value[1].(string), 64)
		require.NoError(t, err)
		out["{"+strings.Join(pairs, ", ")+"}"] = v
	}
	return out
}

// A real Prometheus (2.42) scraping weft_query's /federate with
// honor_labels: true holds the same series as weft's own PromQL answers at
// the same time, with the store's external label node added and the
// samples' own timestamps.
func TestFederateScrapedByPrometheus(t *testing.T) {
	bin, err := backends.FindPrometheus()
	require.NoError(t, err, "install Prometheus 2.42 (Debian package `prometheus`, `make tools`) or set WEFT_PROMETHEUS")
	f := newFixture(t, fixtureOpts{
		store: func(c *weftstoreextension.Config) { c.ExternalLabels = map[string]string{"node": "node-a"} },
		// querytest's newest samples are at t0+5m: 30 s before now.
		now: func(t0 time.Time) time.Time { return t0.Add(5*time.Minute + 30*time.Second) },
	})
	now := f.t0.Add(5*time.Minute + 30*time.Second)
	const match = `{__name__=~"node_temp_celsius|http_requests_total"}`
	target := strings.TrimPrefix(f.url, "http://")
	prom, err := backends.StartPrometheus(t.Context(), bin, t.TempDir(), fmt.Sprintf(`scrape_configs:
  - job_name: federate
    scrape_interval: 1s
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['%s', 'node_temp_celsius']
    static_configs:
      - targets: ['%s']
`, match, target), testLog{t})
	require.NoError(t, err)
	t.Cleanup(prom.Stop)

	// What weft holds, with the labels federation and the scrape add.
	want := vectorOf(t, f.url, match, now, map[string]string{"node": "node-a", "instance": target})
	require.Len(t, want, 4)
	var got map[string]float64
	require.Eventually(t, func() bool {
		got = vectorOf(t, prom.URL(), match, now, nil)
		return len(got) >= len(want)
	}, 30*time.Second, 200*time.Millisecond, "federated series never arrived in Prometheus")
	assert.Equal(t, want, got)

	// Samples keep their timestamps (t0+5m), not the scrape's.
	wantTS := map[string]float64{}
	for ls := range vectorOf(t, f.url, "timestamp("+match+")", now, map[string]string{"node": "node-a", "instance": target}) {
		wantTS[ls] = float64(f.t0.Add(5 * time.Minute).Unix())
	}
	assert.Equal(t, wantTS, vectorOf(t, prom.URL(), "timestamp("+match+")", now, nil))

	up := vectorOf(t, prom.URL(), `up{job="federate"}`, time.Now(), nil)
	assert.Equal(t, map[string]float64{fmt.Sprintf(`{__name__="up", instance=%q, job="federate"}`, target): 1}, up)
}
