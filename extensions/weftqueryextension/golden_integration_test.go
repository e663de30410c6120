//go:build integration

package weftqueryextension

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/internal/backends"
)

// goldenSeries is one series of the golden data set: a value per 15 s step
// from t0 (NaN: no sample), and exemplars at some steps.
type goldenSeries struct {
	lbls      labels.Labels
	values    []float64
	exemplars map[int]string // step → trace_id
}

const goldenSteps = 41 // 10 minutes of 15 s steps

// goldenData builds counters (with a reset), gauges, a classic histogram,
// up, and a series that stops early.
func goldenData() []goldenSeries {
	var out []goldenSeries
	series := func(ls labels.Labels, f func(i int) float64) *goldenSeries {
		g := goldenSeries{lbls: ls, values: make([]float64, goldenSteps)}
		for i := range goldenSteps {
			g.values[i] = f(i)
		}
		out = append(out, g)
		return &out[len(out)-1]
	}
	series(labels.FromStrings("__name__", "http_requests_total", "job", "checkout", "instance", "10.0.0.1:8080", "code", "200", "method", "GET"),
		func(i int) float64 {
			if i >= 20 {
				return float64((i - 20) * 7) // counter reset at step 20
			}
			return float64(i * 10)
		})
	ex := series(labels.FromStrings("__name__", "http_requests_total", "job", "checkout", "instance", "10.0.0.1:8080", "code", "500", "method", "GET"),
		func(i int) float64 { return float64(i) })
	ex.exemplars = map[int]string{5: "4bf92f3577b34da6a3ce929d0e0e4736", 30: "0af7651916cd43dd8448eb211c80319c"}
	series(labels.FromStrings("__name__", "http_requests_total", "job", "reviews", "instance", "10.0.0.2:9080", "code", "200", "method", "POST"),
		func(i int) float64 { return float64(i * 3) })
	for j, sensor := range []string{"a", "b", "c"} {
		series(labels.FromStrings("__name__", "node_temp_celsius", "job", "node", "instance", "10.0.0.9:9100", "sensor", sensor),
			func(i int) float64 { return 20 + float64((i*(j+2))%7)*1.5 - float64(j) })
	}
	bounds := []string{"0.1", "0.5", "1", "+Inf"}
	for k, le := range bounds {
		series(labels.FromStrings("__name__", "request_duration_seconds_bucket", "job", "checkout", "instance", "10.0.0.1:8080", "le", le),
			func(i int) float64 { return float64(i * (k + 1) * 2) })
	}
	series(labels.FromStrings("__name__", "request_duration_seconds_sum", "job", "checkout", "instance", "10.0.0.1:8080"),
		func(i int) float64 { return float64(i) * 2.75 })
	series(labels.FromStrings("__name__", "request_duration_seconds_count", "job", "checkout", "instance", "10.0.0.1:8080"),
		func(i int) float64 { return float64(i * 8) })
	for _, u := range []struct {
		job, inst string
		v         float64
	}{{"checkout", "10.0.0.1:8080", 1}, {"reviews", "10.0.0.2:9080", 1}, {"node", "10.0.0.9:9100", 0}} {
		series(labels.FromStrings("__name__", "up", "job", u.job, "instance", u.inst), func(int) float64 { return u.v })
	}
	series(labels.FromStrings("__name__", "flappy", "job", "x"), func(i int) float64 {
		if i > 12 {
			return math.NaN() // stops after 3 minutes
		}
		return float64(i % 3)
	})
	return out
}

func stepTime(t0 time.Time, i int) int64 {
	return t0.Add(time.Duration(i) * 15 * time.Second).UnixMilli()
}

// fillGolden writes the golden data into the store through its raw appender.
func fillGolden(t testing.TB, st *weftstoreextension.Store, t0 time.Time) {
	t.Helper()
	app := st.Appendable().Appender(context.Background())
	for _, g := range goldenData() {
		var ref = storageRef(0)
		for i, v := range g.values {
			if math.IsNaN(v) {
				continue
			}
			r, err := app.Append(ref.v(), g.lbls, stepTime(t0, i), v)
			require.NoError(t, err)
			ref = storageRef(r)
			if tid, ok := g.exemplars[i]; ok {
				_, err := app.AppendExemplar(r, g.lbls, exemplar.Exemplar{
					Labels: labels.FromStrings("trace_id", tid), Value: v, Ts: stepTime(t0, i), HasTs: true,
				})
				require.NoError(t, err)
			}
		}
	}
	require.NoError(t, app.Commit())
}

// remoteWriteGolden sends the golden data to Prometheus's remote-write receiver.
func remoteWriteGolden(t *testing.T, rwURL string, t0 time.Time) {
	t.Helper()
	var req prompb.WriteRequest
	for _, g := range goldenData() {
		ts := prompb.TimeSeries{}
		g.lbls.Range(func(l labels.Label) { ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
		for i, v := range g.values {
			if math.IsNaN(v) {
				continue
			}
			ts.Samples = append(ts.Samples, prompb.Sample{Value: v, Timestamp: stepTime(t0, i)})
			if tid, ok := g.exemplars[i]; ok {
				ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{
					Labels: []prompb.Label{{Name: "trace_id", Value: tid}}, Value: v, Timestamp: stepTime(t0, i),
				})
			}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	raw, err := req.Marshal()
	require.NoError(t, err)
	hr, err := http.NewRequestWithContext(t.Context(), http.MethodPost, rwURL, bytes.NewReader(snappy.Encode(nil, raw)))
	require.NoError(t, err)
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(hr)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "remote write: %s", body)
}

// goldenCase is one API call made against both servers.
type goldenCase struct {
	name, path string
	params     url.Values
}

func goldenCases(t0 time.Time) []goldenCase {
	sec := func(d time.Duration) string { return secs(t0.Add(d)) }
	at := sec(9*time.Minute + 7*time.Second) // off the 15 s grid: no sample on a range boundary
	instant := []string{
		`up`, `up == 0`, `http_requests_total`, `http_requests_total{code="500"}`,
		`rate(http_requests_total[1m])`, `sum by (job) (rate(http_requests_total[2m]))`,
		`increase(http_requests_total{code="200"}[5m])`, `irate(http_requests_total[1m])`,
		`node_temp_celsius > 23`, `avg(node_temp_celsius)`, `max_over_time(node_temp_celsius[3m])`,
		`min_over_time(node_temp_celsius[3m])`, `count_over_time(node_temp_celsius[2m])`,
		`histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[2m])))`,
		`topk(2, node_temp_celsius)`, `bottomk(1, node_temp_celsius)`,
		`sum(rate(request_duration_seconds_sum[5m])) / sum(rate(request_duration_seconds_count[5m]))`,
		`absent(nonexistent)`, `absent(up)`, `label_replace(up, "host", "$1", "instance", "(.*):.*")`,
		`count by (job) (up)`, `node_temp_celsius offset 2m`, `delta(node_temp_celsius[2m])`,
		`deriv(node_temp_celsius[3m])`, `predict_linear(node_temp_celsius[3m], 60)`,
		`quantile(0.5, node_temp_celsius)`, `sort_desc(sum by (code) (http_requests_total))`,
		`scalar(sum(up))`, `vector(1) + 1`, `time()`, `flappy`, `last_over_time(flappy[10m])`,
		`http_requests_total{code=~"5.."}`, `http_requests_total{code!="200", job=~"check.*"}`,
		`node_temp_celsius @ ` + sec(4*time.Minute), `sum_over_time(node_temp_celsius[1m:30s])`,
		`"hello"`, `1 / 0`, `-node_temp_celsius`, `stddev(node_temp_celsius)`,
		`changes(node_temp_celsius[5m])`, `resets(http_requests_total[10m])`,
		`rate(http_requests_total[5m]) * on(job, instance) group_left up`,
	}
	var cs []goldenCase
	for _, q := range instant {
		cs = append(cs, goldenCase{"instant " + q, "/api/v1/query", url.Values{"query": {q}, "time": {at}}})
	}
	for _, q := range []string{
		`rate(http_requests_total[1m])`, `sum by (job) (rate(http_requests_total[2m]))`, `node_temp_celsius`,
		`histogram_quantile(0.5, rate(request_duration_seconds_bucket[2m]))`, `avg_over_time(node_temp_celsius[1m])`,
		`flappy`, `up`, `increase(http_requests_total[3m])`,
	} {
		cs = append(cs, goldenCase{"range " + q, "/api/v1/query_range", url.Values{
			"query": {q}, "start": {sec(2*time.Minute + 3*time.Second)}, "end": {sec(9*time.Minute + 3*time.Second)}, "step": {"30"},
		}})
	}
	cs = append(cs,
		goldenCase{"labels", "/api/v1/labels", nil},
		goldenCase{"labels of up", "/api/v1/labels", url.Values{"match[]": {"up"}}},
		goldenCase{"metric names", "/api/v1/label/__name__/values", nil},
		goldenCase{"job values", "/api/v1/label/job/values", nil},
		goldenCase{"code values of checkout", "/api/v1/label/code/values", url.Values{"match[]": {`http_requests_total{job="checkout"}`}}},
		goldenCase{"series up", "/api/v1/series", url.Values{"match[]": {"up"}}},
		goldenCase{"series two sets", "/api/v1/series", url.Values{"match[]": {`http_requests_total{code="200"}`, `up{job="node"}`}}},
		goldenCase{"series regex window", "/api/v1/series", url.Values{"match[]": {`{__name__=~"node.*"}`}, "start": {sec(0)}, "end": {sec(10 * time.Minute)}}},
		goldenCase{"series before data", "/api/v1/series", url.Values{"match[]": {"up"}, "start": {sec(-2 * time.Hour)}, "end": {sec(-time.Hour)}}},
		goldenCase{"exemplars", "/api/v1/query_exemplars", url.Values{"query": {"http_requests_total"}, "start": {sec(0)}, "end": {sec(10 * time.Minute)}}},
		// Malformed: error class and status must match.
		goldenCase{"no query", "/api/v1/query", url.Values{}},
		goldenCase{"unclosed paren", "/api/v1/query", url.Values{"query": {"sum("}}},
		goldenCase{"dangling operator", "/api/v1/query", url.Values{"query": {"1 +"}}},
		goldenCase{"type error", "/api/v1/query", url.Values{"query": {"rate(up)"}}},
		goldenCase{"bad time", "/api/v1/query", url.Values{"query": {"up"}, "time": {"yesterday"}}},
		goldenCase{"bad timeout", "/api/v1/query", url.Values{"query": {"up"}, "timeout": {"soon"}}},
		goldenCase{"many-to-many", "/api/v1/query", url.Values{"query": {"http_requests_total + on(job) http_requests_total"}, "time": {at}}},
		goldenCase{"range zero step", "/api/v1/query_range", url.Values{"query": {"up"}, "start": {sec(0)}, "end": {sec(time.Minute)}, "step": {"0"}}},
		goldenCase{"range end before start", "/api/v1/query_range", url.Values{"query": {"up"}, "start": {sec(time.Minute)}, "end": {sec(0)}, "step": {"15"}}},
		goldenCase{"range too many points", "/api/v1/query_range", url.Values{"query": {"up"}, "start": {sec(0)}, "end": {sec(time.Hour)}, "step": {"0.1"}}},
		goldenCase{"range parse error", "/api/v1/query_range", url.Values{"query": {"up{"}, "start": {sec(0)}, "end": {sec(time.Minute)}, "step": {"15"}}},
		goldenCase{"range no start", "/api/v1/query_range", url.Values{"query": {"up"}, "end": {sec(time.Minute)}, "step": {"15"}}},
		goldenCase{"series without match", "/api/v1/series", nil},
		goldenCase{"series empty matcher", "/api/v1/series", url.Values{"match[]": {`{job=""}`}}},
		goldenCase{"series bad matcher", "/api/v1/series", url.Values{"match[]": {`up{job=}`}}},
		goldenCase{"labels bad start", "/api/v1/labels", url.Values{"start": {"x"}}},
		goldenCase{"invalid label name", "/api/v1/label/foo-bar/values", nil},
		goldenCase{"exemplars parse error", "/api/v1/query_exemplars", url.Values{"query": {"sum("}}},
	)
	return cs
}

// storageRef keeps a series ref between appends.
type storageRef uint64

func (r storageRef) v() storage.SeriesRef { return storage.SeriesRef(r) }

// TestGoldenAgainstPrometheus loads the same samples into a real Prometheus
// (the Debian package, 2.42) and into weft, runs every golden case on both
// and requires equal status codes, error types and (normalized) data.
func TestGoldenAgainstPrometheus(t *testing.T) {
	bin, err := backends.FindPrometheus()
	require.NoError(t, err, "install Prometheus 2.42 (Debian package `prometheus`, `make tools`) or set WEFT_PROMETHEUS")
	prom, err := backends.StartPrometheus(t.Context(), bin, t.TempDir(), "", testLog{t})
	require.NoError(t, err)
	t.Cleanup(prom.Stop)

	f := newFixture(t, fixtureOpts{fill: fillGolden})
	remoteWriteGolden(t, prom.RemoteWriteURL(), f.t0)

	cases := goldenCases(f.t0)
	require.GreaterOrEqual(t, len(cases), 40)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pc, pe := promGet(t, prom.URL(), c.path, c.params)
			wc, we := promGet(t, f.url, c.path, c.params)
			require.Equal(t, pc, wc, "status code; prometheus: %+v\nweft: %+v", pe, we)
			require.Equal(t, pe.Status, we.Status)
			require.Equal(t, pe.ErrorType, we.ErrorType, "prometheus error %q, weft error %q", pe.Error, we.Error)
			if pe.Status != "success" {
				return
			}
			assertSameData(t, pe.Data, we.Data)
			_, wantEmpty := emptyCases[c.name]
			assert.Equal(t, wantEmpty, isEmptyData(pe.Data), "empty result from Prometheus: %s", pe.Data)
		})
	}
}

// emptyCases are the golden cases whose answer is an empty list; every
// other success must carry data, so that equal answers are not vacuous.
var emptyCases = map[string]struct{}{
	"instant absent(up)": {},
	"instant flappy":     {},
	"series before data": {},
}

func isEmptyData(raw json.RawMessage) bool {
	var qd struct {
		Result json.RawMessage `json:"result"`
	}
	if json.Unmarshal(raw, &qd) == nil && qd.Result != nil {
		raw = qd.Result
	}
	return string(bytes.TrimSpace(raw)) == "[]"
}

// assertSameData compares two data documents after sorting arrays of
// objects (results, series) and with numbers in strings compared with a
// relative tolerance of 1e-9.
func assertSameData(t *testing.T, want, got json.RawMessage) {
	t.Helper()
	var w, g any
	require.NoError(t, json.Unmarshal(want, &w))
	require.NoError(t, json.Unmarshal(got, &g))
	w, g = normalize(w), normalize(g)
	if !sameJSON(w, g) {
		assert.Fail(t, "data differ", "prometheus: %s\nweft:       %s", want, got)
	}
}

func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
		if len(x) > 0 {
			if _, ok := x[0].(map[string]any); ok {
				slices.SortFunc(x, func(a, b any) int {
					ka, _ := json.Marshal(sortKey(a))
					kb, _ := json.Marshal(sortKey(b))
					return bytes.Compare(ka, kb)
				})
			}
		}
		return x
	}
	return v
}

// sortKey orders results by their labels.
func sortKey(v any) any {
	m := v.(map[string]any)
	for _, k := range []string{"metric", "seriesLabels"} {
		if l, ok := m[k]; ok {
			return l
		}
	}
	return m
}

func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, e := range x {
			if !sameJSON(e, y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case string:
		y, ok := b.(string)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		fx, err1 := strconv.ParseFloat(x, 64)
		fy, err2 := strconv.ParseFloat(y, 64)
		return err1 == nil && err2 == nil && math.Abs(fx-fy) <= 1e-9*math.Max(math.Abs(fx), math.Abs(fy))
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// testLog sends a program's output to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}
