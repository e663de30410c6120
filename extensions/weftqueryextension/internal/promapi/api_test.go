package promapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/querytest"
)

// vecSample and matSeries decode query results.
type (
	vecSample struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	matSeries struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}
	queryResult struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
)

func TestPromQuery(t *testing.T) {
	f := newFixture(t)
	at := f.t0.Add(5 * time.Minute)
	tests := []struct {
		name     string
		query    string
		wantType string
		check    func(t *testing.T, raw json.RawMessage)
	}{
		{"selector", `node_temp_celsius{sensor="b"}`, "vector", func(t *testing.T, raw json.RawMessage) {
			var v []vecSample
			require.NoError(t, json.Unmarshal(raw, &v))
			require.Len(t, v, 1)
			assert.Equal(t, "node_temp_celsius", v[0].Metric["__name__"])
			assert.Equal(t, "b", v[0].Metric["sensor"])
			assert.Equal(t, "checkout-7d9c8b5f4-x2x9q", v[0].Metric["k8s_pod_name"])
			assert.Equal(t, "40", v[0].Value[1])
			assert.Equal(t, float64(at.Unix()), v[0].Value[0])
		}},
		{"aggregation", `sum(node_temp_celsius)`, "vector", func(t *testing.T, raw json.RawMessage) {
			var v []vecSample
			require.NoError(t, json.Unmarshal(raw, &v))
			require.Len(t, v, 1)
			assert.Empty(t, v[0].Metric)
			assert.Equal(t, "60", v[0].Value[1])
		}},
		{"rate", `rate(http_requests_total{code="200"}[1m])`, "vector", func(t *testing.T, raw json.RawMessage) {
			var v []vecSample
			require.NoError(t, json.Unmarshal(raw, &v))
			require.Len(t, v, 1)
			assert.NotContains(t, v[0].Metric, "__name__")
			// +10 every 15 s.
			assert.True(t, strings.HasPrefix(v[0].Value[1].(string), "0.666"), "rate %v", v[0].Value[1])
		}},
		{"scalar", `1 + 1`, "scalar", func(t *testing.T, raw json.RawMessage) {
			var v [2]any
			require.NoError(t, json.Unmarshal(raw, &v))
			assert.Equal(t, "2", v[1])
		}},
		{"string", `"hello"`, "string", func(t *testing.T, raw json.RawMessage) {
			var v [2]any
			require.NoError(t, json.Unmarshal(raw, &v))
			assert.Equal(t, "hello", v[1])
		}},
		{"empty vector is []", `does_not_exist`, "vector", func(t *testing.T, raw json.RawMessage) {
			assert.JSONEq(t, `[]`, string(raw))
		}},
		{"range selector", `node_temp_celsius{sensor="a"}[1m]`, "matrix", func(t *testing.T, raw json.RawMessage) {
			var m []matSeries
			require.NoError(t, json.Unmarshal(raw, &m))
			require.Len(t, m, 1)
			assert.NotEmpty(t, m[0].Values)
			assert.Equal(t, "20", m[0].Values[len(m[0].Values)-1][1])
		}},
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				params := url.Values{"query": {tt.query}, "time": {secs(at)}}
				var code int
				var env promEnvelope
				if method == http.MethodGet {
					code, env = promGet(t, f.url, "/api/v1/query", params)
				} else {
					code, env = promPost(t, f.url, "/api/v1/query", params)
				}
				require.Equal(t, http.StatusOK, code, "%+v", env)
				require.Equal(t, "success", env.Status)
				var qr queryResult
				require.NoError(t, json.Unmarshal(env.Data, &qr))
				assert.Equal(t, tt.wantType, qr.ResultType)
				tt.check(t, qr.Result)
			})
		}
	}
}

func TestPromQueryRange(t *testing.T) {
	f := newFixture(t)
	params := url.Values{
		"query": {`node_temp_celsius{sensor="a"}`},
		"start": {secs(f.t0)}, "end": {secs(f.t0.Add(time.Minute))}, "step": {"15s"},
	}
	code, env := promGet(t, f.url, "/api/v1/query_range", params)
	require.Equal(t, http.StatusOK, code, "%+v", env)
	var qr queryResult
	require.NoError(t, json.Unmarshal(env.Data, &qr))
	assert.Equal(t, "matrix", qr.ResultType)
	var m []matSeries
	require.NoError(t, json.Unmarshal(qr.Result, &m))
	require.Len(t, m, 1)
	require.Len(t, m[0].Values, 5)
	for i, p := range m[0].Values {
		assert.Equal(t, float64(f.t0.Add(time.Duration(i)*15*time.Second).Unix()), p[0])
		assert.Equal(t, []string{"0", "1", "2", "3", "4"}[i], p[1])
	}

	// Nothing matches: [] not null; step as float seconds.
	params.Set("query", "does_not_exist")
	params.Set("step", "15.5")
	code, env = promGet(t, f.url, "/api/v1/query_range", params)
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"resultType":"matrix","result":[]}`, string(env.Data))
}

// TestPromErrors checks the error classes and status codes Prometheus gives.
func TestPromErrors(t *testing.T) {
	f := newFixture(t)
	at := secs(f.t0.Add(5 * time.Minute))
	start, end := secs(f.t0), secs(f.t0.Add(time.Minute))
	tests := []struct {
		name, path string
		params     url.Values
		wantCode   int
		wantType   string
		wantErr    string
	}{
		{"no query", "/api/v1/query", url.Values{}, 400, "bad_data", `invalid parameter "query"`},
		{"parse error", "/api/v1/query", url.Values{"query": {"sum("}}, 400, "bad_data", "parse error"},
		{"bad time", "/api/v1/query", url.Values{"query": {"1"}, "time": {"yesterday"}}, 400, "bad_data", `invalid parameter "time"`},
		{"NaN time", "/api/v1/query", url.Values{"query": {"1"}, "time": {"NaN"}}, 400, "bad_data", `invalid parameter "time"`},
		{"bad timeout", "/api/v1/query", url.Values{"query": {"1"}, "timeout": {"soon"}}, 400, "bad_data", `invalid parameter "timeout"`},
		{"bad limit", "/api/v1/query", url.Values{"query": {"1"}, "limit": {"-1"}}, 400, "bad_data", `invalid parameter "limit"`},
		{"bad lookback", "/api/v1/query", url.Values{"query": {"1"}, "lookback_delta": {"x"}}, 400, "bad_data", "lookback delta"},
		{"many-to-many", "/api/v1/query", url.Values{"query": {"node_temp_celsius + on() node_temp_celsius"}, "time": {at}}, 422, "execution", "many-to-many"},
		{"timeout", "/api/v1/query", url.Values{"query": {"sum(node_temp_celsius)"}, "time": {at}, "timeout": {"0.000000001"}}, 503, "timeout", ""},
		{"range no start", "/api/v1/query_range", url.Values{"query": {"1"}, "end": {end}, "step": {"15"}}, 400, "bad_data", `invalid parameter "start"`},
		{"range bad end", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {start}, "end": {"x"}, "step": {"15"}}, 400, "bad_data", `invalid parameter "end"`},
		{"range end before start", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {end}, "end": {start}, "step": {"15"}}, 400, "bad_data", "end timestamp must not be before start time"},
		{"range zero step", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {start}, "end": {end}, "step": {"0"}}, 400, "bad_data", "zero or negative"},
		{"range bad step", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {start}, "end": {end}, "step": {"often"}}, 400, "bad_data", `invalid parameter "step"`},
		{"range too many points", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {start}, "end": {end}, "step": {"0.001"}}, 400, "bad_data", "11,000 points"},
		{"range parse error", "/api/v1/query_range", url.Values{"query": {"rate(x)"}, "start": {start}, "end": {end}, "step": {"15"}}, 400, "bad_data", "range vector"},
		{"series without match", "/api/v1/series", url.Values{}, 400, "bad_data", "no match[] parameter provided"},
		{"series empty matcher", "/api/v1/series", url.Values{"match[]": {`{sensor=""}`}}, 400, "bad_data", "at least one non-empty matcher"},
		{"series bad matcher", "/api/v1/series", url.Values{"match[]": {`{sensor=`}}, 400, "bad_data", `invalid parameter "match[]"`},
		{"series bad start", "/api/v1/series", url.Values{"match[]": {"up"}, "start": {"x"}}, 400, "bad_data", `invalid parameter "start"`},
		{"labels bad end", "/api/v1/labels", url.Values{"end": {"x"}}, 400, "bad_data", `invalid parameter "end"`},
		{"labels bad match", "/api/v1/labels", url.Values{"match[]": {"{"}}, 400, "bad_data", `invalid parameter "match[]"`},
		{"label values bad name", "/api/v1/label/1abc/values", nil, 400, "bad_data", "invalid label name"},
		{"exemplars parse error", "/api/v1/query_exemplars", url.Values{"query": {"sum("}}, 400, "bad_data", "parse error"},
		{"exemplars end before start", "/api/v1/query_exemplars", url.Values{"query": {"up"}, "start": {end}, "end": {start}}, 400, "bad_data", "end timestamp"},
		{"rules bad type", "/api/v1/rules", url.Values{"type": {"x"}}, 400, "bad_data", `invalid parameter "type"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, env := promGet(t, f.url, tt.path, tt.params)
			assert.Equal(t, tt.wantCode, code)
			assert.Equal(t, "error", env.Status)
			assert.Equal(t, tt.wantType, env.ErrorType)
			assert.Contains(t, env.Error, tt.wantErr, "%+v", env)
			assert.Nil(t, env.Data)
		})
	}
}

func TestPromSeriesAndLabels(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, path string
		params     url.Values
		check      func(t *testing.T, raw json.RawMessage)
	}{
		{"series", "/api/v1/series", url.Values{"match[]": {"node_temp_celsius"}}, func(t *testing.T, raw json.RawMessage) {
			var s []map[string]string
			require.NoError(t, json.Unmarshal(raw, &s))
			require.Len(t, s, 2)
			assert.Equal(t, "a", s[0]["sensor"])
			assert.Equal(t, "b", s[1]["sensor"])
		}},
		{"series two sets, deduplicated", "/api/v1/series", url.Values{"match[]": {`node_temp_celsius{sensor="a"}`, `{sensor=~"a|b"}`}}, func(t *testing.T, raw json.RawMessage) {
			var s []map[string]string
			require.NoError(t, json.Unmarshal(raw, &s))
			require.Len(t, s, 2)
		}},
		{"series limit", "/api/v1/series", url.Values{"match[]": {`{__name__=~".+"}`}, "limit": {"1"}}, func(t *testing.T, raw json.RawMessage) {
			var s []map[string]string
			require.NoError(t, json.Unmarshal(raw, &s))
			require.Len(t, s, 1)
		}},
		{"series no match is []", "/api/v1/series", url.Values{"match[]": {"nothing"}}, func(t *testing.T, raw json.RawMessage) {
			assert.JSONEq(t, `[]`, string(raw))
		}},
		{"series outside window", "/api/v1/series", url.Values{"match[]": {"node_temp_celsius"}, "end": {secs(f.t0.Add(-time.Hour))}}, func(t *testing.T, raw json.RawMessage) {
			assert.JSONEq(t, `[]`, string(raw))
		}},
		{"labels", "/api/v1/labels", nil, func(t *testing.T, raw json.RawMessage) {
			var s []string
			require.NoError(t, json.Unmarshal(raw, &s))
			assert.Subset(t, s, []string{"__name__", "code", "sensor", "k8s_pod_name"})
			assert.IsNonDecreasing(t, s)
		}},
		{"labels matched", "/api/v1/labels", url.Values{"match[]": {"node_temp_celsius"}}, func(t *testing.T, raw json.RawMessage) {
			var s []string
			require.NoError(t, json.Unmarshal(raw, &s))
			assert.Contains(t, s, "sensor")
			assert.NotContains(t, s, "code")
		}},
		{"metric names", "/api/v1/label/__name__/values", nil, func(t *testing.T, raw json.RawMessage) {
			assert.JSONEq(t, `["http_requests_total","node_temp_celsius"]`, string(raw))
		}},
		{"label values matched", "/api/v1/label/code/values", url.Values{"match[]": {`http_requests_total{code="500"}`}}, func(t *testing.T, raw json.RawMessage) {
			assert.JSONEq(t, `["500"]`, string(raw))
		}},
		{"label values unknown is []", "/api/v1/label/nope/values", nil, func(t *testing.T, raw json.RawMessage) {
			assert.JSONEq(t, `[]`, string(raw))
		}},
		{"metadata", "/api/v1/metadata", nil, func(t *testing.T, raw json.RawMessage) {
			assert.JSONEq(t, `{}`, string(raw))
		}},
		{"buildinfo", "/api/v1/status/buildinfo", nil, func(t *testing.T, raw json.RawMessage) {
			var b map[string]string
			require.NoError(t, json.Unmarshal(raw, &b))
			assert.NotEmpty(t, b["version"])
			assert.NotEmpty(t, b["goVersion"])
		}},
		{"rules without engine", "/api/v1/rules", nil, func(t *testing.T, raw json.RawMessage) {
			assert.JSONEq(t, `{"groups":[]}`, string(raw))
		}},
		{"alerts without engine", "/api/v1/alerts", nil, func(t *testing.T, raw json.RawMessage) {
			assert.JSONEq(t, `{"alerts":[]}`, string(raw))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, env := promGet(t, f.url, tt.path, tt.params)
			require.Equal(t, http.StatusOK, code, "%+v", env)
			require.Equal(t, "success", env.Status)
			tt.check(t, env.Data)
		})
	}
}

func TestPromExemplars(t *testing.T) {
	f := newFixture(t)
	code, env := promGet(t, f.url, "/api/v1/query_exemplars", url.Values{
		"query": {`rate(http_requests_total[1m])`}, "start": {secs(f.t0)}, "end": {secs(f.t0.Add(5 * time.Minute))},
	})
	require.Equal(t, http.StatusOK, code, "%+v", env)
	var res []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels    map[string]string `json:"labels"`
			Value     string            `json:"value"`
			Timestamp float64           `json:"timestamp"`
		} `json:"exemplars"`
	}
	require.NoError(t, json.Unmarshal(env.Data, &res))
	require.Len(t, res, 1)
	assert.Equal(t, "500", res[0].SeriesLabels["code"])
	require.Len(t, res[0].Exemplars, 1)
	ex := res[0].Exemplars[0]
	assert.Equal(t, querytest.CheckoutTraceID.String(), ex.Labels["trace_id"])
	assert.Equal(t, "1", ex.Value)
	assert.InDelta(t, float64(f.t0.Add(59*time.Second).Unix()), ex.Timestamp, 0.001)

	// A window without exemplars: [].
	code, env = promGet(t, f.url, "/api/v1/query_exemplars", url.Values{
		"query": {`http_requests_total`}, "start": {secs(f.t0.Add(-time.Hour))}, "end": {secs(f.t0.Add(-50 * time.Minute))},
	})
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `[]`, string(env.Data))
}
