package rules

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// splitCorpus are cluster rules of every shape the split handles (pushed
// down whole, in part, or not at all). Each is checked by
// TestSplitDifferential: partials evaluated on each simulated node, the
// cluster expression over the union of the partials (labelled with their
// node, as Thanos Query serves them) must equal the original expression
// over all nodes' data.
var splitCorpus = []struct {
	expr   string
	pushed bool // at least one partial
}{
	// The example: a ratio of two pushable sums.
	{`sum by (service) (rate(http_requests_total{status="500"}[5m])) / sum by (service) (rate(http_requests_total[5m])) > 0.01`, true},
	{`sum(rate(http_requests_total[5m]))`, true},
	{`sum without (node, pod, instance, status) (rate(http_requests_total[5m]))`, true},
	{`count by (service) (memory_bytes)`, true},
	{`min by (service) (memory_bytes)`, true},
	{`max(memory_bytes)`, true},
	{`group by (service) (memory_bytes)`, true},
	{`avg by (service) (memory_bytes)`, true},
	{`avg without (node, pod, instance) (memory_bytes)`, true},
	{`2 / avg(memory_bytes)`, true},
	{`-sum(memory_bytes)`, true},
	{`topk(3, memory_bytes)`, true},
	{`bottomk by (service) (1, memory_bytes)`, true},
	{`topk(2, sum by (service, pod) (rate(http_requests_total[5m])))`, true},
	{`histogram_quantile(0.9, sum by (le, service) (rate(http_request_duration_seconds_bucket[5m])))`, true},
	{`sum(queue_depth) > 50`, true},
	{`sum by (service) (sum by (service, pod) (rate(http_requests_total[5m])))`, true},
	{`max(sum by (service) (rate(http_requests_total[5m])))`, true},
	{`count(count by (service) (memory_bytes))`, true},
	{`memory_bytes / on () group_left () sum(memory_bytes)`, true},
	{`sum by (service) (rate(http_requests_total[5m])) and on (service) count by (service) (memory_bytes) > 2`, true},
	{`sum by (service) (rate(http_requests_total[5m])) > bool 1`, true},
	{`label_replace(sum by (service) (memory_bytes), "svc", "$1", "service", "(.*)")`, true},
	{`scalar(sum(memory_bytes))`, true},
	{`absent(up{job="x"})`, false},
	{`absent(up{job="nothing"})`, false},
	{`quantile by (service) (0.5, memory_bytes)`, false},
	{`stddev(memory_bytes)`, false},
	{`count_values("v", round(memory_bytes / 1000))`, false},
	{`max_over_time(sum by (service) (rate(http_requests_total[5m]))[10m:1m])`, false},
	{`sum by (service) (label_replace(memory_bytes, "node", "fake", "", ""))`, true},
	{`sum by (service, node) (label_replace(memory_bytes, "node", "fake", "", ""))`, false},
	{`sum(rate(http_requests_total{node="n1"}[5m]))`, false},
	{`vector(1)`, false},
}

// simNodes are the simulated nodes' names: the node label the union
// (Thanos Query) adds to each node's series.
var simNodes = []string{"n1", "n2", "n3"}

const (
	simStep  = 10 * time.Second
	simSpan  = 40 * time.Minute
	evalFrom = 6 * time.Minute
	evalStep = 30 * time.Second
)

var simBase = time.Unix(1_700_000_000, 0).UTC()

// simSample is one sample of a simulated series.
type simSample struct {
	ls labels.Labels
	v  float64
}

// simSeries are one node's series (without a node label) at offset d.
func simSeries(node int, d time.Duration) []simSample {
	type sample = simSample
	var out []sample
	steps := float64(d / simStep)
	mins := d.Minutes()
	services := []string{"a", "b", "c"}
	for si, svc := range services {
		for p := range 2 {
			pod := fmt.Sprintf("%s-%d-%d", svc, node, p)
			if node == 2 && svc == "c" && p == 1 && (mins < 10 || mins > 22) {
				continue // a pod that comes and goes
			}
			inst := fmt.Sprintf("10.0.%d.%d:8080", node, si*2+p)
			seed := float64(node*7+si*3+p) + 1
			// Requests: a different rate per pod; errors in bursts that
			// differ per node (no node alone shows the service's rate).
			ok := steps * (2 + seed*0.731)
			errRate := 0.0
			if mins > 12+float64(node)*4 && mins < 20+float64(node)*4 {
				errRate = 0.3 + seed*0.0137
			}
			errs := 0.0
			for x := 0.0; x < steps; x++ {
				m := x * simStep.Minutes()
				if m > 12+float64(node)*4 && m < 20+float64(node)*4 {
					errs += errRate
				}
			}
			base := labels.FromStrings("job", "app", "service", svc, "pod", pod, "instance", inst)
			with := func(name string, kv ...string) labels.Labels {
				b := labels.NewBuilder(base)
				b.Set(model.MetricNameLabel, name)
				for i := 0; i+1 < len(kv); i += 2 {
					b.Set(kv[i], kv[i+1])
				}
				return b.Labels()
			}
			out = append(out,
				sample{with("http_requests_total", "status", "200"), ok},
				sample{with("http_requests_total", "status", "500"), errs},
				sample{with("memory_bytes"), 1000*seed + 333*math.Sin(mins/3+seed) + float64(node)*0.01},
			)
			// A classic histogram: cumulative buckets.
			cum := 0.0
			for bi, le := range []string{"0.1", "0.5", "1", "+Inf"} {
				cum += steps * (0.5 + seed*0.1*float64(bi+1) + 0.2*math.Sin(mins/5+float64(bi)))
				out = append(out, sample{with("http_request_duration_seconds_bucket", "le", le), math.Floor(cum)})
			}
		}
	}
	// The same label set on two nodes: only the node label tells them apart.
	if node < 2 {
		out = append(out, sample{labels.FromStrings(model.MetricNameLabel, "queue_depth", "service", "a"), 20 + 15*math.Sin(mins/4+float64(node)) + float64(node)})
	}
	// Job x is scraped on node n2 only, and not between minutes 25 and 32.
	if node == 1 && (mins < 25 || mins > 32) {
		out = append(out, sample{labels.FromStrings(model.MetricNameLabel, "up", "job", "x", "instance", "10.0.1.99:9100"), 1})
	}
	return out
}

func appendAll(t *testing.T, st storage.Storage, samples func(a storage.Appender)) {
	t.Helper()
	a := st.Appender(t.Context())
	samples(a)
	require.NoError(t, a.Commit())
}

func withNode(ls labels.Labels, node string) labels.Labels {
	b := labels.NewBuilder(ls)
	b.Set(nodeLabel, node)
	return b.Labels()
}

func instant(t *testing.T, eng *promql.Engine, st storage.Queryable, expr string, ts time.Time) promql.Vector {
	t.Helper()
	q, err := eng.NewInstantQuery(context.Background(), st, nil, expr, ts)
	require.NoError(t, err, expr)
	defer q.Close()
	res := q.Exec(context.Background())
	require.NoError(t, res.Err, expr)
	switch v := res.Value.(type) {
	case promql.Vector:
		return v
	case promql.Scalar:
		return promql.Vector{{T: v.T, F: v.V}}
	}
	t.Fatalf("%s: result %T", expr, res.Value)
	return nil
}

// sameFloat compares within 1e-9 relative (NaN equals NaN).
func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// vectorMap keys a result by its labels without the metric name (alerts
// drop it and recording rules replace it).
func vectorMap(v promql.Vector) map[string]float64 {
	m := make(map[string]float64, len(v))
	for _, s := range v {
		m[labels.NewBuilder(s.Metric).Del(model.MetricNameLabel).Labels().String()] = s.F
	}
	return m
}

// TestSplitDifferential simulates three nodes over 40 minutes. Each
// node's TSDB holds its own series (no node label); the union (what
// Thanos Query answers from) holds every node's series with its node
// label and the partials each node recorded, labelled the same way.
// Every 30 s, each node evaluates its partial rules (the node groups of
// the plan, as the engine runs them, staleness markers included), and
// for every cluster rule the cluster expression over the union must
// equal the original expression over the union's raw series.
func TestSplitDifferential(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	var b strings.Builder
	b.WriteString("groups:\n- name: corpus\n  rules:\n")
	for i, c := range splitCorpus {
		fmt.Fprintf(&b, "  - record: corpus_%d\n    expr: %q\n", i, c.expr)
	}
	rgs, errs := loadRuleFile("corpus.yaml", []byte(b.String()), p, nil)
	require.Empty(t, errs)
	plan, err := PlanRules([]string{"corpus.yaml"}, map[string]*rulefmt.RuleGroups{"corpus.yaml": rgs}, ScopeOptions{}, p)
	require.NoError(t, err)
	require.Len(t, plan.Groups, 1)
	for i, rp := range plan.Groups[0].Rules {
		require.Equal(t, ScopeCluster, rp.Scope, "%s: %s", splitCorpus[i].expr, rp.Reason)
		require.Equal(t, splitCorpus[i].pushed, len(rp.Partials) > 0, "%s: pushed down %v, whole: %v", splitCorpus[i].expr, rp.Partials, rp.Whole)
	}
	nodeGroups := plan.NodeGroups(false)["corpus.yaml"].Groups
	require.Len(t, nodeGroups, 1)
	partials := nodeGroups[0].Rules
	for _, r := range partials {
		require.True(t, strings.HasPrefix(r.Record, partialPrefix), "the node runs partials only, got %q", r.Record)
	}

	compared := runSplitDifferential(t, p, plan, simSeries)
	for i, c := range splitCorpus {
		require.Positive(t, compared[ruleKey("corpus", i)], "%s never gave a result: the comparison would prove nothing", c.expr)
	}
}

func ruleKey(group string, i int) string { return fmt.Sprintf("%s/%d", group, i) }

// runSplitDifferential simulates the nodes over simSpan with gen's series
// and compares, every evalStep, each cluster rule of plan (and, for an
// alert on a threshold, its value without the threshold) split and whole.
// It returns the number of samples compared per rule (group/index).
func runSplitDifferential(t *testing.T, p parser.Parser, plan *Plan, gen func(node int, d time.Duration) []simSample) map[string]int {
	t.Helper()
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute, Parser: p})
	union := teststorage.New(t)
	nodes := make([]storage.Storage, len(simNodes))
	for i := range simNodes {
		nodes[i] = teststorage.New(t)
	}
	for d := time.Duration(0); d <= simSpan; d += simStep {
		ts := simBase.Add(d).UnixMilli()
		for i, n := range simNodes {
			ss := gen(i, d)
			appendAll(t, nodes[i], func(a storage.Appender) {
				for _, s := range ss {
					_, err := a.Append(0, s.ls, ts, s.v)
					require.NoError(t, err)
				}
			})
			appendAll(t, union, func(a storage.Appender) {
				for _, s := range ss {
					_, err := a.Append(0, withNode(s.ls, n), ts, s.v)
					require.NoError(t, err)
				}
			})
		}
	}
	var partials []rulefmt.Rule
	for _, rgs := range plan.NodeGroups(false) {
		for _, g := range rgs.Groups {
			for _, r := range g.Rules {
				if strings.HasPrefix(r.Record, partialPrefix) {
					partials = append(partials, r)
				}
			}
		}
	}
	type pair struct{ key, orig, split string }
	var pairs []pair
	for _, gp := range plan.Groups {
		for i, rp := range gp.Rules {
			if rp.Scope != ScopeCluster {
				continue
			}
			k := ruleKey(gp.Group.Name, i)
			pairs = append(pairs, pair{k, rp.Rule.Expr, rp.ClusterExpr})
			if o, s := withoutThreshold(t, p, rp.Rule.Expr), withoutThreshold(t, p, rp.ClusterExpr); o != "" && s != "" {
				pairs = append(pairs, pair{k, o, s})
			}
		}
	}

	// Evaluate: partials on each node at t, then both sides at t.
	prev := make([]map[string]labels.Labels, len(simNodes)) // per node: the partial series of the last evaluation
	compared := map[string]int{}
	for d := evalFrom; d <= simSpan; d += evalStep {
		at := simBase.Add(d)
		for i, n := range simNodes {
			cur := map[string]labels.Labels{}
			appendAll(t, union, func(a storage.Appender) {
				for _, r := range partials {
					for _, s := range instant(t, eng, nodes[i], r.Expr, at) {
						lb := labels.NewBuilder(s.Metric)
						lb.Set(model.MetricNameLabel, r.Record)
						ls := withNode(lb.Labels(), n)
						if _, dup := cur[ls.String()]; dup {
							continue // a partial shared by two groups
						}
						cur[ls.String()] = ls
						_, err := a.Append(0, ls, at.UnixMilli(), s.F)
						require.NoError(t, err)
					}
				}
				// Series a partial no longer returns go stale, as the
				// rule manager marks them.
				for k, ls := range prev[i] {
					if _, ok := cur[k]; !ok {
						_, err := a.Append(0, ls, at.UnixMilli(), math.Float64frombits(value.StaleNaN))
						require.NoError(t, err)
					}
				}
			})
			prev[i] = cur
		}
		for _, pr := range pairs {
			want := vectorMap(instant(t, eng, union, pr.orig, at))
			got := vectorMap(instant(t, eng, union, pr.split, at))
			require.Equal(t, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)),
				"at %s: %s\nsplit: %s", d, pr.orig, pr.split)
			for k, w := range want {
				require.True(t, sameFloat(w, got[k]), "at %s: %s %s: original %v, split %v\nsplit: %s", d, pr.orig, k, w, got[k], pr.split)
			}
			compared[pr.key] += len(want)
		}
	}
	return compared
}

// withoutThreshold returns the value side of an alert on a threshold
// (`<expr> > 0.05` → `<expr>`), or "".
func withoutThreshold(t *testing.T, p parser.Parser, s string) string {
	t.Helper()
	e, err := p.ParseExpr(s)
	require.NoError(t, err)
	for {
		pe, ok := e.(*parser.ParenExpr)
		if !ok {
			break
		}
		e = pe.Expr
	}
	b, ok := e.(*parser.BinaryExpr)
	if !ok || !b.Op.IsComparisonOperator() || b.ReturnBool {
		return ""
	}
	if _, ok := unparen(b.RHS).(*parser.NumberLiteral); !ok {
		return ""
	}
	return b.LHS.String()
}

// TestSplitDifferentialCatchesAWrongSplit is the control: a split that
// finishes an average as the average of the nodes' averages (not
// distributive) must fail the comparison the differential makes.
func TestSplitDifferentialCatchesAWrongSplit(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute, Parser: p})
	union := teststorage.New(t)
	nodes := make([]storage.Storage, len(simNodes))
	for i := range simNodes {
		nodes[i] = teststorage.New(t)
	}
	at := simBase.Add(5 * time.Minute) // n3 runs one pod of service c then, the others two
	for i, n := range simNodes {
		ss := simSeries(i, 5*time.Minute)
		appendAll(t, union, func(a storage.Appender) {
			for _, s := range ss {
				_, err := a.Append(0, withNode(s.ls, n), at.UnixMilli(), s.v)
				require.NoError(t, err)
			}
		})
		appendAll(t, nodes[i], func(a storage.Appender) {
			for _, s := range ss {
				_, err := a.Append(0, s.ls, at.UnixMilli(), s.v)
				require.NoError(t, err)
			}
		})
		appendAll(t, union, func(a storage.Appender) {
			for _, s := range instant(t, eng, nodes[i], `avg by (service) (memory_bytes)`, at) {
				lb := labels.NewBuilder(s.Metric)
				lb.Set(model.MetricNameLabel, "wrong_partial")
				_, err := a.Append(0, withNode(lb.Labels(), n), at.UnixMilli(), s.F)
				require.NoError(t, err)
			}
		})
	}
	want := vectorMap(instant(t, eng, union, `avg by (service) (memory_bytes)`, at))
	got := vectorMap(instant(t, eng, union, `avg by (service) (wrong_partial)`, at))
	require.Len(t, got, len(want))
	differ := false
	for k, w := range want {
		differ = differ || !sameFloat(w, got[k])
	}
	require.True(t, differ, "the average of averages must differ (different pod counts per node)")
}

// nodeCorpus are node rules: each evaluated on every node alone gives,
// together, what the expression gives over all nodes' series.
var nodeCorpus = []string{
	`rate(http_requests_total{status="500"}[5m]) > 0`,
	`sum by (pod) (rate(http_requests_total[5m]))`,
	`sum without (status) (rate(http_requests_total[5m]))`,
	`sum by (pod) (rate(http_requests_total{status="500"}[5m])) / sum by (pod) (rate(http_requests_total[5m]))`,
	`max by (instance) (memory_bytes)`,
	`topk by (pod) (1, rate(http_requests_total[5m]))`,
	`histogram_quantile(0.9, sum by (le, pod) (rate(http_request_duration_seconds_bucket[5m])))`,
	`queue_depth > 10`,
	`memory_bytes / on (pod) group_left sum by (pod) (memory_bytes)`,
	`count without (le) (http_request_duration_seconds_bucket)`,
	`max_over_time(sum by (pod) (rate(http_requests_total[5m]))[10m:1m])`,
	`up == 1`,
	`memory_bytes and on (instance) rate(http_requests_total{status="200"}[5m]) > 0`,
}

// TestNodeScopeDifferential: for node rules, the union of each node's
// results equals the expression over all nodes' series (compared without
// the node label, which the nodes' results get from the StoreAPI edge).
func TestNodeScopeDifferential(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	sc, err := newScoper(ScopeOptions{})
	require.NoError(t, err)
	for _, e := range nodeCorpus {
		expr, err := p.ParseExpr(e)
		require.NoError(t, err)
		s, why := sc.decide(expr)
		require.Equal(t, ScopeNode, s, "%s: %s", e, why)
	}
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute, Parser: p})
	union := teststorage.New(t)
	nodes := make([]storage.Storage, len(simNodes))
	for i := range simNodes {
		nodes[i] = teststorage.New(t)
	}
	for d := time.Duration(0); d <= simSpan; d += simStep {
		ts := simBase.Add(d).UnixMilli()
		for i, n := range simNodes {
			ss := simSeries(i, d)
			appendAll(t, nodes[i], func(a storage.Appender) {
				for _, s := range ss {
					_, err := a.Append(0, s.ls, ts, s.v)
					require.NoError(t, err)
				}
			})
			appendAll(t, union, func(a storage.Appender) {
				for _, s := range ss {
					_, err := a.Append(0, withNode(s.ls, n), ts, s.v)
					require.NoError(t, err)
				}
			})
		}
	}
	multiset := func(v promql.Vector, into map[string][]float64) {
		for _, s := range v {
			k := labels.NewBuilder(s.Metric).Del(model.MetricNameLabel, nodeLabel).Labels().String()
			into[k] = append(into[k], s.F)
		}
	}
	for _, e := range nodeCorpus {
		n := 0
		for d := evalFrom; d <= simSpan; d += evalStep {
			at := simBase.Add(d)
			want, got := map[string][]float64{}, map[string][]float64{}
			multiset(instant(t, eng, union, e, at), want)
			for i := range simNodes {
				multiset(instant(t, eng, nodes[i], e, at), got)
			}
			require.Equal(t, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)), "at %s: %s", d, e)
			for k, ws := range want {
				gs := got[k]
				slices.Sort(ws)
				slices.Sort(gs)
				require.Len(t, gs, len(ws), "at %s: %s %s", d, e, k)
				for i := range ws {
					require.True(t, sameFloat(ws[i], gs[i]), "at %s: %s %s: all nodes %v, each node %v", d, e, k, ws, gs)
				}
				n += len(ws)
			}
		}
		require.Positive(t, n, "%s never gave a result", e)
	}
}

// shippedSeries are the series the cluster rules of the shipped Istio
// sample read, on three nodes: two Istio workloads and the ingress
// gateway, istiod replicas on two nodes, kube-state-metrics on n1.
func shippedSeries(node int, d time.Duration) []simSample {
	var out []simSample
	mins := d.Minutes()
	steps := float64(d / simStep)
	add := func(v float64, kv ...string) {
		out = append(out, simSample{labels.FromStrings(kv...), v})
	}
	for w, wl := range []string{"svc-a", "svc-b", "istio-ingressgateway"} {
		if wl == "istio-ingressgateway" && node != 0 {
			continue // the gateway runs on n1
		}
		seed := float64(node*5+w) + 1
		pod := fmt.Sprintf("%s-%d", wl, node)
		gatewayGap := wl == "istio-ingressgateway" && mins > 20 && mins < 30
		for _, rep := range []string{"source", "destination"} {
			for _, code := range []string{"200", "503"} {
				v := steps * (10 + seed*1.37)
				if code == "503" {
					v = steps * 0.1 * seed
					if mins > 10+float64(node)*5 {
						v += (steps - float64((10+node*5)*6)) * (0.6 + seed*0.05)
					}
				}
				if gatewayGap {
					continue
				}
				add(v, "__name__", "istio_requests_total", "reporter", rep, "response_code", code, "source_workload", wl,
					"destination_service_namespace", "service-graph01", "pod", pod, "namespace", "ns1")
			}
		}
		if mins > 30 && mins < 38 {
			continue // no latency histograms anywhere: absent() fires
		}
		cum := 0.0
		for bi, le := range []string{"50", "100", "250", "500", "+Inf"} {
			cum += steps * (1 + seed*0.3*float64(bi+1) + 0.5*math.Sin(mins/4+float64(bi)+seed))
			add(math.Floor(cum), "__name__", "istio_request_duration_milliseconds_bucket", "source_workload", wl, "namespace", "ns1", "pod", pod, "le", le)
		}
	}
	for c, container := range []string{"istio-proxy", "discovery"} {
		for p := range 2 {
			seed := float64(node*4+c*2+p) + 1
			pod := fmt.Sprintf("istiod-%d-%d", node, p)
			if container == "istio-proxy" {
				pod = fmt.Sprintf("gw-%d-%d", node, p)
			}
			add(1e6*seed+d.Seconds()*(150+seed*20)+1e4*math.Sin(mins/2+seed),
				"__name__", "container_memory_working_set_bytes", "container", container, "namespace", "istio-system", "pod", pod,
				"job", "kubelet", "metrics_path", "/metrics/cadvisor", "image", "img")
			add(steps*(0.5+seed*0.01), "__name__", "container_cpu_usage_seconds_total", "container", container, "namespace", "istio-system", "pod", pod,
				"job", "kubelet", "metrics_path", "/metrics/cadvisor", "image", "img")
		}
	}
	add(steps*(0.2+float64(node)*0.1), "__name__", "container_cpu_usage_seconds_total", "container", "app", "namespace", "ns1",
		"pod", fmt.Sprintf("app-%d", node), "job", "kubelet", "metrics_path", "/metrics/cadvisor", "image", "img")
	if node < 2 { // istiod: two replicas
		pod := fmt.Sprintf("istiod-%d", node)
		add(steps*(20+float64(node)*3), "__name__", "pilot_xds_pushes", "app", "istiod", "pod", pod)
		add(steps*(0.5+float64(node)*0.7)+math.Max(0, mins-15)*float64(node)*4, "__name__", "pilot_xds_push_errors", "app", "istiod", "pod", pod)
		add(steps*(0.3+float64(node)*0.2), "__name__", "pilot_total_xds_rejects", "app", "istiod", "pod", pod)
	}
	if node == 0 { // kube-state-metrics
		for i := range 3 {
			rs := fmt.Sprintf("web-%d-abc", i)
			add(1, "__name__", "kube_replicaset_owner", "job", "kube-state-metrics", "namespace", "ns1", "replicaset", rs, "owner_name", fmt.Sprintf("web-%d", i))
			add(1, "__name__", "kube_pod_owner", "job", "kube-state-metrics", "namespace", "ns1", "pod", rs+"-x", "owner_kind", "ReplicaSet", "owner_name", rs)
			add(1, "__name__", "kube_pod_info", "job", "kube-state-metrics", "namespace", "istio-system", "pod", fmt.Sprintf("istiod-%d-0", i), "host_ip", "10.0.0.1")
		}
	}
	return out
}

// TestSplitDifferentialShippedRules runs the differential over the
// cluster rules of the shipped Istio sample (testdata/).
func TestSplitDifferentialShippedRules(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	f := filepath.Join("..", "testdata", "rules-istio-tools-stability-prometheusrule.yaml")
	b, err := os.ReadFile(f)
	require.NoError(t, err)
	rgs, errs := loadRuleFile(f, b, p, nil)
	require.Empty(t, errs)
	plan, err := PlanRules([]string{f}, map[string]*rulefmt.RuleGroups{f: rgs}, ScopeOptions{}, p)
	require.NoError(t, err)
	compared := runSplitDifferential(t, p, plan, shippedSeries)
	n := 0
	for _, gp := range plan.Groups {
		for i, rp := range gp.Rules {
			if rp.Scope != ScopeCluster {
				continue
			}
			n++
			assert.Positive(t, compared[ruleKey(gp.Group.Name, i)], "%s: %s never gave a result", ruleName(rp.Rule), rp.Rule.Expr)
		}
	}
	assert.Equal(t, 14, n, "cluster rules of the sample")
}

// FuzzScopeSplit: any expression the parser takes gets a scope, and a
// cluster expression's split parses (PlanRules checks it) and reads only
// partials it declares.
func FuzzScopeSplit(f *testing.F) {
	for _, c := range scopeCorpus {
		f.Add(c.expr)
	}
	for _, c := range splitCorpus {
		f.Add(c.expr)
	}
	p := parser.NewParser(parser.Options{})
	f.Fuzz(func(t *testing.T, expr string) {
		if _, err := p.ParseExpr(expr); err != nil {
			return
		}
		rgs := &rulefmt.RuleGroups{Groups: []rulefmt.RuleGroup{{Name: "g", Rules: []rulefmt.Rule{{Record: "r", Expr: expr}}}}}
		plan, err := PlanRules([]string{"f"}, map[string]*rulefmt.RuleGroups{"f": rgs}, ScopeOptions{}, p)
		require.NoError(t, err)
		rp := plan.Groups[0].Rules[0]
		require.Contains(t, []Scope{ScopeNode, ScopeCluster}, rp.Scope)
		require.NotEmpty(t, rp.Reason)
		if rp.Scope == ScopeNode {
			return
		}
		for _, ref := range regexp.MustCompile(`weft:partial:[0-9a-f]{16}`).FindAllString(rp.ClusterExpr, -1) {
			require.True(t, slices.ContainsFunc(rp.Partials, func(pt Partial) bool { return pt.Record == ref }), "%s reads %s", rp.ClusterExpr, ref)
		}
		for _, pt := range rp.Partials {
			_, err := p.ParseExpr(pt.Expr)
			require.NoError(t, err, pt.Expr)
		}
	})
}
