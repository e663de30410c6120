package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/internal/rulesapi"
)

const scopedRules = `groups:
- name: svc
  rules:
  - alert: PodHigh
    expr: sum by (pod) (x) > 0
  - alert: ServiceHigh
    expr: sum by (service) (x) > 0
  - record: service:x:avg
    expr: avg by (service) (x)
`

// The engine evaluates node rules and the partials of cluster rules,
// never a cluster rule itself: no alert from ServiceHigh, no
// service:x:avg series; the partials are in the store.
func TestScopeEngineEvaluatesNodeRulesAndPartials(t *testing.T) {
	st := newTestStore(t, "")
	f := writeFile(t, t.TempDir(), "svc.yaml", scopedRules)
	e, groups, snk := newEvalEngine(t, st, nil, f)
	require.Len(t, groups, 1)
	g := groups[0]
	var names []string
	for _, r := range g.Rules() {
		names = append(names, r.Name())
	}
	require.Len(t, names, 3, "PodHigh, the shared sum partial, the count partial: %v", names)
	assert.Equal(t, "PodHigh", names[0])
	assert.True(t, strings.HasPrefix(names[1], partialPrefix))
	assert.True(t, strings.HasPrefix(names[2], partialPrefix))

	now := time.Now().Add(-5 * time.Minute).Truncate(time.Minute)
	for i, pod := range []string{"a-1", "a-2"} {
		appendSample(t, st, labels.FromStrings("__name__", "x", "service", "a", "pod", pod), now.Add(-15*time.Second), float64(i+1), "")
	}
	snk.setNow(now)
	for i, d := range []time.Duration{-10 * time.Second, -5 * time.Second, 0} {
		evalAsRun(g, i, now.Add(d)) // the second restores the for state: ALERTS are written after it
	}
	for _, s := range snk.take() {
		for _, a := range s.alerts {
			assert.Equal(t, "PodHigh", a.Labels.Get("alertname"), "a cluster alert fired on the node: %v", a.Labels)
		}
	}
	instant := func(q string) promql.Vector {
		qq, err := e.engine.NewInstantQuery(t.Context(), st.Queryable(), nil, q, now)
		require.NoError(t, err)
		defer qq.Close()
		r := qq.Exec(t.Context())
		require.NoError(t, r.Err)
		return r.Value.(promql.Vector)
	}
	for _, r := range g.Rules() {
		require.NoError(t, r.LastError(), r.Name())
	}
	assert.Empty(t, instant(`service:x:avg`))
	assert.Len(t, instant(`ALERTS{alertname="PodHigh"}`), 2)
	assert.Empty(t, instant(`ALERTS{alertname="ServiceHigh"}`))
	sum := instant(names[1])
	require.Len(t, sum, 1)
	assert.Equal(t, 3.0, sum[0].F)
	assert.Equal(t, "a", sum[0].Metric.Get("service"))
	assert.Empty(t, sum[0].Metric.Get(nodeLabel), "the node label comes from the StoreAPI edge, not the partial")
	count := instant(names[2])
	require.Len(t, count, 1)
	assert.Equal(t, 2.0, count[0].F)
}

// RuleGroups (/api/v1/rules, status page) lists every rule with its
// scope: node rules and partials as they run, cluster rules in place.
func TestScopeEngineRuleGroups(t *testing.T) {
	st := newTestStore(t, "")
	f := writeFile(t, t.TempDir(), "svc.yaml", scopedRules)
	cfg := testConfig()
	cfg.RuleFiles = []string{f}
	cfg.ReloadInterval = 0
	e := startEngine(t, st, cfg, Settings{}, nil)
	s := e.Status()
	require.True(t, s.LastReloadSuccess, s.LastError)
	assert.Equal(t, 3, s.Rules, "the rules of the files, partials not counted")

	gs := e.RuleGroups()
	require.Len(t, gs, 1)
	rs := gs[0].Rules
	require.Len(t, rs, 5)
	type row struct{ name, typ, scope, partialOf string }
	var got []row
	for _, r := range rs {
		name := r.Name
		if strings.HasPrefix(name, partialPrefix) {
			name = "partial"
		}
		got = append(got, row{name, r.Type, r.Scope, r.PartialOf})
	}
	assert.Equal(t, []row{
		{"PodHigh", "alerting", "node", ""},
		{"ServiceHigh", "alerting", "cluster", ""},
		{"partial", "recording", "node", "ServiceHigh"},
		{"service:x:avg", "recording", "cluster", ""},
		{"partial", "recording", "node", "service:x:avg"}, // count; its sum is ServiceHigh's, listed once
	}, got)
	assert.Equal(t, "sum by (pod) keeps pod", rs[0].ScopeReason)
	assert.Contains(t, rs[1].ScopeReason, "sum by (service) drops node/pod/instance; finished by the ruler")
	assert.Equal(t, "inactive", rs[1].State)
	assert.Equal(t, "unknown", rs[1].Health)
	assert.Contains(t, rs[2].ScopeReason, `partial of the cluster rule "ServiceHigh"`)
	assert.Equal(t, rulesapi.ScopeNode, rs[4].Scope)
}

// scope.cluster_rules: node evaluates cluster rules on the node as they
// are (single-node clusters, no ruler), still shown as cluster rules.
func TestScopeEngineClusterRulesOnNode(t *testing.T) {
	st := newTestStore(t, "")
	f := writeFile(t, t.TempDir(), "svc.yaml", scopedRules)
	cfg := testConfig()
	cfg.RuleFiles = []string{f}
	cfg.ReloadInterval = 0
	cfg.Scope.ClusterRules = "node"
	e := startEngine(t, st, cfg, Settings{}, nil)
	gs := e.RuleGroups()
	require.Len(t, gs, 1)
	rs := gs[0].Rules
	require.Len(t, rs, 3)
	assert.Equal(t, "ServiceHigh", rs[1].Name)
	assert.Equal(t, rulesapi.ScopeCluster, rs[1].Scope)
	assert.Contains(t, rs[1].ScopeReason, "evaluated on this node anyway (scope.cluster_rules: node)")

	bad := testConfig()
	bad.Scope.ClusterRules = "both"
	require.ErrorContains(t, bad.Check(), `scope.cluster_rules: must be "ruler" or "node", got "both"`)
	bad = testConfig()
	bad.Scope.PartitionLabels = []string{"__name__"}
	bad.Scope.ObjectMetrics = []string{"("}
	err := bad.Check()
	require.ErrorContains(t, err, `scope.partition_labels[0]: invalid label name "__name__"`)
	require.ErrorContains(t, err, `scope.object_metrics[0]:`)
}
