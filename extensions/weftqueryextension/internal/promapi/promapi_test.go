package promapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/limits"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/querytest"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
	"github.com/weftobs/weft/internal/rulesapi"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestFormatMillis(t *testing.T) {
	for ms, want := range map[int64]string{
		1600096945479: "1600096945.479", 1600096945000: "1600096945", 1600096945400: "1600096945.4",
		1600096945050: "1600096945.05", 0: "0", -1500: "-2.5",
	} {
		assert.Equal(t, want, string(FormatMillis(ms)), "%d", ms)
	}
}

func TestQueryError(t *testing.T) {
	for _, c := range []struct {
		err    error
		typ    ErrorType
		status int
	}{
		{promql.ErrQueryTimeout("x"), ErrorTimeout, http.StatusServiceUnavailable},
		{promql.ErrQueryCanceled("x"), ErrorCanceled, 499},
		{promql.ErrStorage{Err: errors.New("x")}, ErrorInternal, http.StatusInternalServerError},
		{errors.New("x"), ErrorExec, http.StatusUnprocessableEntity},
	} {
		aerr := QueryError(c.err)
		assert.Equal(t, c.typ, aerr.Type, "%v", c.err)
		assert.Equal(t, c.status, aerr.Status, "%v", c.err)
	}
}

// fixture is the API over a store with querytest's data, on a loopback
// port, with the engine and parser bounds of weft_query's defaults and no
// query slots.
type fixture struct {
	url string
	t0  time.Time
}

func newFixture(t testing.TB) *fixture { return newFixtureRules(t, nil) }

// newFixtureRules is newFixture with the rules engine rules (nil: none)
// makes from t0.
func newFixtureRules(t testing.TB, rules func(t0 time.Time) *fakeRules) *fixture {
	t.Helper()
	st := weftstoretest.Start(t, nil)
	t0 := time.Now().Truncate(time.Minute).Add(-10 * time.Minute).UTC()
	querytest.Fill(t, st, t0)
	var src rulesapi.Source
	if rules != nil {
		src = rules(t0)
	}
	p := limits.NewParser(parser.NewParser(parser.Options{}), 16<<10, 1000)
	api := &API{
		Engine: st.Engine(), Parser: p,
		Queryable: st.Queryable(), Exemplars: st.ExemplarQueryable(), Rules: src, Now: time.Now,
		Gate:      func(h http.HandlerFunc) http.HandlerFunc { return h },
		FormError: func(err error) *Error { return BadData(err) },
		Observe:   func(*Error) {},
	}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{url: srv.URL, t0: t0}
}

// promEnvelope decodes a Prometheus API answer, data kept raw.
type promEnvelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

func decode(t testing.TB, resp *http.Response) (int, promEnvelope) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var env promEnvelope
	require.NoError(t, json.Unmarshal(b, &env), "body: %s", b)
	return resp.StatusCode, env
}

func promGet(t testing.TB, base, path string, params url.Values) (int, promEnvelope) {
	t.Helper()
	u := base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	resp, err := http.Get(u)
	require.NoError(t, err)
	return decode(t, resp)
}

func promPost(t testing.TB, base, path string, params url.Values) (int, promEnvelope) {
	t.Helper()
	resp, err := http.PostForm(base+path, params)
	require.NoError(t, err)
	return decode(t, resp)
}

func secs(t time.Time) string { return string(FormatMillis(t.UnixMilli())) }

// fakeRules is a rules engine with fixed groups and alerts.
type fakeRules struct {
	groups []rulesapi.Group
	alerts []rulesapi.Alert
}

func (f *fakeRules) RuleGroups() []rulesapi.Group { return f.groups }
func (f *fakeRules) Alerts() []rulesapi.Alert     { return f.alerts }

func newFakeRules(t0 time.Time) *fakeRules {
	firing := rulesapi.Alert{
		Labels:      map[string]string{"alertname": "HighErrorRate", "service": "checkout"},
		Annotations: map[string]string{"summary": "checkout fails"},
		State:       "firing", ActiveAt: t0.Add(2 * time.Minute), Value: 0.25,
		TraceIDs: []string{querytest.CheckoutTraceID.String()},
	}
	return &fakeRules{
		groups: []rulesapi.Group{{
			Name: "checkout", File: "/etc/weft/rules/checkout.yaml", Interval: 15 * time.Second,
			LastEvaluation: t0.Add(3 * time.Minute), EvaluationTime: 2 * time.Millisecond,
			Rules: []rulesapi.Rule{
				{Type: "alerting", Name: "HighErrorRate", Query: `rate(http_requests_total{code="500"}[1m]) > 0.1`, For: time.Minute,
					Labels: map[string]string{"severity": "page"}, Health: "ok", State: "firing", Alerts: []rulesapi.Alert{firing}},
				{Type: "recording", Name: "job:http_requests:rate1m", Query: `sum by (job) (rate(http_requests_total[1m]))`, Health: "err", LastError: "boom"},
			},
		}},
		alerts: []rulesapi.Alert{firing},
	}
}

func TestRulesAndAlerts(t *testing.T) {
	f := newFixtureRules(t, newFakeRules)

	code, env := promGet(t, f.url, "/api/v1/rules", nil)
	require.Equal(t, 200, code)
	var rd struct {
		Groups []struct {
			Name     string           `json:"name"`
			File     string           `json:"file"`
			Interval float64          `json:"interval"`
			Rules    []map[string]any `json:"rules"`
		} `json:"groups"`
	}
	require.NoError(t, json.Unmarshal(env.Data, &rd))
	require.Len(t, rd.Groups, 1)
	g := rd.Groups[0]
	assert.Equal(t, "checkout", g.Name)
	assert.Equal(t, 15.0, g.Interval)
	require.Len(t, g.Rules, 2)
	assert.Equal(t, "alerting", g.Rules[0]["type"])
	assert.Equal(t, "firing", g.Rules[0]["state"])
	assert.Equal(t, 60.0, g.Rules[0]["duration"])
	assert.Len(t, g.Rules[0]["alerts"], 1)
	assert.Equal(t, "recording", g.Rules[1]["type"])
	assert.Equal(t, "err", g.Rules[1]["health"])
	assert.Equal(t, "boom", g.Rules[1]["lastError"])
	assert.NotContains(t, g.Rules[1], "state")

	code, env = promGet(t, f.url, "/api/v1/rules", url.Values{"type": {"record"}})
	require.Equal(t, 200, code)
	require.NoError(t, json.Unmarshal(env.Data, &rd))
	require.Len(t, rd.Groups[0].Rules, 1)
	assert.Equal(t, "recording", rd.Groups[0].Rules[0]["type"])

	code, env = promGet(t, f.url, "/api/v1/alerts", nil)
	require.Equal(t, 200, code)
	var ad struct {
		Alerts []map[string]any `json:"alerts"`
	}
	require.NoError(t, json.Unmarshal(env.Data, &ad))
	require.Len(t, ad.Alerts, 1)
	assert.Equal(t, "firing", ad.Alerts[0]["state"])
	assert.Equal(t, "2.5e-01", ad.Alerts[0]["value"])
	assert.Equal(t, f.t0.Add(2*time.Minute).Format(time.RFC3339), ad.Alerts[0]["activeAt"])
}
