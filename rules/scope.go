package rules

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// Scope says where a rule is evaluated: on every node over that node's
// data (ScopeNode), or once for the whole cluster by a ruler over Thanos
// Query (ScopeCluster). See rules/README.md, "Scope and split".
type Scope string

// Scopes of a rule.
const (
	ScopeNode    Scope = "node"
	ScopeCluster Scope = "cluster"
)

// ScopeKey is the annotation (alerting rules, PrometheusRule metadata) and
// group label that forces a rule's scope: "node" or "cluster". The group
// label is removed before the group runs, so it never reaches a series.
const ScopeKey = "weft.io/scope"

// nodeLabel is the external label that names an agent's node: Thanos
// Query sees it on every series an agent serves, the agent's own TSDB
// does not store it.
const nodeLabel = "node"

// defaultPartitionLabels are the labels whose values each belong to one
// node (a pod, a scrape target and the node itself live on one node).
var defaultPartitionLabels = []string{nodeLabel, "pod", "instance"}

// DefaultObjectMetrics are the metric names (anchored regular
// expressions) whose series describe Kubernetes objects anywhere in the
// cluster from one exporter (kube-state-metrics): their pod, node and
// instance labels say nothing about the node that stores the series.
var DefaultObjectMetrics = []string{"kube_.*"}

// ScopeOptions are the settings of the scope analysis.
type ScopeOptions struct {
	// PartitionLabels are added to node, pod and instance as labels
	// whose values each belong to one node.
	PartitionLabels []string
	// ObjectMetrics are anchored regular expressions of metric names
	// whose partition labels are not trusted (nil: DefaultObjectMetrics).
	ObjectMetrics []string
}

// parseScope parses a weft.io/scope value.
func parseScope(v string) (Scope, error) {
	switch s := Scope(v); s {
	case ScopeNode, ScopeCluster:
		return s, nil
	}
	return "", fmt.Errorf("%s: %q: want %q or %q", ScopeKey, v, ScopeNode, ScopeCluster)
}

// checkScopeKeys checks the weft.io/scope values of a file's groups
// (group labels) and alerting rules (annotations), naming group and rule.
func checkScopeKeys(rgs *rulefmt.RuleGroups) []error {
	if rgs == nil {
		return nil
	}
	var errs []error
	for _, g := range rgs.Groups {
		if v, ok := g.Labels[ScopeKey]; ok {
			if _, err := parseScope(v); err != nil {
				errs = append(errs, fmt.Errorf("group %q: label %w", g.Name, err))
			}
		}
		for i, r := range g.Rules {
			if v, ok := r.Annotations[ScopeKey]; ok {
				if _, err := parseScope(v); err != nil {
					errs = append(errs, fmt.Errorf("group %q, rule %d, %q: annotation %w", g.Name, i+1, ruleName(r), err))
				}
			}
		}
	}
	return errs
}

// applyManifestScope makes a PrometheusRule's metadata annotation
// weft.io/scope the default of its groups (a group's own label wins).
func applyManifestScope(rgs *rulefmt.RuleGroups, annotations map[string]string, line int) error {
	v, ok := annotations[ScopeKey]
	if !ok || rgs == nil {
		return nil
	}
	if _, err := parseScope(v); err != nil {
		return fmt.Errorf("%d: metadata.annotations %w", line, err)
	}
	for i := range rgs.Groups {
		g := &rgs.Groups[i]
		if _, set := g.Labels[ScopeKey]; set {
			continue
		}
		if g.Labels == nil {
			g.Labels = map[string]string{}
		}
		g.Labels[ScopeKey] = v
	}
	return nil
}

func ruleName(r rulefmt.Rule) string {
	if r.Alert != "" {
		return r.Alert
	}
	return r.Record
}

// stateKind is what an expression's value depends on.
type stateKind uint8

const (
	// kindConst: no series (numbers, time(), vector(1)): the same on every node.
	kindConst stateKind = iota
	// kindLocal: evaluated over all nodes' series (each carrying its
	// node label), it gives exactly the union of its values on each node
	// alone: no output series mixes data of two nodes.
	kindLocal
	// kindCluster: an output series may depend on several nodes' data
	// (or on data no node has, like absent()).
	kindCluster
)

// exprState is the scope analysis of one expression: its kind and, for
// local vectors, what is known of the labels of its output series, as
// seen over Thanos Query (where every series carries its node label).
type exprState struct {
	kind stateKind
	// why: for kindCluster the reason; for kindLocal the aggregation or
	// match that kept a partition label ("" for none).
	why string
	// open: the output keeps every input label except names; otherwise
	// it has at most the labels in names.
	open  bool
	names map[string]bool
	// tainted labels were written by the expression itself
	// (label_replace, count_values, group_left): their values no longer
	// say which node a series comes from.
	tainted map[string]bool
}

func clusterState(format string, args ...any) exprState {
	return exprState{kind: kindCluster, why: fmt.Sprintf(format, args...)}
}

var constState = exprState{kind: kindConst}

// present reports whether a series of s may carry label l.
func (s exprState) present(l string) bool {
	if s.open {
		return !s.names[l]
	}
	return s.names[l]
}

func (s exprState) clone() exprState {
	c := s
	c.names = make(map[string]bool, len(s.names))
	for k, v := range s.names {
		c.names[k] = v
	}
	c.tainted = make(map[string]bool, len(s.tainted))
	for k, v := range s.tainted {
		c.tainted[k] = v
	}
	return c
}

// remove drops labels from the output (without, ignoring).
func (s exprState) remove(ls []string) exprState {
	c := s.clone()
	for _, l := range ls {
		if c.open {
			c.names[l] = true
		} else {
			delete(c.names, l)
		}
		delete(c.tainted, l)
	}
	return c
}

// keep keeps only labels ls (by, on) of the output.
func (s exprState) keep(ls []string) exprState {
	c := exprState{kind: s.kind, why: s.why, names: map[string]bool{}, tainted: map[string]bool{}}
	for _, l := range ls {
		if s.present(l) {
			c.names[l] = true
			if s.tainted[l] {
				c.tainted[l] = true
			}
		}
	}
	return c
}

// write marks label l as written by the expression.
func (s exprState) write(l string) exprState {
	c := s.clone()
	if c.open {
		delete(c.names, l)
	} else {
		c.names[l] = true
	}
	c.tainted[l] = true
	return c
}

// merge is the state of a union of two local vectors (or): labels known
// of both.
func merge(a, b exprState) exprState {
	c := exprState{kind: kindLocal, why: a.why, names: map[string]bool{}, tainted: map[string]bool{}}
	if c.why == "" {
		c.why = b.why
	}
	switch {
	case a.open && b.open:
		c.open = true
		for k := range a.names {
			c.names[k] = true
		}
		for k := range b.names {
			c.names[k] = true
		}
	case a.open:
		for k := range b.names {
			if a.present(k) {
				c.names[k] = true
			}
		}
	default:
		for k := range a.names {
			if b.present(k) {
				c.names[k] = true
			}
		}
	}
	for k := range a.tainted {
		c.tainted[k] = true
	}
	for k := range b.tainted {
		c.tainted[k] = true
	}
	return c
}

// scoper decides the scope of expressions.
type scoper struct {
	partition []string // partition labels, node first
	isPart    map[string]bool
	objects   []*regexp.Regexp
	// objectNames are the object metric patterns as given.
	objectNames []string
	// clusterRecords are the names recorded by cluster recording rules
	// (only the ruler has them), with the rule that records each.
	clusterRecords map[string]string
	// clusterAlerts are the cluster alerting rules (their ALERTS and
	// ALERTS_FOR_STATE series exist only in the ruler), likewise.
	clusterAlerts map[string]string
	memo          map[parser.Expr]exprState
}

func newScoper(opts ScopeOptions) (*scoper, error) {
	s := &scoper{isPart: map[string]bool{}, clusterRecords: map[string]string{}, clusterAlerts: map[string]string{}}
	for _, l := range append(slices.Clone(defaultPartitionLabels), opts.PartitionLabels...) {
		if !s.isPart[l] {
			s.isPart[l] = true
			s.partition = append(s.partition, l)
		}
	}
	objs := opts.ObjectMetrics
	if objs == nil {
		objs = DefaultObjectMetrics
	}
	s.objectNames = slices.Clone(objs)
	for _, o := range objs {
		re, err := regexp.Compile("^(?:" + o + ")$")
		if err != nil {
			return nil, fmt.Errorf("object metric pattern %q: %w", o, err)
		}
		s.objects = append(s.objects, re)
	}
	return s, nil
}

// objectMetric reports whether a selector may select object metrics.
func (s *scoper) objectMetric(n *parser.VectorSelector) bool {
	if len(s.objects) == 0 {
		return false
	}
	for _, m := range n.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			for _, re := range s.objects {
				if re.MatchString(m.Value) {
					return true
				}
			}
			return false
		}
	}
	return true // no metric name: it may select them
}

// partitionList is "node/pod/instance" (and the configured labels).
func (s *scoper) partitionList() string { return strings.Join(s.partition, "/") }

// decide is the scope of a rule's expression and its reason.
func (s *scoper) decide(e parser.Expr) (Scope, string) {
	s.memo = map[parser.Expr]exprState{}
	st := s.walk(e)
	switch st.kind {
	case kindConst:
		return ScopeCluster, "reads no series: every node would give the same result"
	case kindLocal:
		if st.why == "" {
			return ScopeNode, "no aggregation: each series stays on its node"
		}
		return ScopeNode, st.why
	}
	return ScopeCluster, st.why
}

// trustedNamed reports whether partition label l, named by a by() or
// on(), tells the node of every output series of s.
func (s *scoper) trustedNamed(st exprState, l string) bool {
	return s.isPart[l] && st.present(l) && !st.tainted[l]
}

// trustedKept reports whether partition label l, not named but left in
// place (without, ignoring, default matching), certainly tells the node
// of every output series of st: only the node label is on every series,
// other partition labels only when a by()/on() named them before.
func (s *scoper) trustedKept(st exprState, l string) bool {
	if !s.isPart[l] || st.tainted[l] || !st.present(l) {
		return false
	}
	return !st.open || l == nodeLabel
}

func (s *scoper) walk(e parser.Expr) exprState {
	if st, ok := s.memo[e]; ok {
		return st
	}
	st := s.walk1(e)
	s.memo[e] = st
	return st
}

func (s *scoper) walk1(e parser.Expr) exprState {
	switch n := e.(type) {
	case *parser.ParenExpr:
		return s.walk(n.Expr)
	case *parser.UnaryExpr:
		return s.walk(n.Expr)
	case *parser.StepInvariantExpr:
		return s.walk(n.Expr)
	case *parser.NumberLiteral, *parser.StringLiteral:
		return constState
	case *parser.VectorSelector:
		return s.selector(n)
	case *parser.MatrixSelector:
		return s.walk(n.VectorSelector)
	case *parser.SubqueryExpr:
		return s.walk(n.Expr)
	case *parser.AggregateExpr:
		return s.aggregate(n)
	case *parser.BinaryExpr:
		return s.binary(n)
	case *parser.Call:
		return s.call(n)
	}
	return clusterState("%T is not analysed", e)
}

func (s *scoper) selector(n *parser.VectorSelector) exprState {
	for _, m := range n.LabelMatchers {
		if m.Name == nodeLabel {
			return clusterState("selects on %q, which series carry only at the StoreAPI edge (external label)", nodeLabel)
		}
	}
	for _, rec := range slices.Sorted(maps.Keys(s.clusterRecords)) {
		if selects(n, rec) {
			return clusterState("reads %s, recorded by the cluster rule %s", rec, s.clusterRecords[rec])
		}
	}
	if selects(n, "ALERTS") || selects(n, "ALERTS_FOR_STATE") {
		for _, a := range slices.Sorted(maps.Keys(s.clusterAlerts)) {
			if selectsLabel(n, "alertname", a) {
				return clusterState("reads the ALERTS of the cluster rule %s", s.clusterAlerts[a])
			}
		}
	}
	st := exprState{kind: kindLocal, open: true, names: map[string]bool{}, tainted: map[string]bool{}}
	if s.objectMetric(n) {
		for _, l := range s.partition {
			st.tainted[l] = true
		}
	}
	return st
}

// selects reports whether a selector may select series named name.
func selects(n *parser.VectorSelector, name string) bool {
	return selectsLabel(n, model.MetricNameLabel, name)
}

// selectsLabel reports whether a selector may select series whose label
// l has value v.
func selectsLabel(n *parser.VectorSelector, l, v string) bool {
	for _, m := range n.LabelMatchers {
		if m.Name == l && !m.Matches(v) {
			return false
		}
	}
	return true
}

func (s *scoper) aggregate(n *parser.AggregateExpr) exprState {
	in := s.walk(n.Expr)
	if in.kind == kindCluster {
		return in
	}
	if n.Param != nil {
		if p := s.walk(n.Param); p.kind == kindCluster {
			return p
		}
	}
	if in.kind == kindConst {
		return constState
	}
	desc := strings.TrimSpace(n.ShortString())
	if len(n.Grouping) == 0 && !n.Without {
		desc = n.Op.String() + " over all series"
	}
	switch n.Op {
	case parser.LIMITK, parser.LIMIT_RATIO:
		// Which series they keep depends on all labels of the series,
		// and the node label differs between a node and Thanos Query.
		return clusterState("%s picks series by their label sets, which carry the node label only over Thanos Query", n.Op)
	}
	kept := ""
	if n.Without {
		for _, l := range s.partition {
			if !slices.Contains(n.Grouping, l) && s.trustedKept(in, l) {
				kept = l
				break
			}
		}
	} else {
		for _, l := range n.Grouping {
			if s.trustedNamed(in, l) {
				kept = l
				break
			}
		}
	}
	if kept == "" {
		if l := s.untrusted(in, n.Grouping, n.Without); l != "" {
			return clusterState("%s: its %q label does not tell the node (%s)", desc, l, untrustedWhy)
		}
		return clusterState("%s drops %s", desc, s.partitionList())
	}
	var out exprState
	switch {
	case n.Op == parser.TOPK || n.Op == parser.BOTTOMK:
		out = in.clone()
	case n.Without:
		out = in.remove(n.Grouping)
	default:
		out = in.keep(n.Grouping)
	}
	if n.Op == parser.COUNT_VALUES {
		if lit, ok := unparen(n.Param).(*parser.StringLiteral); ok {
			out = out.write(lit.Val)
		}
	}
	out.kind = kindLocal
	if out.why == "" {
		out.why = fmt.Sprintf("%s keeps %s", desc, kept)
		if n.Without && kept == nodeLabel && in.open {
			out.why += " (the node label, on every series over Thanos Query, stays)"
		}
	}
	return out
}

// untrustedWhy explains untrusted partition labels.
const untrustedWhy = "object metrics such as kube_* describe objects on every node; label_replace, count_values and group_left rewrite labels"

// untrusted returns a partition label that a grouping or matching keeps
// but that does not tell the node of st's series, or "".
func (s *scoper) untrusted(st exprState, ls []string, without bool) string {
	for _, l := range s.partition {
		if slices.Contains(ls, l) != without && st.present(l) && st.tainted[l] {
			return l
		}
	}
	return ""
}

func (s *scoper) binary(n *parser.BinaryExpr) exprState {
	l, r := s.walk(n.LHS), s.walk(n.RHS)
	switch {
	case l.kind == kindCluster:
		return l
	case r.kind == kindCluster:
		return r
	case l.kind == kindConst:
		return r
	case r.kind == kindConst:
		return l
	}
	vm := n.VectorMatching
	if vm == nil {
		vm = &parser.VectorMatching{Card: parser.CardOneToOne}
	}
	kept := ""
	if vm.On {
		for _, m := range vm.MatchingLabels {
			if s.trustedNamed(l, m) && s.trustedNamed(r, m) {
				kept = m
				break
			}
		}
	} else {
		for _, p := range s.partition {
			if !slices.Contains(vm.MatchingLabels, p) && s.trustedKept(l, p) && s.trustedKept(r, p) {
				kept = p
				break
			}
		}
	}
	if kept == "" {
		for _, st := range []exprState{l, r} {
			if u := s.untrusted(st, vm.MatchingLabels, !vm.On); u != "" {
				return clusterState("%s matches series of different nodes: its %q label does not tell the node (%s)", matchDesc(n.Op, vm), u, untrustedWhy)
			}
		}
		return clusterState("%s matches series of different nodes (the match keeps none of %s)", matchDesc(n.Op, vm), s.partitionList())
	}
	var out exprState
	switch {
	case n.Op == parser.LOR:
		out = merge(l, r)
	case n.Op.IsSetOperator():
		out = l.clone()
	case vm.Card == parser.CardOneToOne && vm.On:
		out = l.keep(vm.MatchingLabels)
	case vm.Card == parser.CardOneToOne:
		out = l.remove(vm.MatchingLabels)
	case vm.Card == parser.CardManyToOne:
		out = l.clone()
		for _, inc := range vm.Include {
			if !s.trustedNamed(r, inc) {
				out = out.write(inc)
			}
		}
	default: // one-to-many
		out = r.clone()
		for _, inc := range vm.Include {
			if !s.trustedNamed(l, inc) {
				out = out.write(inc)
			}
		}
	}
	out.kind = kindLocal
	if out.why == "" {
		if l.why != "" {
			out.why = l.why
		} else if r.why != "" {
			out.why = r.why
		}
	}
	return out
}

// matchDesc describes a binary operation's matching: "/ on (service)",
// "and ignoring (node)", "+".
func matchDesc(op parser.ItemType, vm *parser.VectorMatching) string {
	d := op.String()
	switch {
	case vm.On:
		d += " on (" + strings.Join(vm.MatchingLabels, ", ") + ")"
	case len(vm.MatchingLabels) > 0:
		d += " ignoring (" + strings.Join(vm.MatchingLabels, ", ") + ")"
	}
	return d
}

func (s *scoper) call(n *parser.Call) exprState {
	name := n.Func.Name
	args := make([]exprState, len(n.Args))
	for i, a := range n.Args {
		args[i] = s.walk(a)
	}
	switch name {
	case "absent", "absent_over_time":
		return clusterState("%s() fires on every node that lacks the series", name)
	case "info":
		return clusterState("info() joins series with info metrics that may sit on another node")
	}
	for _, a := range args {
		if a.kind == kindCluster {
			return a
		}
	}
	var v *exprState // the (single) vector or matrix argument
	for i := range args {
		if args[i].kind == kindLocal {
			v = &args[i]
			break
		}
	}
	if v == nil {
		return constState // time(), pi(), vector(1), scalar(vector(1))
	}
	switch name {
	case "scalar":
		return clusterState("scalar() of node series differs by node")
	case "label_replace", "label_join":
		dst := stringArg(n, 1)
		var srcs []string
		if name == "label_replace" {
			srcs = []string{stringArg(n, 3)}
		} else {
			for i := 3; i < len(n.Args); i++ {
				srcs = append(srcs, stringArg(n, i))
			}
		}
		if slices.Contains(srcs, nodeLabel) {
			return clusterState("%s reads %q, which series carry only at the StoreAPI edge (external label)", name, nodeLabel)
		}
		return v.write(dst)
	case "histogram_quantile":
		return v.remove([]string{"le"})
	case "histogram_quantiles":
		return v.remove([]string{"le"}).write(stringArg(n, 1))
	}
	return *v
}

func stringArg(n *parser.Call, i int) string {
	if i < len(n.Args) {
		if lit, ok := unparen(n.Args[i]).(*parser.StringLiteral); ok {
			return lit.Val
		}
	}
	return ""
}

func unparen(e parser.Expr) parser.Expr {
	for {
		switch n := e.(type) {
		case *parser.ParenExpr:
			e = n.Expr
		case *parser.StepInvariantExpr:
			e = n.Expr
		default:
			return e
		}
	}
}
