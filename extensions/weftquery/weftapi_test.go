package weftquery

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"

	"github.com/weftobs/weft/internal/rulesapi"
)

// fakeRules is a rules extension with fixed groups and alerts.
type fakeRules struct {
	component.StartFunc
	component.ShutdownFunc
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
		TraceIDs: []string{checkoutTraceID.String()},
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
	f := newFixture(t, fixtureOpts{rules: newFakeRules})

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

func TestRulesDiscovery(t *testing.T) {
	var rules *fakeRules
	f := newFixture(t, fixtureOpts{rules: func(t0 time.Time) *fakeRules { rules = newFakeRules(t0); return rules }})
	assert.Same(t, rulesapi.Source(rules), f.srv.rules, "the rules extension is found among the host's extensions")
}

func TestCorrelate(t *testing.T) {
	f := newFixture(t, fixtureOpts{rules: newFakeRules})
	code, env := promGet(t, f.url, "/api/v1/correlate/"+checkoutTraceID.String(), nil)
	require.Equal(t, 200, code, "%+v", env)
	var c struct {
		TraceID   string      `json:"traceID"`
		Trace     jaegerTrace `json:"trace"`
		Logs      []logJSON   `json:"logs"`
		Exemplars []struct {
			Series map[string]string `json:"series"`
			SpanID string            `json:"spanID"`
			Value  float64           `json:"value"`
		} `json:"exemplars"`
		Alerts []map[string]any `json:"alerts"`
	}
	require.NoError(t, json.Unmarshal(env.Data, &c))
	assert.Equal(t, checkoutTraceID.String(), c.TraceID)
	assert.Len(t, c.Trace.Spans, 2)
	require.Len(t, c.Logs, 3)
	assert.Equal(t, "request received", c.Logs[0].Body, "logs oldest first")
	assert.Equal(t, "responding 502", c.Logs[2].Body)
	require.Len(t, c.Exemplars, 1)
	assert.Equal(t, "500", c.Exemplars[0].Series["code"])
	assert.Equal(t, rootSpanID.String(), c.Exemplars[0].SpanID)
	require.Len(t, c.Alerts, 1)
	assert.Equal(t, "HighErrorRate", c.Alerts[0]["labels"].(map[string]any)["alertname"])

	// The other trace: spans and a log, no alert.
	code, env = promGet(t, f.url, "/api/v1/correlate/"+reviewsTraceID.String(), nil)
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
	f := newFixture(t, fixtureOpts{now: func(t0 time.Time) time.Time { return t0.Add(5 * time.Minute) }})
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
		{"trace", url.Values{"trace_id": {checkoutTraceID.String()}, "limit": {"2"}}, []string{"responding 502", "payment failed: card declined"}},
		{"since duration", url.Values{"since": {"3m30s"}}, []string{"served reviews"}},
		{"since time", url.Values{"since": {f.t0.Add(time.Minute + 15*time.Millisecond).Format(time.RFC3339Nano)}}, []string{"served reviews", "responding 502"}},
		{"nothing", url.Values{"pod": {"nope"}}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, env := promGet(t, f.url, "/api/v1/logs", tt.params)
			require.Equal(t, 200, code, "%+v", env)
			var logs []logJSON
			require.NoError(t, json.Unmarshal(env.Data, &logs))
			got := []string{}
			for _, l := range logs {
				got = append(got, l.Body)
			}
			assert.Equal(t, tt.want, got)
		})
	}
	code, env := promGet(t, f.url, "/api/v1/logs", url.Values{"trace_id": {checkoutTraceID.String()}, "limit": {"1"}})
	require.Equal(t, 200, code)
	var logs []logJSON
	require.NoError(t, json.Unmarshal(env.Data, &logs))
	require.Len(t, logs, 1)
	assert.Equal(t, logJSON{
		Time: f.t0.Add(time.Minute + 20*time.Millisecond), TraceID: checkoutTraceID.String(), SpanID: rootSpanID.String(),
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
