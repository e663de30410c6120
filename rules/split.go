package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// partialPrefix starts the names of the partial recording rules a node
// evaluates for cluster rules.
const partialPrefix = "weft:partial:"

// Partial is a recording rule a node evaluates for a cluster rule: an
// aggregation over the node's own series whose results, read over Thanos
// Query with each node's label, the cluster rule finishes.
type Partial struct {
	Record string // weft:partial:<hash of group name and Expr>
	Expr   string
}

// RulePlan is the scope of one rule and, for a cluster rule, its split.
type RulePlan struct {
	Rule   rulefmt.Rule // as loaded
	Scope  Scope
	Reason string // why (human readable)
	// Partials are what the node evaluates for a cluster rule (none: the
	// ruler evaluates the original expression over the nodes' series).
	Partials []Partial
	// ClusterExpr is what the ruler evaluates for a cluster rule: the
	// original expression with each pushed-down aggregation replaced by
	// the aggregation that finishes its partials.
	ClusterExpr string
	// Whole says why parts of a cluster rule were not pushed down.
	Whole []string
	query string // the parsed expression, printed (as the rule manager shows it)
}

// GroupPlan is one rule group with its rules' plans.
type GroupPlan struct {
	File   string
	Group  rulefmt.RuleGroup // as loaded, without the weft.io/scope label
	Rules  []RulePlan
	forced Scope // the group's weft.io/scope label
}

// Plan is the scope and split of a rule set: what each node evaluates
// (NodeGroups) and what a ruler evaluates over Thanos Query (ClusterFile).
type Plan struct {
	Groups []GroupPlan
	// PartitionLabels are the labels taken to partition series by node.
	PartitionLabels []string
	// ObjectMetrics are the object metric patterns (ScopeOptions).
	ObjectMetrics []string
	files         []string
}

// PlanRules decides the scope of every rule of set (files in order) and
// splits the cluster rules.
func PlanRules(files []string, set map[string]*rulefmt.RuleGroups, opts ScopeOptions, p parser.Parser) (*Plan, error) {
	sc, err := newScoper(opts)
	if err != nil {
		return nil, err
	}
	plan := &Plan{PartitionLabels: slices.Clone(sc.partition), ObjectMetrics: sc.objectNames, files: slices.Clone(files)}
	type item struct{ g, r int }
	var items []item
	var errs []error
	for _, f := range files {
		rgs := set[f]
		if rgs == nil {
			continue
		}
		for _, g := range rgs.Groups {
			gp := GroupPlan{File: f, Group: g}
			if v, ok := g.Labels[ScopeKey]; ok {
				s, err := parseScope(v)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: group %q: label %w", f, g.Name, err))
				}
				gp.forced = s
				gp.Group.Labels = maps.Clone(g.Labels)
				delete(gp.Group.Labels, ScopeKey)
				if len(gp.Group.Labels) == 0 {
					gp.Group.Labels = nil
				}
			}
			for i, r := range g.Rules {
				if v, ok := r.Annotations[ScopeKey]; ok {
					if _, err := parseScope(v); err != nil {
						errs = append(errs, fmt.Errorf("%s: group %q, rule %d, %q: annotation %w", f, g.Name, i+1, ruleName(r), err))
					}
				}
				expr, err := p.ParseExpr(r.Expr)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: group %q, rule %d, %q: %w", f, g.Name, i+1, ruleName(r), err))
					continue
				}
				gp.Rules = append(gp.Rules, RulePlan{Rule: r, query: expr.String()})
				items = append(items, item{len(plan.Groups), i})
			}
			plan.Groups = append(plan.Groups, gp)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Decide until the set of names recorded by cluster rules is stable:
	// a rule that reads one of them is a cluster rule too (only the
	// ruler has those series). It only grows, so this ends.
	// The same for the ALERTS series of cluster alerts.
	for range len(items) + 2 {
		records, alerts := map[string]string{}, map[string]string{}
		for _, it := range items {
			gp := &plan.Groups[it.g]
			rp := &gp.Rules[it.r]
			expr, _ := p.ParseExpr(rp.Rule.Expr)
			rp.Scope, rp.Reason = decideForced(sc, expr, rp.Rule, gp.forced)
			if rp.Scope != ScopeCluster {
				continue
			}
			desc := fmt.Sprintf("%q (group %q)", ruleName(rp.Rule), gp.Group.Name)
			if rp.Rule.Record != "" {
				records[rp.Rule.Record] = desc
			} else {
				alerts[rp.Rule.Alert] = desc
			}
		}
		if maps.Equal(records, sc.clusterRecords) && maps.Equal(alerts, sc.clusterAlerts) {
			break
		}
		sc.clusterRecords, sc.clusterAlerts = records, alerts
	}
	for _, it := range items {
		gp := &plan.Groups[it.g]
		rp := &gp.Rules[it.r]
		if rp.Scope != ScopeCluster {
			continue
		}
		expr, _ := p.ParseExpr(rp.Rule.Expr)
		sc.decide(expr) // fills the memo split reads
		sp := &splitter{sc: sc, p: p, group: gp.Group.Name}
		out := sp.split(expr, false, true)
		rp.ClusterExpr = out.String()
		rp.Partials, rp.Whole = sp.partials, sp.whole
		if len(rp.Partials) == 0 && len(rp.Whole) == 0 {
			rp.Whole = []string{"nothing to push down"}
		}
		if _, err := p.ParseExpr(rp.ClusterExpr); err != nil {
			return nil, fmt.Errorf("%s: group %q, rule %q: split produced an invalid expression %q: %w",
				gp.File, gp.Group.Name, ruleName(rp.Rule), rp.ClusterExpr, err)
		}
	}
	return plan, nil
}

// decideForced is the scope of a rule: its annotation, else its group's
// label, else the analysis of its expression.
func decideForced(sc *scoper, expr parser.Expr, r rulefmt.Rule, group Scope) (Scope, string) {
	s, why := sc.decide(expr)
	if v, ok := r.Annotations[ScopeKey]; ok {
		f, _ := parseScope(v)
		return f, fmt.Sprintf("forced by the rule's annotation %s (analysis: %s, %s)", ScopeKey, s, why)
	}
	if group != "" {
		return group, fmt.Sprintf("forced by the group's %s (analysis: %s, %s)", ScopeKey, s, why)
	}
	return s, why
}

// splitter rewrites a cluster rule's expression: each aggregation that
// distributes over nodes and reads only node-local series becomes a
// partial the nodes record and the aggregation that finishes it.
type splitter struct {
	sc       *scoper
	p        parser.Parser
	group    string
	partials []Partial
	whole    []string
}

// split rewrites e (in place where it can). inSub: e is inside a
// subquery; nameFree: the metric name of e's output series cannot be
// seen in the rule's result.
func (sp *splitter) split(e parser.Expr, inSub, nameFree bool) parser.Expr {
	st := sp.sc.walk(e)
	if st.kind != kindCluster {
		return e
	}
	origin := true // no child is a cluster expression: e is where it starts
	for _, c := range parser.Children(e) {
		if ex, ok := c.(parser.Expr); ok && sp.sc.walk(ex).kind == kindCluster {
			origin = false
		}
	}
	switch n := e.(type) {
	case *parser.AggregateExpr:
		if ok, why := sp.pushable(n, inSub, nameFree); ok {
			return sp.finish(n)
		} else if why != "" {
			sp.note(why)
		}
		childFree := n.Without || !slices.Contains(n.Grouping, "__name__")
		if n.Op == parser.TOPK || n.Op == parser.BOTTOMK || n.Op == parser.LIMITK || n.Op == parser.LIMIT_RATIO {
			childFree = nameFree
		}
		n.Expr = sp.split(n.Expr, inSub, childFree)
		if n.Param != nil {
			n.Param = sp.split(n.Param, inSub, true)
		}
		return n
	case *parser.BinaryExpr:
		if origin {
			sp.note(st.why)
		}
		matchName := n.VectorMatching != nil && slices.Contains(n.VectorMatching.MatchingLabels, "__name__")
		lFree, rFree := !matchName, !matchName
		if (n.Op.IsComparisonOperator() && !n.ReturnBool) || n.Op.IsSetOperator() {
			lFree = nameFree && !matchName
		}
		if n.Op == parser.LOR {
			rFree = nameFree && !matchName
		}
		n.LHS = sp.split(n.LHS, inSub, lFree)
		n.RHS = sp.split(n.RHS, inSub, rFree)
		return n
	case *parser.Call:
		if origin {
			sp.note(st.why)
		}
		for i, a := range n.Args {
			n.Args[i] = sp.split(a, inSub, nameFree)
		}
		return n
	case *parser.ParenExpr:
		n.Expr = sp.split(n.Expr, inSub, nameFree)
		return n
	case *parser.UnaryExpr:
		n.Expr = sp.split(n.Expr, inSub, true)
		return n
	case *parser.StepInvariantExpr:
		n.Expr = sp.split(n.Expr, inSub, nameFree)
		return n
	case *parser.SubqueryExpr:
		n.Expr = sp.split(n.Expr, true, nameFree)
		return n
	}
	if origin {
		sp.note(st.why)
	}
	return e
}

func (sp *splitter) note(why string) {
	if why != "" && !slices.Contains(sp.whole, why) {
		sp.whole = append(sp.whole, why)
	}
}

// pushable reports whether aggregation n can be pushed down to the
// nodes, and if not, why ("" when n's input is a cluster expression
// itself, whose parts split looks at).
func (sp *splitter) pushable(n *parser.AggregateExpr, inSub, nameFree bool) (bool, string) {
	if sp.sc.walk(n.Expr).kind != kindLocal {
		return false, ""
	}
	desc := strings.TrimSpace(n.ShortString())
	if n.Param != nil && sp.sc.walk(n.Param).kind != kindConst {
		return false, fmt.Sprintf("%s: its parameter is not a constant", desc)
	}
	if inSub {
		return false, fmt.Sprintf("%s is inside a subquery (partials recorded at the node's interval are not its steps)", desc)
	}
	switch n.Op {
	case parser.SUM, parser.MIN, parser.MAX, parser.COUNT, parser.GROUP, parser.AVG:
	case parser.TOPK, parser.BOTTOMK:
		if !nameFree {
			return false, fmt.Sprintf("%s keeps the metric names of its series, which a partial recording replaces", desc)
		}
	default:
		return false, fmt.Sprintf("%s does not distribute over nodes", n.Op)
	}
	if !n.Without && slices.Contains(n.Grouping, "__name__") {
		return false, fmt.Sprintf("%s groups by the metric name, which a partial recording replaces", desc)
	}
	in := sp.sc.walk(n.Expr)
	if in.tainted[nodeLabel] {
		keeps := in.present(nodeLabel)
		switch {
		case n.Op == parser.TOPK || n.Op == parser.BOTTOMK:
		case n.Without:
			keeps = keeps && !slices.Contains(n.Grouping, nodeLabel)
		default:
			keeps = keeps && slices.Contains(n.Grouping, nodeLabel)
		}
		if keeps {
			return false, fmt.Sprintf("%s keeps a %q label the expression writes, which the StoreAPI edge sets", desc, nodeLabel)
		}
	}
	return true, ""
}

// finish records the partial(s) of n and returns the expression that
// finishes them over all nodes.
func (sp *splitter) finish(n *parser.AggregateExpr) parser.Expr {
	part := func(op parser.ItemType, param parser.Expr) parser.Expr {
		pe := &parser.AggregateExpr{Op: op, Expr: n.Expr, Param: param, Grouping: n.Grouping, Without: n.Without}
		expr := pe.String()
		name := partialName(sp.group, expr)
		if !slices.ContainsFunc(sp.partials, func(p Partial) bool { return p.Record == name }) {
			sp.partials = append(sp.partials, Partial{Record: name, Expr: expr})
		}
		sel, err := sp.p.ParseExpr(name)
		if err != nil {
			panic(fmt.Sprintf("partial name %q does not parse: %v", name, err)) // cannot happen: [a-z0-9:]
		}
		return sel
	}
	agg := func(op parser.ItemType, param, in parser.Expr) *parser.AggregateExpr {
		return &parser.AggregateExpr{Op: op, Expr: in, Param: param, Grouping: n.Grouping, Without: n.Without}
	}
	switch n.Op {
	case parser.COUNT:
		return agg(parser.SUM, nil, part(parser.COUNT, nil))
	case parser.AVG:
		return &parser.ParenExpr{Expr: &parser.BinaryExpr{
			Op:             parser.DIV,
			LHS:            agg(parser.SUM, nil, part(parser.SUM, nil)),
			RHS:            agg(parser.SUM, nil, part(parser.COUNT, nil)),
			VectorMatching: &parser.VectorMatching{Card: parser.CardOneToOne},
		}}
	case parser.TOPK, parser.BOTTOMK:
		fin := agg(n.Op, n.Param, part(n.Op, n.Param))
		if in := sp.sc.walk(n.Expr); !in.open || !in.present(nodeLabel) {
			// The original's series have no node label (an inner by()
			// dropped it); the partials' series have it from the
			// StoreAPI edge: drop it after choosing.
			return &parser.Call{
				Func: parser.Functions["label_replace"],
				Args: parser.Expressions{fin, &parser.StringLiteral{Val: nodeLabel}, &parser.StringLiteral{Val: ""},
					&parser.StringLiteral{Val: nodeLabel}, &parser.StringLiteral{Val: ".*"}},
			}
		}
		return fin
	default: // sum, min, max, group: the same operation again
		return agg(n.Op, n.Param, part(n.Op, n.Param))
	}
}

// partialName is the deterministic name of a partial: the same group and
// expression always give the same name, on the node and in the cluster
// file.
func partialName(group, expr string) string {
	h := sha256.Sum256([]byte(group + "\x00" + expr))
	return partialPrefix + hex.EncodeToString(h[:8])
}

// size returns the number of groups and of rules of the plan (0, 0 for
// none).
func (p *Plan) size() (groups, rules int) {
	if p == nil {
		return 0, 0
	}
	for _, gp := range p.Groups {
		rules += len(gp.Rules)
	}
	return len(p.Groups), rules
}

// NodeGroups returns the rule groups a node runs: its node rules
// unchanged and the partials of its cluster rules, in rule order (a
// partial shared by two rules of a group runs once). Group labels are
// moved onto the node rules so that partials carry none. With
// clusterToo, cluster rules run on the node as they are, without
// partials (scope.cluster_rules: node).
func (p *Plan) NodeGroups(clusterToo bool) map[string]*rulefmt.RuleGroups {
	out := make(map[string]*rulefmt.RuleGroups, len(p.files))
	for _, f := range p.files {
		out[f] = &rulefmt.RuleGroups{}
	}
	for _, gp := range p.Groups {
		g := rulefmt.RuleGroup{Name: gp.Group.Name, Interval: gp.Group.Interval, QueryOffset: gp.Group.QueryOffset, Limit: gp.Group.Limit}
		seen := map[string]bool{}
		for _, rp := range gp.Rules {
			if rp.Scope == ScopeNode || clusterToo {
				r := rp.Rule
				if len(gp.Group.Labels) > 0 {
					r.Labels = maps.Clone(gp.Group.Labels)
					maps.Copy(r.Labels, rp.Rule.Labels)
				}
				g.Rules = append(g.Rules, r)
				continue
			}
			for _, pt := range rp.Partials {
				if !seen[pt.Record] {
					seen[pt.Record] = true
					g.Rules = append(g.Rules, rulefmt.Rule{Record: pt.Record, Expr: pt.Expr})
				}
			}
		}
		if out[gp.File] == nil {
			out[gp.File] = &rulefmt.RuleGroups{}
		}
		out[gp.File].Groups = append(out[gp.File].Groups, g)
	}
	return out
}

// clusterFile is a rule file for Thanos Ruler (Prometheus's format plus
// partial_response_strategy).
type clusterFile struct {
	Groups []clusterGroup `yaml:"groups"`
}

type clusterGroup struct {
	Name                    string            `yaml:"name"`
	Interval                string            `yaml:"interval,omitempty"`
	QueryOffset             string            `yaml:"query_offset,omitempty"`
	Limit                   int               `yaml:"limit,omitempty"`
	PartialResponseStrategy string            `yaml:"partial_response_strategy"`
	Labels                  map[string]string `yaml:"labels,omitempty"`
	Rules                   []clusterRule     `yaml:"rules"`
}

type clusterRule struct {
	Record        string            `yaml:"record,omitempty"`
	Alert         string            `yaml:"alert,omitempty"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for,omitempty"`
	KeepFiringFor string            `yaml:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
	Annotations   map[string]string `yaml:"annotations,omitempty"`
}

func durationString(d model.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// ClusterFile returns the rule file a ruler evaluates over Thanos Query:
// every group with cluster rules (same name, interval, query offset,
// limit and labels), partial_response_strategy abort, each cluster rule
// with its finishing expression. Group names must be unique across files.
func (p *Plan) ClusterFile() ([]byte, error) {
	var f clusterFile
	where := map[string]string{}
	var errs []error
	for _, gp := range p.Groups {
		cg := clusterGroup{
			Name: gp.Group.Name, Interval: durationString(gp.Group.Interval), Limit: gp.Group.Limit,
			PartialResponseStrategy: "abort", Labels: gp.Group.Labels,
		}
		if gp.Group.QueryOffset != nil {
			cg.QueryOffset = gp.Group.QueryOffset.String()
		}
		for _, rp := range gp.Rules {
			if rp.Scope != ScopeCluster {
				continue
			}
			cg.Rules = append(cg.Rules, clusterRule{
				Record: rp.Rule.Record, Alert: rp.Rule.Alert, Expr: rp.ClusterExpr,
				For: durationString(rp.Rule.For), KeepFiringFor: durationString(rp.Rule.KeepFiringFor),
				Labels: rp.Rule.Labels, Annotations: rp.Rule.Annotations,
			})
		}
		if len(cg.Rules) == 0 {
			continue
		}
		if prev, dup := where[cg.Name]; dup {
			errs = append(errs, fmt.Errorf("group %q has cluster rules in %s and in %s: the cluster file needs unique group names", cg.Name, prev, gp.File))
			continue
		}
		where[cg.Name] = gp.File
		f.Groups = append(f.Groups, cg)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if f.Groups == nil {
		f.Groups = []clusterGroup{}
	}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// Summary describes every rule: scope, reason, and for cluster rules
// what was pushed down and what stays whole; one line per rule.
func (p *Plan) Summary() []string {
	var out []string
	for _, gp := range p.Groups {
		for i, rp := range gp.Rules {
			var b strings.Builder
			fmt.Fprintf(&b, "%s: group %q, rule %d, %q: %s: %s", gp.File, gp.Group.Name, i+1, ruleName(rp.Rule), rp.Scope, rp.Reason)
			if rp.Scope == ScopeCluster {
				if len(rp.Partials) > 0 {
					names := make([]string, len(rp.Partials))
					for j, pt := range rp.Partials {
						names[j] = pt.Record + " = " + pt.Expr
					}
					fmt.Fprintf(&b, "; pushed down: %s", strings.Join(names, "; "))
				} else {
					b.WriteString("; not pushed down")
				}
				if len(rp.Whole) > 0 {
					fmt.Fprintf(&b, " (whole: %s)", strings.Join(rp.Whole, "; "))
				}
			}
			out = append(out, b.String())
		}
	}
	return out
}

// SplitFiles loads rule files and PrometheusRule manifests (files,
// directories and globs, as rule_files takes them; UTF-8 names) and plans
// them, for `weft rules split`. Errors name file, group and rule.
func SplitFiles(patterns []string, opts ScopeOptions) (*Plan, error) {
	files, err := expandSources(patterns)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no rule files in %s", strings.Join(patterns, ", "))
	}
	p := parser.NewParser(parser.Options{})
	set := make(map[string]*rulefmt.RuleGroups, len(files))
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rgs, ferrs := loadRuleFile(f, b, p, nil)
		errs = append(errs, ferrs...)
		set[f] = rgs
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return PlanRules(files, set, opts, p)
}
