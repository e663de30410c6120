package rules

import (
	promrules "github.com/prometheus/prometheus/rules"

	"github.com/weftobs/weft/internal/rulesapi"
)

// The engine is the weft_query extension's source of /api/v1/rules,
// /api/v1/alerts and the alerts shown with a trace (through the weft_rules
// extension, which delegates).
var (
	_ rulesapi.Source       = (*Engine)(nil)
	_ rulesapi.HealthSource = (*Engine)(nil)
)

// RulesHealth reports the rule sources' state for the status page.
func (e *Engine) RulesHealth() rulesapi.Health {
	s := e.Status()
	return rulesapi.Health{
		LastReload: s.LastReload, ReloadOK: s.LastReloadSuccess, LastError: s.LastError,
		Inherited: s.Inherited, Rejected: s.Rejected, SourceError: s.KubernetesError,
	}
}

// RuleGroups returns the running rule groups with their last evaluation.
func (e *Engine) RuleGroups() []rulesapi.Group {
	groups := e.Groups()
	out := make([]rulesapi.Group, 0, len(groups))
	for _, g := range groups {
		rg := rulesapi.Group{
			Name: g.Name(), File: g.File(), Interval: g.Interval(),
			LastEvaluation: g.GetLastEvaluation(), EvaluationTime: g.GetEvaluationTime(),
		}
		for _, r := range g.Rules() {
			qr := rulesapi.Rule{
				Name: r.Name(), Query: r.Query().String(), Labels: r.Labels().Map(),
				Health: string(r.Health()), LastEvaluation: r.GetEvaluationTimestamp(),
				EvaluationTime: r.GetEvaluationDuration(),
			}
			if err := r.LastError(); err != nil {
				qr.LastError = err.Error()
			}
			switch r := r.(type) {
			case *promrules.AlertingRule:
				qr.Type, qr.For, qr.State = "alerting", r.HoldDuration(), r.State().String()
				qr.Annotations = r.Annotations().Map()
				for _, a := range r.ActiveAlerts() {
					qr.Alerts = append(qr.Alerts, e.queryAlert(a))
				}
			default:
				qr.Type = "recording"
			}
			rg.Rules = append(rg.Rules, qr)
		}
		out = append(out, rg)
	}
	return out
}

// Alerts returns the pending and firing alerts, each with the trace IDs of
// the evidence found for it so far.
func (e *Engine) Alerts() []rulesapi.Alert {
	var out []rulesapi.Alert
	for _, g := range e.RuleGroups() {
		for _, r := range g.Rules {
			out = append(out, r.Alerts...)
		}
	}
	return out
}

func (e *Engine) queryAlert(a *promrules.Alert) rulesapi.Alert {
	qa := rulesapi.Alert{
		Labels: a.Labels.Map(), Annotations: a.Annotations.Map(), State: a.State.String(),
		ActiveAt: a.ActiveAt, Value: a.Value,
	}
	if e.evidence != nil {
		for _, id := range e.evidence.cached(alertRef{labels: a.Labels, activeAt: a.ActiveAt}) {
			qa.TraceIDs = append(qa.TraceIDs, id.String())
		}
	}
	return qa
}
