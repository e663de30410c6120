package weftqueryextension

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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

// fakeRulesExt is newFakeRules as the extension fixtureOpts.rules registers.
func fakeRulesExt(t0 time.Time) component.Component { return newFakeRules(t0) }

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

func TestRulesDiscovery(t *testing.T) {
	var rules *fakeRules
	f := newFixture(t, fixtureOpts{rules: func(t0 time.Time) component.Component { rules = newFakeRules(t0); return rules }})
	assert.Same(t, rulesapi.Source(rules), f.srv.rules, "the rules extension is found among the host's extensions")
}
