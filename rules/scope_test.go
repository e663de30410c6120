package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scopeCorpus: expressions of every shape with the scope each must get
// and a part of the reason.
var scopeCorpus = []struct {
	expr   string
	scope  Scope
	reason string
}{
	// No aggregation.
	{`rate(http_requests_total{status=~"5.."}[5m]) > 0.01`, ScopeNode, "no aggregation"},
	{`up == 0`, ScopeNode, "no aggregation"},
	{`rate(a[5m]) / rate(b[5m])`, ScopeNode, "no aggregation"},
	{`a / ignoring (status) b`, ScopeNode, "no aggregation"},
	{`a and b or c unless d`, ScopeNode, "no aggregation"},
	{`max_over_time(rate(a[5m])[30m:1m]) > 3`, ScopeNode, "no aggregation"},
	{`histogram_quantile(0.9, rate(a_bucket[5m]))`, ScopeNode, "no aggregation"},
	{`label_replace(up, "host", "$1", "instance", "(.*):.*")`, ScopeNode, "no aggregation"},
	{`clamp(a, 0, 1) * on (pod, instance) group_left (version) b`, ScopeNode, "no aggregation"},
	{`kube_pod_container_status_running == 0`, ScopeNode, "no aggregation"},
	// Aggregations that keep a partition label.
	{`sum by (pod) (rate(a[5m]))`, ScopeNode, "sum by (pod) keeps pod"},
	{`sum by (namespace, pod, container) (rate(a[5m])) * 100 > 80`, ScopeNode, "keeps pod"},
	{`max by (instance) (a)`, ScopeNode, "keeps instance"},
	{`count by (node) (a)`, ScopeNode, "keeps node"},
	{`sum without (cpu, mode) (rate(node_cpu_seconds_total[5m]))`, ScopeNode, "keeps node"},
	{`sum without (instance, pod) (a)`, ScopeNode, "keeps node"},
	{`topk by (pod) (1, a)`, ScopeNode, "keeps pod"},
	{`quantile by (instance) (0.9, a)`, ScopeNode, "keeps instance"},
	{`sum by (pod) (a) / sum by (pod) (b)`, ScopeNode, "keeps pod"},
	{`sum by (pod) (a) / on (pod) group_left sum by (pod, service) (b)`, ScopeNode, "keeps pod"},
	{`histogram_quantile(0.99, sum by (le, pod) (rate(a_bucket[5m])))`, ScopeNode, "keeps pod"},
	{`sum without (cpu) (sum by (instance, cpu) (a))`, ScopeNode, "keeps instance"},
	{`max_over_time(sum by (pod) (rate(a[5m]))[10m:1m])`, ScopeNode, "keeps pod"},
	{`sum by (pod) (a) > scalar(vector(3))`, ScopeNode, "keeps pod"},
	// Aggregations that drop them.
	{`sum by (service) (rate(errors[5m])) / sum by (service) (rate(requests[5m])) > 0.05`, ScopeCluster, "sum by (service) drops node/pod/instance"},
	{`sum(rate(a[5m]))`, ScopeCluster, "sum over all series drops"},
	{`count(up)`, ScopeCluster, "count over all series drops"},
	{`sum without (node) (a)`, ScopeCluster, "sum without (node) drops"},
	{`sum without (node, pod, instance) (a)`, ScopeCluster, "drops"},
	{`avg by (service) (a)`, ScopeCluster, "avg by (service) drops"},
	{`topk(5, a)`, ScopeCluster, "topk over all series drops"},
	{`bottomk by (service) (1, a)`, ScopeCluster, "bottomk by (service) drops"},
	{`quantile(0.9, a)`, ScopeCluster, "drops"},
	{`count_values("v", a)`, ScopeCluster, "drops"},
	{`group by (service) (a)`, ScopeCluster, "drops"},
	{`stddev by (job) (a)`, ScopeCluster, "drops"},
	{`sum by (service) (sum by (service, pod) (a))`, ScopeCluster, "sum by (service) drops"},
	{`sum by (pod) (sum by (service) (a))`, ScopeCluster, "sum by (service) drops"},
	{`sum without (pod) (sum by (pod, service) (a))`, ScopeCluster, "sum without (pod) drops"},
	{`limitk by (pod) (2, a)`, ScopeCluster, "limitk picks series by their label sets"},
	{`limit_ratio by (pod) (0.5, a)`, ScopeCluster, "limit_ratio picks series"},
	// Absent, scalar, vector-only.
	{`absent(up{job="apiserver"})`, ScopeCluster, "absent() fires on every node"},
	{`absent_over_time(up{job="x"}[5m])`, ScopeCluster, "absent_over_time() fires"},
	{`vector(1)`, ScopeCluster, "reads no series"},
	{`vector(1) > 2`, ScopeCluster, "reads no series"},
	{`vector(time()) > 0`, ScopeCluster, "reads no series"},
	{`scalar(up) > bool 1`, ScopeCluster, "scalar() of node series differs by node"},
	{`a > scalar(b)`, ScopeCluster, "scalar() of node series"},
	// Binary operations.
	{`a / on (service) group_left b`, ScopeCluster, "/ on (service) matches series of different nodes"},
	{`a / on () group_left sum(b)`, ScopeCluster, "sum over all series drops"},
	{`a * on () group_left b`, ScopeCluster, "* on () matches"},
	{`a / ignoring (node) b`, ScopeCluster, "/ ignoring (node) matches"},
	{`sum by (pod) (a) / on (service) group_left sum by (service, pod) (b)`, ScopeCluster, "on (service) matches"},
	{`a or on (service) b`, ScopeCluster, "or on (service) matches"},
	{`sum by (pod) (a) and ignoring (pod) sum by (pod) (b)`, ScopeCluster, "and ignoring (pod) matches"},
	// Labels that do not tell the node.
	{`sum by (pod) (kube_pod_info)`, ScopeCluster, `its "pod" label does not tell the node`},
	{`a * on (namespace, pod) group_left (node) kube_pod_info`, ScopeCluster, `its "pod" label does not tell the node`},
	{`sum by (pod) (label_replace(a, "pod", "$1", "x", "(.*)"))`, ScopeCluster, `its "pod" label does not tell the node`},
	{`sum by (node) (label_replace(a, "node", "$1", "instance", "(.*)"))`, ScopeCluster, `its "node" label does not tell the node`},
	{`a{node="n1"}`, ScopeCluster, `selects on "node"`},
	{`label_join(a, "x", ",", "node", "pod")`, ScopeCluster, `label_join reads "node"`},
	{`sum without (instance) (label_replace(a, "node", "", "", ""))`, ScopeCluster, `its "node" label does not tell the node`},
	{`info(a)`, ScopeCluster, "info() joins"},
	// The same with a node-keeping outer part.
	{`count by (pod) (absent(a))`, ScopeCluster, "absent() fires"},
	{`rate(a[5m]) > on (pod) group_left max by (pod) (kube_pod_labels)`, ScopeCluster, `"pod" label does not tell the node`},
}

func TestScopeCorpus(t *testing.T) {
	p := parser.NewParser(parser.Options{EnableExperimentalFunctions: true})
	sc, err := newScoper(ScopeOptions{})
	require.NoError(t, err)
	for _, c := range scopeCorpus {
		t.Run(c.expr, func(t *testing.T) {
			expr, err := p.ParseExpr(c.expr)
			require.NoError(t, err)
			scope, why := sc.decide(expr)
			assert.Equal(t, c.scope, scope, why)
			assert.Contains(t, why, c.reason)
		})
	}
}

func TestScopePartitionLabelsAndObjectMetrics(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	expr, err := p.ParseExpr(`sum by (hostname) (rate(a[5m]))`)
	require.NoError(t, err)
	sc, err := newScoper(ScopeOptions{})
	require.NoError(t, err)
	s, why := sc.decide(expr)
	assert.Equal(t, ScopeCluster, s, why)
	sc, err = newScoper(ScopeOptions{PartitionLabels: []string{"hostname"}})
	require.NoError(t, err)
	s, why = sc.decide(expr)
	assert.Equal(t, ScopeNode, s, why)
	assert.Contains(t, why, "keeps hostname")

	expr, err = p.ParseExpr(`sum by (pod) (kube_pod_info)`)
	require.NoError(t, err)
	sc, err = newScoper(ScopeOptions{ObjectMetrics: []string{}}) // none
	require.NoError(t, err)
	s, why = sc.decide(expr)
	assert.Equal(t, ScopeNode, s, why)
	_, err = newScoper(ScopeOptions{ObjectMetrics: []string{"("}})
	require.Error(t, err)
}

// The shipped samples: each rule's scope, by group and rule name.
func TestScopeOfShippedRules(t *testing.T) {
	type want struct {
		group, rule string
		scope       Scope
		pushed      bool
	}
	cases := map[string][]want{
		filepath.Join("..", "testdata", "rules-istio-tools-stability-prometheusrule.yaml"): {
			{"./basic.rules", "IngressTrafficMissing", ScopeCluster, false},
			{"./basic.rules", "IstioMetricsMissing", ScopeCluster, false},
			{"./workload.rules", "HTTP5xxRateHigh", ScopeCluster, true},
			{"./workload.rules", "WorkloadLatencyP99High", ScopeCluster, true},
			{"./workload.rules", "IngressLatencyP99High", ScopeCluster, true},
			{"./infra.rules", "ProxyContainerCPUUsageHigh", ScopeNode, false},
			{"./infra.rules", "ProxyContainerMemoryUsageHigh", ScopeNode, false},
			{"./infra.rules", "IngressMemoryUsageIncreaseRateHigh", ScopeCluster, true},
			{"./infra.rules", "IstiodContainerCPUUsageHigh", ScopeNode, false},
			{"./infra.rules", "IstiodMemoryUsageHigh", ScopeNode, false},
			{"./infra.rules", "IstiodMemoryUsageIncreaseRateHigh", ScopeCluster, true},
			{"./controlplane.rules", "IstiodxdsPushErrorsHigh", ScopeCluster, true},
			{"./controlplane.rules", "IstiodxdsRejectHigh", ScopeCluster, true},
			{"./controlplane.rules", "IstiodContainerNotReady", ScopeNode, false},
			{"./controlplane.rules", "IstiodUnavailableReplica", ScopeNode, false},
			{"./controlplane.rules", "Ingress200RateLow", ScopeCluster, true},
			{"istio.recording-rules", "workload:istio_requests_total", ScopeNode, false},
			{"istio.recording-rules", "workload:istio_request_duration_milliseconds_count", ScopeNode, false},
			{"istio.recording-rules", "workload:istio_request_duration_milliseconds_sum", ScopeNode, false},
			{"istio.recording-rules", "workload:istio_request_duration_milliseconds_bucket", ScopeNode, false},
			{"k8s.rules", "namespace:container_cpu_usage_seconds_total:sum_rate", ScopeCluster, true},
			// A join with kube-state-metrics' kube_pod_info, whose pod
			// label says nothing about where the series is stored.
			{"k8s.rules", "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate", ScopeCluster, false},
			{"k8s.rules", "node_namespace_pod_container:container_memory_working_set_bytes", ScopeCluster, false},
			{"k8s.rules", "mixin_pod_workload", ScopeCluster, true},
		},
		filepath.Join("testdata", "deploy", "high-error-rate.rules.yaml"): {
			{"weft.high-error-rate", "HighErrorRate", ScopeNode, false},
			{"weft.high-error-rate", "HighErrorRateIstio", ScopeNode, false},
		},
	}
	p := parser.NewParser(parser.Options{})
	for f, wants := range cases {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		rgs, errs := loadRuleFile(f, b, p, nil)
		require.Empty(t, errs)
		plan, err := PlanRules([]string{f}, map[string]*rulefmt.RuleGroups{f: rgs}, ScopeOptions{}, p)
		require.NoError(t, err)
		got := map[string]RulePlan{}
		for _, gp := range plan.Groups {
			for _, rp := range gp.Rules {
				got[gp.Group.Name+"/"+ruleName(rp.Rule)] = rp
			}
		}
		for _, w := range wants {
			rp, ok := got[w.group+"/"+w.rule]
			require.True(t, ok, "%s: %s/%s not found", f, w.group, w.rule)
			assert.Equal(t, w.scope, rp.Scope, "%s/%s: %s", w.group, w.rule, rp.Reason)
			assert.Equal(t, w.pushed, len(rp.Partials) > 0, "%s/%s: %v %v", w.group, w.rule, rp.Partials, rp.Whole)
		}
	}

	// kube-prometheus node-exporter rules: per node (node_exporter runs
	// on every node), except none.
	f := filepath.Join("..", "testdata", "rules-kube-prometheus-node-exporter-prometheusrule.yaml")
	b, err := os.ReadFile(f)
	require.NoError(t, err)
	rgs, errs := loadRuleFile(f, b, p, nil)
	require.Empty(t, errs)
	plan, err := PlanRules([]string{f}, map[string]*rulefmt.RuleGroups{f: rgs}, ScopeOptions{}, p)
	require.NoError(t, err)
	n := 0
	for _, gp := range plan.Groups {
		for _, rp := range gp.Rules {
			n++
			assert.Equal(t, ScopeNode, rp.Scope, "%s: %s", ruleName(rp.Rule), rp.Reason)
		}
	}
	assert.Equal(t, 29, n)
}

func planText(t *testing.T, files map[string]string, opts ScopeOptions) (*Plan, error) {
	t.Helper()
	p := parser.NewParser(parser.Options{})
	set := map[string]*rulefmt.RuleGroups{}
	var names []string
	for name, text := range files {
		rgs, errs := loadRuleFile(name, []byte(text), p, nil)
		if len(errs) > 0 {
			return nil, fmt.Errorf("%v", errs)
		}
		set[name] = rgs
		names = append(names, name)
	}
	return PlanRules(names, set, opts, p)
}

func TestScopeForcedByAnnotationsAndLabels(t *testing.T) {
	plan, err := planText(t, map[string]string{"f.yaml": `groups:
- name: forced-cluster
  labels:
    weft.io/scope: cluster
    team: a
  rules:
  - record: r
    expr: rate(a[5m])
  - alert: NodeAnyway
    expr: sum(a) > 1
    annotations:
      weft.io/scope: node
- name: free
  rules:
  - alert: Forced
    expr: sum(a) > 1
    annotations:
      weft.io/scope: node
  - alert: Free
    expr: sum(a) > 1
`}, ScopeOptions{})
	require.NoError(t, err)
	g := plan.Groups[0]
	assert.Equal(t, map[string]string{"team": "a"}, g.Group.Labels, "the scope label is not a series label")
	assert.Equal(t, ScopeCluster, g.Rules[0].Scope)
	assert.Contains(t, g.Rules[0].Reason, "forced by the group's weft.io/scope (analysis: node")
	assert.Empty(t, g.Rules[0].Partials, "a forced node-local expression goes to the ruler whole")
	assert.Equal(t, ScopeNode, g.Rules[1].Scope, "the rule's annotation wins over its group's label")
	assert.Contains(t, g.Rules[1].Reason, "forced by the rule's annotation")
	assert.Equal(t, ScopeNode, plan.Groups[1].Rules[0].Scope)
	assert.Equal(t, ScopeCluster, plan.Groups[1].Rules[1].Scope)

	// The node runs group labels on its node rules, not on partials.
	ng := plan.NodeGroups(false)["f.yaml"].Groups
	require.Len(t, ng, 2)
	assert.Nil(t, ng[0].Labels)
	require.Len(t, ng[0].Rules, 1)
	assert.Equal(t, "NodeAnyway", ng[0].Rules[0].Alert)
	assert.Equal(t, map[string]string{"team": "a"}, ng[0].Rules[0].Labels)
	require.Len(t, ng[1].Rules, 2)
	assert.Equal(t, "Forced", ng[1].Rules[0].Alert)
	assert.True(t, strings.HasPrefix(ng[1].Rules[1].Record, partialPrefix))
	// scope.cluster_rules: node runs everything, no partials.
	all := plan.NodeGroups(true)["f.yaml"].Groups
	assert.Len(t, all[0].Rules, 2)
	assert.Len(t, all[1].Rules, 2)
	assert.Equal(t, "Free", all[1].Rules[1].Alert)
}

func TestScopeInvalidValuesAreLoadErrors(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	_, errs := loadRuleFile("bad.yaml", []byte(`groups:
- name: g
  labels:
    weft.io/scope: everywhere
  rules:
  - alert: A
    expr: up == 0
    annotations:
      weft.io/scope: Node
`), p, nil)
	require.Len(t, errs, 2)
	assert.ErrorContains(t, errs[0], `bad.yaml: group "g": label weft.io/scope: "everywhere": want "node" or "cluster"`)
	assert.ErrorContains(t, errs[1], `bad.yaml: group "g", rule 1, "A": annotation weft.io/scope: "Node": want "node" or "cluster"`)

	// A PrometheusRule: metadata.annotations, the default of its groups.
	manifest := `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: x
  annotations:
    weft.io/scope: %s
spec:
  groups:
  - name: g
    rules:
    - alert: A
      expr: up == 0
  - name: h
    labels:
      weft.io/scope: node
    rules:
    - alert: B
      expr: up == 0
`
	_, errs = loadRuleFile("m.yaml", []byte(fmt.Sprintf(manifest, "nodes")), p, nil)
	require.Len(t, errs, 1)
	assert.ErrorContains(t, errs[0], `m.yaml: 1: metadata.annotations weft.io/scope: "nodes"`)
	rgs, errs := loadRuleFile("m.yaml", []byte(fmt.Sprintf(manifest, "cluster")), p, nil)
	require.Empty(t, errs)
	plan, err := PlanRules([]string{"m.yaml"}, map[string]*rulefmt.RuleGroups{"m.yaml": rgs}, ScopeOptions{}, p)
	require.NoError(t, err)
	assert.Equal(t, ScopeCluster, plan.Groups[0].Rules[0].Scope, plan.Groups[0].Rules[0].Reason)
	assert.Equal(t, ScopeNode, plan.Groups[1].Rules[0].Scope, "the group's label wins over the manifest's")

	// Legacy names: the key is weft's, not a series label.
	_, errs = loadRuleFileNames("l.yaml", []byte("groups:\n- name: g\n  labels:\n    weft.io/scope: node\n  rules:\n  - alert: A\n    expr: up == 0\n    annotations:\n      weft.io/scope: node\n"), p, 1 /* legacy */, nil)
	assert.Empty(t, errs)
}

// A rule that reads what a cluster recording rule records is a cluster
// rule too (only the ruler has those series), across groups and files.
func TestScopeFollowsClusterRecordings(t *testing.T) {
	plan, err := planText(t, map[string]string{
		"a.yaml": `groups:
- name: rec
  rules:
  - record: service:errors:rate5m
    expr: sum by (service) (rate(errors[5m]))
  - record: pod:errors:rate5m
    expr: sum by (pod) (rate(errors[5m]))
`,
		"b.yaml": `groups:
- name: alerts
  rules:
  - alert: ServiceErrors
    expr: service:errors:rate5m > 1
  - alert: PodErrors
    expr: pod:errors:rate5m > 1
  - record: twice
    expr: service:errors:rate5m * 2
  - alert: Twice
    expr: twice > 1
  - alert: ServiceErrorsLong
    expr: ALERTS{alertname="ServiceErrors", alertstate="firing"}
  - alert: PodErrorsLong
    expr: ALERTS{alertname="PodErrors"}
`}, ScopeOptions{})
	require.NoError(t, err)
	byName := map[string]RulePlan{}
	for _, gp := range plan.Groups {
		for _, rp := range gp.Rules {
			byName[ruleName(rp.Rule)] = rp
		}
	}
	assert.Equal(t, ScopeCluster, byName["service:errors:rate5m"].Scope)
	assert.Equal(t, ScopeNode, byName["pod:errors:rate5m"].Scope)
	assert.Equal(t, ScopeCluster, byName["ServiceErrors"].Scope)
	assert.Contains(t, byName["ServiceErrors"].Reason, `reads service:errors:rate5m, recorded by the cluster rule "service:errors:rate5m" (group "rec")`)
	assert.Equal(t, ScopeNode, byName["PodErrors"].Scope)
	assert.Equal(t, ScopeCluster, byName["twice"].Scope)
	assert.Equal(t, ScopeCluster, byName["Twice"].Scope)
	assert.Empty(t, byName["Twice"].Partials)
	assert.Equal(t, "twice > 1", byName["Twice"].ClusterExpr)
	assert.Equal(t, ScopeCluster, byName["ServiceErrorsLong"].Scope)
	assert.Contains(t, byName["ServiceErrorsLong"].Reason, `reads the ALERTS of the cluster rule "ServiceErrors" (group "alerts")`)
	assert.Equal(t, ScopeNode, byName["PodErrorsLong"].Scope, byName["PodErrorsLong"].Reason)
}
