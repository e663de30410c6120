package weftapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/jaegerapi"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/promapi"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/querytest"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
	"github.com/weftobs/weft/internal/rulesapi"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"5m":                   now.Add(-5 * time.Minute),
		"1764763200":           time.Unix(1764763200, 0),
		"2026-12-03T11:00:00Z": now.Add(-time.Hour),
	} {
		got, err := parseSince(in, now)
		require.NoError(t, err, in)
		assert.True(t, want.Equal(got), "%q: %v, want %v", in, got, want)
	}
	for _, bad := range []string{"-1m", "later"} {
		_, err := parseSince(bad, now)
		assert.Error(t, err, bad)
	}
}

// alerts is a rules engine with one firing alert naming the checkout trace.
type alerts []rulesapi.Alert

func (alerts) RuleGroups() []rulesapi.Group { return nil }
func (a alerts) Alerts() []rulesapi.Alert   { return a }

// fixture is the API over a store with querytest's data and one alert, on
// a loopback port, without query slots.
type fixture struct {
	url string
	t0  time.Time
}

// newFixture starts the API; now (nil: the wall clock) is its clock from t0.
func newFixture(t testing.TB, now func(t0 time.Time) time.Time) *fixture {
	t.Helper()
	st := weftstoretest.Start(t, nil)
	t0 := time.Now().Truncate(time.Minute).Add(-10 * time.Minute).UTC()
	querytest.Fill(t, st, t0)
	clock := time.Now
	if now != nil {
		clock = func() time.Time { return now(t0) }
	}
	rules := alerts{{
		Labels: map[string]string{"alertname": "HighErrorRate", "service": "checkout"},
		State:  "firing", ActiveAt: t0.Add(2 * time.Minute), Value: 0.25,
		TraceIDs: []string{querytest.CheckoutTraceID.String()},
	}}
	prom := &promapi.API{
		Now: clock, Gate: func(h http.HandlerFunc) http.HandlerFunc { return h },
		FormError: func(err error) *promapi.Error { return promapi.BadData(err) }, Observe: func(*promapi.Error) {},
	}
	api := &API{Store: st, Rules: rules, Now: clock, Query: prom.Serve, LogScan: MaxObservedScan}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{url: srv.URL, t0: t0}
}

type promEnvelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func promGet(t testing.TB, base, path string, params url.Values) (int, promEnvelope) {
	t.Helper()
	u := base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	var env promEnvelope
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	return resp.StatusCode, env
}

func TestCorrelate(t *testing.T) {
	f := newFixture(t, nil)
	code, env := promGet(t, f.url, "/api/v1/correlate/"+querytest.CheckoutTraceID.String(), nil)
	require.Equal(t, 200, code, "%+v", env)
	var c struct {
		TraceID   string          `json:"traceID"`
		Trace     jaegerapi.Trace `json:"trace"`
		Logs      []LogJSON       `json:"logs"`
		Exemplars []struct {
			Series map[string]string `json:"series"`
			SpanID string            `json:"spanID"`
			Value  float64           `json:"value"`
		} `json:"exemplars"`
		Alerts []map[string]any `json:"alerts"`
	}
	require.NoError(t, json.Unmarshal(env.Data, &c))
	assert.Equal(t, querytest.CheckoutTraceID.String(), c.TraceID)
	assert.Len(t, c.Trace.Spans, 2)
	require.Len(t, c.Logs, 3)
	assert.Equal(t, "request received", c.Logs[0].Body, "logs oldest first")
	assert.Equal(t, "responding 502", c.Logs[2].Body)
	require.Len(t, c.Exemplars, 1)
	assert.Equal(t, "500", c.Exemplars[0].Series["code"])
	assert.Equal(t, querytest.RootSpanID.String(), c.Exemplars[0].SpanID)
	require.Len(t, c.Alerts, 1)
	assert.Equal(t, "HighErrorRate", c.Alerts[0]["labels"].(map[string]any)["alertname"])

	// The other trace: spans and a log, no alert.
	code, env = promGet(t, f.url, "/api/v1/correlate/"+querytest.ReviewsTraceID.String(), nil)
	require.Equal(t, 200, code)
	require.NoError(t, json.Unmarshal(env.Data, &c))
	assert.Len(t, c.Trace.Spans, 2)
	assert.Empty(t, c.Alerts)

	code, env = promGet(t, f.url, "/api/v1/correlate/00000000000000000000000000000bad", nil)
	assert.Equal(t, 404, code)
	assert.Equal(t, "not_found", env.ErrorType)
	code, env = promGet(t, f.url, "/api/v1/correlate/nothex", nil)
	assert.Equal(t, 400, code)
	assert.Equal(t, "bad_data", env.ErrorType)
}

func TestLogs(t *testing.T) {
	f := newFixture(t, func(t0 time.Time) time.Time { return t0.Add(5 * time.Minute) })
	tests := []struct {
		name   string
		params url.Values
		want   []string // bodies, newest first
	}{
		{"all", nil, []string{"served reviews", "responding 502", "payment failed: card declined", "request received"}},
		{"pod", url.Values{"namespace": {"shop"}, "pod": {"checkout-7d9c8b5f4-x2x9q"}}, []string{"responding 502", "payment failed: card declined", "request received"}},
		{"pod without namespace", url.Values{"pod": {"reviews-v2-7f5c9c8b6f-4wz7p"}}, []string{"served reviews"}},
		{"namespace", url.Values{"namespace": {"bookinfo"}}, []string{"served reviews"}},
		{"container", url.Values{"container": {"checkout"}}, []string{"responding 502", "payment failed: card declined", "request received"}},
		{"trace", url.Values{"trace_id": {querytest.CheckoutTraceID.String()}, "limit": {"2"}}, []string{"responding 502", "payment failed: card declined"}},
		{"since duration", url.Values{"since": {"3m30s"}}, []string{"served reviews"}},
		{"since time", url.Values{"since": {f.t0.Add(time.Minute + 15*time.Millisecond).Format(time.RFC3339Nano)}}, []string{"served reviews", "responding 502"}},
		{"nothing", url.Values{"pod": {"nope"}}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, env := promGet(t, f.url, "/api/v1/logs", tt.params)
			require.Equal(t, 200, code, "%+v", env)
			var logs []LogJSON
			require.NoError(t, json.Unmarshal(env.Data, &logs))
			got := []string{}
			for _, l := range logs {
				got = append(got, l.Body)
			}
			assert.Equal(t, tt.want, got)
		})
	}
	code, env := promGet(t, f.url, "/api/v1/logs", url.Values{"trace_id": {querytest.CheckoutTraceID.String()}, "limit": {"1"}})
	require.Equal(t, 200, code)
	var logs []LogJSON
	require.NoError(t, json.Unmarshal(env.Data, &logs))
	require.Len(t, logs, 1)
	assert.Equal(t, LogJSON{
		Time: f.t0.Add(time.Minute + 20*time.Millisecond), TraceID: querytest.CheckoutTraceID.String(), SpanID: querytest.RootSpanID.String(),
		Namespace: "shop", Pod: "checkout-7d9c8b5f4-x2x9q", Container: "checkout", Service: "checkout",
		Severity: "INFO", SeverityNumber: 9, Body: "responding 502",
	}, logs[0])

	for _, bad := range []url.Values{
		{"trace_id": {"xyz"}}, {"limit": {"0"}}, {"limit": {"100000"}}, {"since": {"-5m"}}, {"since": {"soon"}},
	} {
		code, env := promGet(t, f.url, "/api/v1/logs", bad)
		assert.Equal(t, http.StatusBadRequest, code, "%v", bad)
		assert.Equal(t, "bad_data", env.ErrorType)
	}
}
