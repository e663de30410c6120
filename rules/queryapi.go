package rules

import (
	"fmt"
	"maps"
	"time"

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

// RuleGroups returns the running rule groups with their last evaluation,
// each rule with its scope: node rules and the partials of cluster rules
// as they run, cluster rules (which do not run here) listed in place.
func (e *Engine) RuleGroups() []rulesapi.Group {
	groups := e.Groups()
	e.mu.Lock()
	plan := e.plan
	e.mu.Unlock()
	out := make([]rulesapi.Group, 0, len(groups))
	for _, g := range groups {
		rg := rulesapi.Group{
			Name: g.Name(), File: g.File(), Interval: g.Interval(),
			LastEvaluation: g.GetLastEvaluation(), EvaluationTime: g.GetEvaluationTime(),
		}
		var running []rulesapi.Rule
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
			running = append(running, qr)
		}
		rg.Rules = withScopes(plan.group(g.File(), g.Name()), running)
		out = append(out, rg)
	}
	return out
}

// group returns the plan of a group, or nil.
func (p *Plan) group(file, name string) *GroupPlan {
	if p == nil {
		return nil
	}
	for i := range p.Groups {
		if p.Groups[i].File == file && p.Groups[i].Group.Name == name {
			return &p.Groups[i]
		}
	}
	return nil
}

// withScopes orders a group's running rules as its plan (gp) lists them,
// with their scopes, and adds its cluster rules in place. Running rules
// the plan does not know (a reload between the two reads) come last.
func withScopes(gp *GroupPlan, running []rulesapi.Rule) []rulesapi.Rule {
	if gp == nil {
		return running
	}
	used := make([]bool, len(running))
	take := func(name, query string) (rulesapi.Rule, bool) {
		for i, r := range running {
			if !used[i] && r.Name == name && (query == "" || r.Query == query) {
				used[i] = true
				return r, true
			}
		}
		return rulesapi.Rule{}, false
	}
	var out []rulesapi.Rule
	for _, rp := range gp.Rules {
		if rp.Scope == ScopeNode {
			if r, ok := take(ruleName(rp.Rule), rp.query); ok {
				r.Scope, r.ScopeReason = rulesapi.ScopeNode, rp.Reason
				out = append(out, r)
			}
			continue
		}
		if r, ok := take(ruleName(rp.Rule), rp.query); ok {
			// scope.cluster_rules: node: it runs here all the same.
			r.Scope = rulesapi.ScopeCluster
			r.ScopeReason = rp.Reason + "; evaluated on this node anyway (scope.cluster_rules: node): it sees this node's data only"
			out = append(out, r)
			continue
		}
		cr := rulesapi.Rule{
			Type: "recording", Name: ruleName(rp.Rule), Query: rp.query, Health: "unknown",
			Labels: maps.Clone(gp.Group.Labels), Scope: rulesapi.ScopeCluster, ScopeReason: rp.Reason,
		}
		if cr.Labels == nil {
			cr.Labels = map[string]string{}
		}
		maps.Copy(cr.Labels, rp.Rule.Labels)
		if rp.Rule.Alert != "" {
			cr.Type, cr.For, cr.State = "alerting", time.Duration(rp.Rule.For), "inactive"
			cr.Annotations = maps.Clone(rp.Rule.Annotations)
		}
		if len(rp.Partials) == 0 {
			cr.ScopeReason += "; evaluated whole by the ruler"
		} else {
			cr.ScopeReason += "; finished by the ruler from partials recorded on every node"
		}
		out = append(out, cr)
		for _, pt := range rp.Partials {
			if r, ok := take(pt.Record, ""); ok {
				r.Scope, r.PartialOf = rulesapi.ScopeNode, cr.Name
				r.ScopeReason = fmt.Sprintf("partial of the cluster rule %q: this node's share, finished by the ruler", cr.Name)
				out = append(out, r)
			}
		}
	}
	for i, r := range running {
		if !used[i] {
			out = append(out, r)
		}
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
