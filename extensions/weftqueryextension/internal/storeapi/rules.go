package storeapi

import (
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/thanos/pkg/rules/rulespb"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftobs/weft/internal/rulesapi"
)

type rulesServer struct{ s *Server }

// Rules streams the rule groups of the rules engine, one response per
// group, with the external labels added to every rule's labels and every
// alert's labels, so that Thanos Query lists each node's rules and alerts
// apart. (A Thanos sidecar labels only the rules; weft labels the alerts
// too, as they are sent to Alertmanager with weft_rules' external labels,
// the node among them.) It honours the request's
// type, rule_name, rule_group, file and matcher filters.
func (rs rulesServer) Rules(r *rulespb.RulesRequest, srv rulespb.Rules_RulesServer) error {
	s := rs.s
	if s.opts.Rules == nil {
		return nil
	}
	sel, err := s.ruleMatchers(r.MatcherString)
	if err != nil {
		return err
	}
	f := ruleFilter{typ: r.Type, names: set(r.RuleName), groups: set(r.RuleGroup), files: set(r.File), sel: sel}
	for _, g := range s.opts.Rules.RuleGroups() {
		if !f.groups.has(g.Name) || !f.files.has(g.File) {
			continue
		}
		pg := &rulespb.RuleGroup{
			Name: g.Name, File: g.File, Interval: g.Interval.Seconds(),
			EvaluationDurationSeconds: g.EvaluationTime.Seconds(), LastEvaluation: g.LastEvaluation,
			PartialResponseStrategy: r.PartialResponseStrategy,
		}
		for _, rule := range g.Rules {
			if f.keep(rule) {
				pg.Rules = append(pg.Rules, s.rule(rule, r.PartialResponseStrategy))
			}
		}
		if len(pg.Rules) == 0 && len(g.Rules) > 0 {
			continue
		}
		if err := srv.Send(rulespb.NewRuleGroupRulesResponse(pg)); err != nil {
			return status.Errorf(codes.Aborted, "send rule group: %v", err)
		}
	}
	return nil
}

// ruleMatchers parses the request's matcher strings (PromQL selectors),
// within the matcher limits.
func (s *Server) ruleMatchers(in []string) ([][]*labels.Matcher, error) {
	var out [][]*labels.Matcher
	for _, m := range in {
		if len(m) > s.limits.MaxRegexLength {
			return nil, status.Errorf(codes.InvalidArgument, "matcher_string of %d bytes is longer than the limit of %d bytes", len(m), s.limits.MaxRegexLength)
		}
		ms, err := s.opts.Parser.ParseMetricSelector(m)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "matcher_string %q: %v", m, err)
		}
		if err := checkLimits(ms, s.limits); err != nil {
			return nil, err
		}
		out = append(out, ms)
	}
	return out, nil
}

type strSet map[string]bool

func set(ss []string) strSet {
	m := strSet{}
	for _, s := range ss {
		m[s] = true
	}
	return m
}

// has is true for every string when the set is empty (no filter).
func (m strSet) has(s string) bool { return len(m) == 0 || m[s] }

type ruleFilter struct {
	typ                  rulespb.RulesRequest_Type
	names, groups, files strSet
	sel                  [][]*labels.Matcher
}

func (f ruleFilter) keep(r rulesapi.Rule) bool {
	switch {
	case r.Scope == rulesapi.ScopeCluster && r.Health == "unknown" && r.LastEvaluation.IsZero(),
		f.typ == rulespb.RulesRequest_ALERT && r.Type != "alerting",
		f.typ == rulespb.RulesRequest_RECORD && r.Type != "recording",
		!f.names.has(r.Name):
		return false
	case len(f.sel) == 0:
		return true
	}
	ls := labels.FromMap(r.Labels)
	for _, ms := range f.sel {
		if matchesAll(ms, ls) {
			return true
		}
	}
	return false
}

func matchesAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// withExt is m's labels with the external labels set (they win, as in
// Thanos's rules proxy for Prometheus).
func (s *Server) withExt(m map[string]string) labels.Labels {
	b := labels.NewBuilder(labels.FromMap(m))
	s.ext.lset.Range(func(l labels.Label) { b.Set(l.Name, l.Value) })
	return b.Labels()
}

func (s *Server) rule(r rulesapi.Rule, prs storepb.PartialResponseStrategy) *rulespb.Rule {
	if r.Type != "alerting" {
		return rulespb.NewRecordingRule(&rulespb.RecordingRule{
			Name: r.Name, Query: r.Query, Labels: zlabelSet(s.withExt(r.Labels)),
			Health: r.Health, LastError: r.LastError,
			EvaluationDurationSeconds: r.EvaluationTime.Seconds(), LastEvaluation: r.LastEvaluation,
		})
	}
	a := &rulespb.Alert{
		State: alertState(r.State), Name: r.Name, Query: r.Query, DurationSeconds: r.For.Seconds(),
		Labels: zlabelSet(s.withExt(r.Labels)), Annotations: zlabelSet(labels.FromMap(r.Annotations)),
		Health: r.Health, LastError: r.LastError,
		EvaluationDurationSeconds: r.EvaluationTime.Seconds(), LastEvaluation: r.LastEvaluation,
	}
	for _, al := range r.Alerts {
		at := al.ActiveAt
		a.Alerts = append(a.Alerts, &rulespb.AlertInstance{
			Labels: zlabelSet(s.withExt(al.Labels)), Annotations: zlabelSet(labels.FromMap(al.Annotations)),
			State: alertState(al.State), ActiveAt: &at, Value: strconv.FormatFloat(al.Value, 'e', -1, 64),
			PartialResponseStrategy: prs,
		})
	}
	return rulespb.NewAlertingRule(a)
}

func alertState(s string) rulespb.AlertState {
	switch s {
	case "inactive":
		return rulespb.AlertState_INACTIVE
	case "pending":
		return rulespb.AlertState_PENDING
	case "firing":
		return rulespb.AlertState_FIRING
	}
	return rulespb.AlertState_UNKNOWN
}
