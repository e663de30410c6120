//go:build integration

package weftremotewriteextension

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/internal/backends"
)

// logWriter sends a program's output to the test log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

func startPrometheus(t *testing.T, dir string) *backends.Prometheus {
	t.Helper()
	bin, err := backends.FindPrometheus()
	require.NoError(t, err)
	p, err := backends.StartPrometheus(t.Context(), bin, dir, "", logWriter{t})
	require.NoError(t, err)
	t.Cleanup(p.Stop)
	return p
}

// promAPI runs a GET on Prometheus's API and decodes data into out.
func promAPI(t testing.TB, p *backends.Prometheus, path string, q url.Values, out any) {
	t.Helper()
	resp, err := http.Get(p.URL() + path + "?" + q.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	require.Equal(t, "success", env.Status, env.Error)
	require.NoError(t, json.Unmarshal(env.Data, out))
}

type promSeries struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"` // matrix
	Value  [2]any            `json:"value"`  // vector
}

func promTime(ms int64) string { return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64) }

func promMS(v any) int64 { return int64(math.Round(v.(float64) * 1000)) }

func promFloat(t testing.TB, v any) float64 {
	f, err := strconv.ParseFloat(v.(string), 64)
	require.NoError(t, err)
	return f
}

// rawSamples returns every sample of metric that Prometheus holds up to
// at (a range selector: staleness markers are left out), by series label.
func rawSamples(t testing.TB, p *backends.Prometheus, metric string, at int64) map[string][][2]any {
	var data struct {
		Result []promSeries `json:"result"`
	}
	promAPI(t, p, "/api/v1/query", url.Values{"query": {metric + "[1h]"}, "time": {promTime(at)}}, &data)
	out := map[string][][2]any{}
	for _, s := range data.Result {
		out[s.Metric["series"]] = s.Values
		assert.Equal(t, "n1", s.Metric["node"], "external label")
	}
	return out
}

// promHas reports whether Prometheus holds every sample of b.
func promHas(t testing.TB, p *backends.Prometheus, b batch) bool {
	got := rawSamples(t, p, b.metric, b.lastTS()+1)
	for s := 0; s < b.series; s++ {
		if len(got[strconv.Itoa(s)]) < b.samples {
			return false
		}
	}
	return true
}

// requireInPrometheus checks every sample of b in Prometheus, exactly,
// and that series 0 ends with its staleness marker.
func requireInPrometheus(t testing.TB, p *backends.Prometheus, b batch) {
	t.Helper()
	got := rawSamples(t, p, b.metric, b.lastTS()+1)
	require.Len(t, got, b.series)
	for s := 0; s < b.series; s++ {
		vals := got[strconv.Itoa(s)]
		require.Len(t, vals, b.samples, "series %d: each sample once", s)
		for j, v := range vals {
			require.Equal(t, b.ts(j), promMS(v[0]), "series %d sample %d", s, j)
			require.Equal(t, b.value(s, j), promFloat(t, v[1]), "series %d sample %d", s, j)
		}
	}
	if !b.stale {
		return
	}
	// Right after the marker, series 0 is gone and the others are there.
	var data struct {
		Result []promSeries `json:"result"`
	}
	promAPI(t, p, "/api/v1/query", url.Values{"query": {b.metric}, "time": {promTime(b.lastTS() + 1)}}, &data)
	require.Len(t, data.Result, b.series-1)
	for _, s := range data.Result {
		require.NotEqual(t, "0", s.Metric["series"], "the staleness marker ends series 0")
	}
}

func TestPrometheusSentEqualsReceived(t *testing.T) {
	p := startPrometheus(t, t.TempDir())
	cfg := testConfig(t.TempDir(), p.RemoteWriteURL())
	cfg.ExternalLabels = map[string]string{"node": "n1"}
	rw := startRW(t, cfg, 0)
	waitLive(t, rw)

	b := batch{metric: "rw_test", series: 30, samples: 20, base: futureBase(), step: 1000, stale: true}
	b.appendTo(t, rw.Appendable())
	require.Eventually(t, func() bool { return promHas(t, p, b) }, 30*time.Second, 100*time.Millisecond)
	requireInPrometheus(t, p, b)

	var ex []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels    map[string]string `json:"labels"`
			Value     string            `json:"value"`
			Timestamp float64           `json:"timestamp"`
		} `json:"exemplars"`
	}
	promAPI(t, p, "/api/v1/query_exemplars", url.Values{"query": {b.metric}, "start": {promTime(b.base - 1000)}, "end": {promTime(b.lastTS() + 1000)}}, &ex)
	require.Len(t, ex, (b.series+2)/3, "series with exemplars")
	for _, e := range ex {
		s, err := strconv.Atoi(e.SeriesLabels["series"])
		require.NoError(t, err)
		require.Zero(t, s%3)
		assert.Equal(t, "n1", e.SeriesLabels["node"])
		require.Len(t, e.Exemplars, b.samples, "series %d", s)
		for j, x := range e.Exemplars {
			assert.Equal(t, fmt.Sprintf("t%d-%d", s, j), x.Labels["trace_id"])
			assert.Equal(t, b.ts(j), int64(math.Round(x.Timestamp*1000)))
			assert.Equal(t, b.value(s, j), promFloat(t, x.Value))
		}
	}
	st := gather(rw.reg)
	assert.Equal(t, float64(b.series*b.samples+1), st.sum(promPrefix+"samples_total", "remote_name", "ep"), "the queue counted every sample sent")
	assert.Equal(t, float64((b.series+2)/3*b.samples), st.sum(promPrefix+"exemplars_total", "remote_name", "ep"))
}

// TestPrometheusKillAndRestart: as TestKillAndRestart, with Prometheus as
// the endpoint, stopped during the outage and started again on its data
// (on a new port; the endpoint keeps its name, which keys its progress).
func TestPrometheusKillAndRestart(t *testing.T) {
	promDir, walDir := t.TempDir(), t.TempDir()
	p1 := startPrometheus(t, promDir)
	h := startHelper(t, walDir, p1.RemoteWriteURL())

	b1 := batch{metric: "before", series: 9, samples: 5, base: futureBase(), step: 200, stale: true}
	h.do(t, "batch %s %d %d %d %d %t", b1.metric, b1.series, b1.samples, b1.base, b1.step, b1.stale)
	require.Eventually(t, func() bool { return promHasNoLabel(t, p1, b1) }, 30*time.Second, 100*time.Millisecond)
	fence := h.do(t, "fence %d", b1.lastTS())
	require.Eventually(t, func() bool { return diskMark(t, walDir) >= b1.lastTS() }, 10*time.Second, 10*time.Millisecond)

	p1.Stop()
	b2 := batch{metric: "during", series: 9, samples: 5, base: fence + 1000, step: 200, stale: true}
	h.do(t, "batch %s %d %d %d %d %t", b2.metric, b2.series, b2.samples, b2.base, b2.step, b2.stale)
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGKILL))
	_ = h.cmd.Wait()
	waitPast(b2.lastTS())

	p2 := startPrometheus(t, promDir)
	cfg := testConfig(walDir, p2.RemoteWriteURL())
	rw := startRW(t, cfg, 0)
	require.Eventually(t, func() bool { return promHasNoLabel(t, p2, b2) }, 30*time.Second, 100*time.Millisecond)
	waitLive(t, rw)
	for _, b := range []batch{b1, b2} {
		got := rawSamplesNoLabel(t, p2, b.metric, b.lastTS()+1)
		require.Len(t, got, b.series, b.metric)
		for s := 0; s < b.series; s++ {
			vals := got[strconv.Itoa(s)]
			require.Len(t, vals, b.samples, "%s series %d: each sample once", b.metric, s)
			for j, v := range vals {
				require.Equal(t, b.ts(j), promMS(v[0]))
				require.Equal(t, b.value(s, j), promFloat(t, v[1]))
			}
		}
	}
	t.Logf("catch-up: %d samples sent, %d refused by Prometheus", rw.catchups[0].sent.Samples.Load(), rw.catchups[0].sent.Refused.Load())
}

func rawSamplesNoLabel(t testing.TB, p *backends.Prometheus, metric string, at int64) map[string][][2]any {
	var data struct {
		Result []promSeries `json:"result"`
	}
	promAPI(t, p, "/api/v1/query", url.Values{"query": {metric + "[1h]"}, "time": {promTime(at)}}, &data)
	out := map[string][][2]any{}
	for _, s := range data.Result {
		out[s.Metric["series"]] = s.Values
	}
	return out
}

func promHasNoLabel(t testing.TB, p *backends.Prometheus, b batch) bool {
	got := rawSamplesNoLabel(t, p, b.metric, b.lastTS()+1)
	for s := 0; s < b.series; s++ {
		if len(got[strconv.Itoa(s)]) < b.samples {
			return false
		}
	}
	return true
}
