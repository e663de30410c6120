//go:build integration

// The acceptance tests of issue #18: three weft agents, each a Thanos
// StoreAPI over its node's TSDB, under one stock Thanos Query (v0.42.4),
// compared with one real Prometheus 2.42 that scrapes every node's targets.
//
// The targets are one service mesh of nine pods (service reviews: six pods,
// service ratings: three) spread over three nodes, three pods each. Every
// value a target serves is a fixed function of the wall clock at the moment
// it answers (counter = k × milliseconds since the test began), so two
// scrapers that scrape at different moments store different samples on the
// same straight lines; the only difference between Thanos Query's and
// Prometheus's answers is when each scrape happened.
//
// TestThanosQueryOverSidecars runs the same checks with Prometheus 2.42 +
// Thanos sidecar on each node (the peer users run today): it shows that
// what the tests expect of weft's StoreAPI is what Thanos's own does.

package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/internal/backends"
	"github.com/weftobs/weft/internal/gobuild"
	"github.com/weftobs/weft/internal/loopback"
)

const (
	thanosCluster = "c1"
	// thanosScrapeInterval is every scraper's interval (agents and the
	// reference Prometheus alike).
	thanosScrapeInterval = 2 * time.Second
	// thanosRateWindow is the range of the compared rate() queries.
	thanosRateWindow = time.Minute
	// thanosRelTolerance bounds |thanos - prometheus| / |prometheus| for
	// the rate and quantile queries (and each side's against the exact
	// value); why 1 %: below.
	thanosRelTolerance = 0.01
	// thanosEndpointInterval is Thanos Query's endpoint health loop:
	// EndpointSet.Update runs every --endpoint.info-timeout, and each Info
	// call is bounded by the same value (v0.42.4 cmd/thanos/endpointset.go,
	// runutil.Repeat). The flag is hidden (not a stable interface), so the
	// test leaves it at its default, 5s.
	thanosEndpointInterval = 5 * time.Second
)

// The tolerance, 1 %. A target computes its value when it answers,
// while the scraper stamps the sample with the time the scrape started, so
// a sample is k·(ts + δ) with δ the time from the scrape's start to the
// target's answer (on loopback: milliseconds; under load some 10–100 ms).
// The values are straight lines, so rate()'s extrapolation to the window's
// edges is exact once a window is fully covered by samples, and what is
// left is k·(δlast − δfirst)/(tlast − tfirst): with ~58 s between the first
// and last sample of a 1m window, 100 ms of jitter is 0.17 %. Any fault
// the comparison is for is far larger: the smallest pod's share of its
// service's rate is 1/27 (3.7 %), a missing node is a third, a duplicated
// series doubles a pod.

// thanosPod is one scrape target: a pod of a service on a node.
type thanosPod struct {
	Service, Name, Node string
	K                   int // counter slope, per millisecond
	TraceID             string
	Addr                string
}

// bucketSlopes are a pod's cumulative histogram bucket slopes per
// millisecond for le 0.1, 0.5, 2.5 and +Inf (bounds that no Prometheus
// version reformats: 0.1 stays "0.1", unlike "1" and "1.0").
func (p *thanosPod) bucketSlopes() []int {
	return []int{2 * p.K, (10 + p.K) * p.K, 19 * p.K, 20 * p.K}
}

var thanosLe = []string{"0.1", "0.5", "2.5", "+Inf"}

// thanosPods returns the nine pods, three per node: reviews-(2j, 2j+1) and
// ratings-j on node n(j+1).
func thanosPods() []*thanosPod {
	var pods []*thanosPod
	for j := range 3 {
		node := fmt.Sprintf("n%d", j+1)
		for _, p := range []struct {
			svc string
			i   int
		}{{"reviews", 2 * j}, {"reviews", 2*j + 1}, {"ratings", j}} {
			pods = append(pods, &thanosPod{Service: p.svc, Name: fmt.Sprintf("%s-%d", p.svc, p.i), Node: node})
		}
	}
	for i, p := range pods {
		p.K = i + 1
		p.TraceID = fmt.Sprintf("%016x%016x", 0x7eef00+i, 0xabcdef0000+i)
	}
	return pods
}

// serve starts the pod's OpenMetrics endpoint: a counter with an exemplar
// that carries the pod's trace ID, and a histogram, all k·ms since t0.
func (p *thanosPod) serve(t *testing.T, t0 time.Time) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ms := time.Since(t0).Milliseconds()
		lbl := fmt.Sprintf(`service=%q,pod=%q`, p.Service, p.Name)
		var b strings.Builder
		b.WriteString("# TYPE mesh_requests counter\n# HELP mesh_requests Requests served.\n")
		fmt.Fprintf(&b, "mesh_requests_total{%s} %d # {trace_id=%q} 1\n", lbl, int64(p.K)*ms, p.TraceID)
		b.WriteString("# TYPE mesh_latency_seconds histogram\n# HELP mesh_latency_seconds Request latency.\n")
		slopes := p.bucketSlopes()
		for i, le := range thanosLe {
			fmt.Fprintf(&b, "mesh_latency_seconds_bucket{%s,le=%q} %d\n", lbl, le, int64(slopes[i])*ms)
		}
		fmt.Fprintf(&b, "mesh_latency_seconds_sum{%s} %d\n", lbl, int64(7*p.K)*ms)
		fmt.Fprintf(&b, "mesh_latency_seconds_count{%s} %d\n", lbl, int64(slopes[len(slopes)-1])*ms)
		b.WriteString("# EOF\n")
		w.Header().Set("Content-Type", ctOM)
		_, _ = w.Write([]byte(b.String()))
	}))
	t.Cleanup(srv.Close)
	p.Addr = srv.Listener.Addr().String()
}

// thanosAgentConfig is one node's agent: pod_scrape over the node's pods
// into weft_store (external labels cluster and node), weft_rules over the
// shared rule file, weft_query with the StoreAPI. Everything on loopback.
const thanosAgentConfig = `
extensions:
  health_check:
    endpoint: {{.Health}}
  weft_store:
    directory: {{.Dir}}/store
    external_labels:
      cluster: {{.Cluster}}
      node: {{.Node}}
  weft_rules:
    store: weft_store
    rule_files: [{{.Rules}}]
    evaluation_interval: 2s
    reload_interval: 0s
  weft_query:
    http:
      endpoint: {{.Query}}
    store: weft_store
    store_api:
      endpoint: {{.StoreAPI}}
receivers:
  pod_scrape:
    scrape_interval: 2s
    scrape_configs:
      - job_name: mesh
        static_configs:
          - targets: [{{range $i, $p := .Pods}}{{if $i}}, {{end}}{{$p.Addr}}{{end}}]
exporters:
  weft_store: {}
service:
  extensions: [health_check, weft_store, weft_rules, weft_query]
  pipelines:
    metrics:
      receivers: [pod_scrape]
      exporters: [weft_store]
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
`

// thanosRules is the rule file every agent loads from the same path, as a
// DaemonSet mounts one ConfigMap on every node: an alert that fires for
// every pod with traffic, and a recording rule.
const thanosRules = `groups:
  - name: mesh
    interval: 2s
    rules:
      - alert: PodTraffic
        expr: sum by (service, pod) (rate(mesh_requests_total{job="mesh"}[30s])) > 0
        for: 0s
        labels:
          severity: info
      - record: service_pod:mesh_requests:rate30s
        expr: sum by (service, pod) (rate(mesh_requests_total{job="mesh"}[30s]))
`

// thanosAgent is one weft process.
type thanosAgent struct {
	Node                         string
	Health, Query, StoreAPI, Dir string
	Cluster, Rules               string
	Pods                         []*thanosPod
	bin, cfgPath                 string
	logT                         *testing.T // the top-level test: the process outlives subtests
	cmd                          *exec.Cmd
	done                         chan struct{}
}

func (a *thanosAgent) start(t *testing.T) {
	t.Helper()
	a.cmd = exec.Command(a.bin, "--config", "file:"+a.cfgPath)
	a.cmd.Stdout, a.cmd.Stderr = testLogWriter{a.logT}, testLogWriter{a.logT}
	require.NoError(t, a.cmd.Start())
	a.done = make(chan struct{})
	cmd, done := a.cmd, a.done
	go func() { _ = cmd.Wait(); close(done) }()
	require.NoError(t, waitHTTP(t.Context(), "http://"+a.Health+"/", done), "agent %s", a.Node)
}

// stop sends SIGTERM and waits for the process to end; it kills it and
// fails the test when it has not ended after a minute.
func (a *thanosAgent) stop(t *testing.T) {
	t.Helper()
	if a.cmd == nil {
		return
	}
	select {
	case <-a.done:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(time.Minute):
		_ = a.cmd.Process.Kill()
		<-a.done
		t.Errorf("agent %s did not end within a minute of SIGTERM", a.Node)
	}
}

// thanosNode is one node's StoreAPI: a weft agent, or (for the harness
// check) a Prometheus with a Thanos sidecar.
type thanosNode interface {
	node() string
	storeAPI() string
	pods() []*thanosPod
	start(t *testing.T) // again after stop, on the same StoreAPI address
	stop(t *testing.T)  // SIGTERM, and wait
}

func (a *thanosAgent) node() string       { return a.Node }
func (a *thanosAgent) storeAPI() string   { return a.StoreAPI }
func (a *thanosAgent) pods() []*thanosPod { return a.Pods }

// thanosPeer is the peer users run today in place of a weft agent: a
// Prometheus 2.42 with the node's external labels, scraping the node's
// pods and evaluating the rule file, and a Thanos sidecar over it. Stopping
// it stops the sidecar (the StoreAPI); Prometheus runs on.
type thanosPeer struct {
	Node    string
	Pods    []*thanosPod
	prom    *backends.Prometheus
	promDir string
	thanos  string
	grpc    string
	sidecar *backends.ThanosSidecar
	logT    *testing.T
}

func (p *thanosPeer) node() string       { return p.Node }
func (p *thanosPeer) storeAPI() string   { return p.grpc }
func (p *thanosPeer) pods() []*thanosPod { return p.Pods }

func (p *thanosPeer) start(t *testing.T) {
	t.Helper()
	var err error
	p.sidecar, err = backends.StartThanosSidecar(t.Context(), p.thanos, p.prom.URL(), filepath.Join(p.promDir, "data"), p.grpc, testLogWriter{p.logT})
	require.NoError(t, err)
	p.grpc = p.sidecar.GRPC
}

func (p *thanosPeer) stop(*testing.T) {
	if p.sidecar != nil {
		p.sidecar.Stop()
	}
}

// thanosRig is the cluster: pods, three agents, the reference Prometheus,
// and two Thanos Queries over the agents: tq with the endpoints as plain
// (non-strict) endpoints, tqStrict with the same as strict ones.
type thanosRig struct {
	t0       time.Time
	pods     []*thanosPod
	agents   []thanosNode
	prom     *backends.Prometheus
	tq       *backends.ThanosQuery
	tqStrict *backends.ThanosQuery
	ready    time.Time // every series visible everywhere
}

// startThanosRig starts the pods, the reference Prometheus, one StoreAPI
// per node (weft agents, or Prometheus + sidecar peers) and two Thanos
// Queries, and waits until every pod's series is visible everywhere.
func startThanosRig(t *testing.T, peers bool) *thanosRig {
	t.Helper()
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	promBin, err := backends.FindPrometheus()
	require.NoError(t, err)
	thanosBin, err := backends.FindThanos()
	require.NoError(t, err)

	r := &thanosRig{t0: time.Now(), pods: thanosPods()}
	for _, p := range r.pods {
		p.serve(t, r.t0)
	}
	podsOf := func(node string) (pods []*thanosPod, addrs []string) {
		for _, p := range r.pods {
			if p.Node == node {
				pods, addrs = append(pods, p), append(addrs, p.Addr)
			}
		}
		return pods, addrs
	}

	// The reference Prometheus scrapes all nine pods; the cluster and node
	// an agent adds as external labels are target labels here, so both
	// sides name every series the same.
	var prom strings.Builder
	fmt.Fprintf(&prom, "scrape_configs:\n  - job_name: mesh\n    scrape_interval: %s\n    static_configs:\n", thanosScrapeInterval)
	for _, node := range []string{"n1", "n2", "n3"} {
		_, addrs := podsOf(node)
		fmt.Fprintf(&prom, "      - targets: [%s]\n        labels: {cluster: %s, node: %s}\n", strings.Join(addrs, ", "), thanosCluster, node)
	}
	r.prom, err = backends.StartPrometheus(t.Context(), promBin, t.TempDir(), prom.String(), testLogWriter{t})
	require.NoError(t, err)
	t.Cleanup(r.prom.Stop)

	rulesPath := filepath.Join(t.TempDir(), "mesh.rules.yaml")
	require.NoError(t, os.WriteFile(rulesPath, []byte(thanosRules), 0o600))
	var bin string
	if !peers {
		bin = filepath.Join(t.TempDir(), "weft")
		require.NoError(t, gobuild.Build(t.Context(), ".", bin, ".", ""))
	}
	var storeAPIs []string
	for _, node := range []string{"n1", "n2", "n3"} {
		pods, addrs := podsOf(node)
		var n thanosNode
		if peers {
			// Prometheus's external labels go into the global section the
			// launcher opens (the extra configuration follows it).
			cfg := fmt.Sprintf("  external_labels: {cluster: %s, node: %s}\nrule_files: [%s]\nscrape_configs:\n  - job_name: mesh\n    scrape_interval: %s\n    static_configs:\n      - targets: [%s]\n",
				thanosCluster, node, rulesPath, thanosScrapeInterval, strings.Join(addrs, ", "))
			p := &thanosPeer{Node: node, Pods: pods, promDir: t.TempDir(), thanos: thanosBin, logT: t}
			p.prom, err = backends.StartPrometheus(t.Context(), promBin, p.promDir, cfg, testLogWriter{t})
			require.NoError(t, err)
			t.Cleanup(p.prom.Stop)
			p.start(t)
			t.Cleanup(func() { p.stop(t) })
			n = p
		} else {
			ports, err := loopback.FreeAddrs(3)
			require.NoError(t, err)
			a := &thanosAgent{
				Node: node, Health: ports[0], Query: ports[1], StoreAPI: ports[2], Dir: t.TempDir(),
				Cluster: thanosCluster, Rules: rulesPath, Pods: pods, bin: bin, logT: t,
			}
			a.cfgPath = filepath.Join(a.Dir, "weft.yaml")
			require.NoError(t, os.WriteFile(a.cfgPath, renderTemplate(t, thanosAgentConfig, a), 0o600))
			a.start(t)
			t.Cleanup(func() { a.stop(t) })
			n = a
		}
		r.agents = append(r.agents, n)
		storeAPIs = append(storeAPIs, n.storeAPI())
	}

	common := []string{"--query.partial-response"}
	r.tq, err = backends.StartThanosQuery(t.Context(), thanosBin, t.TempDir(), storeAPIs, common, testLogWriter{t})
	require.NoError(t, err)
	t.Cleanup(r.tq.Stop)
	strict := slices.Clone(common)
	for _, a := range storeAPIs {
		strict = append(strict, "--endpoint-strict="+a)
	}
	r.tqStrict, err = backends.StartThanosQuery(t.Context(), thanosBin, t.TempDir(), nil, strict, testLogWriter{t})
	require.NoError(t, err)
	t.Cleanup(r.tqStrict.Stop)

	// Every pod's series in Prometheus and through both Thanos Queries.
	want := map[string]float64{"n1": 3, "n2": 3, "n3": 3}
	for name, base := range map[string]string{"prometheus": r.prom.URL(), "thanos query": r.tq.URL(), "thanos query (strict)": r.tqStrict.URL()} {
		require.EventuallyWithTf(t, func(c *assert.CollectT) {
			res, err := thanosInstant(t.Context(), base, `count by (node) (mesh_requests_total{job="mesh"})`, time.Time{})
			if !assert.NoError(c, err) {
				return
			}
			assert.Equal(c, want, res.byLabel("node"))
		}, 60*time.Second, 250*time.Millisecond, "%s does not see all nine pods", name)
	}
	r.ready = time.Now()
	return r
}

// TestThanosQueryOverAgents is issue #18's acceptance: three agents under a
// stock Thanos Query answer PromQL, labels, series, rules, alerts and
// exemplars as one Prometheus that scraped all three nodes would, and a
// stopped agent turns answers partial (with a warning) until it is back.
func TestThanosQueryOverAgents(t *testing.T) {
	startThanosRig(t, false).run(t)
}

// TestThanosQueryOverSidecars runs the same checks with the peer users run
// today on each node: Prometheus 2.42 with a Thanos sidecar. It checks the
// test itself: what it expects of weft's StoreAPI is what Thanos's own
// StoreAPI over Prometheus does.
func TestThanosQueryOverSidecars(t *testing.T) {
	startThanosRig(t, true).run(t)
}

func (r *thanosRig) run(t *testing.T) {
	t.Run("PromQLMatchesPrometheus", r.testPromQL)
	t.Run("RulesAlertsExemplars", r.testRulesAlertsExemplars)
	t.Run("ExternalLabelMatchers", r.testExternalLabelMatchers)
	t.Run("FreshSamples", r.testFreshSamples)
	t.Run("PartialResponseAndRediscovery", r.testPartialResponse)
}

// testExternalLabelMatchers selects by the labels the agents add as
// external labels (target labels in the reference): equality, negation,
// regular expressions, a value no node has, and a name no series has. The
// series, a label's values and an instant query must be the ones
// Prometheus returns for the same selectors.
func (r *thanosRig) testExternalLabelMatchers(t *testing.T) {
	end := time.Now().Add(-5 * time.Second)
	for _, sel := range []string{
		`{job="mesh",node="n1"}`,
		`{job="mesh",node!="n1"}`,
		`{job="mesh",node=~"n[23]"}`,
		`{job="mesh",node!~"n1|n3",cluster="c1"}`,
		`{job="mesh",node="n4"}`,
		`{job="mesh",cluster!="c1"}`,
		`{job="mesh",cluster=~".+",pod=~"ratings-.*"}`,
		`{job="mesh",node=""}`,
		`{job="mesh",zone=""}`,
		`{__name__="up",node=~"n1|n2"}`,
	} {
		t.Run(sel, func(t *testing.T) {
			rng := url.Values{"match[]": {sel}, "start": {thanosUnix(r.ready)}, "end": {thanosUnix(end)}}
			var refS, gotS []map[string]string
			thanosGetData(t, r.prom.URL()+"/api/v1/series?"+rng.Encode(), &refS)
			thanosGetData(t, r.tq.URL()+"/api/v1/series?"+rng.Encode(), &gotS)
			if d := diffSets(thanosSeriesSet(refS), thanosSeriesSet(gotS)); d != "" {
				t.Errorf("series, thanos query vs prometheus:\n%s", d)
			}
			for _, name := range []string{"pod", "node"} {
				var refV, gotV []string
				thanosGetData(t, r.prom.URL()+"/api/v1/label/"+name+"/values?"+rng.Encode(), &refV)
				thanosGetData(t, r.tq.URL()+"/api/v1/label/"+name+"/values?"+rng.Encode(), &gotV)
				assert.Equalf(t, refV, gotV, "values of %s", name)
			}
			q := "count by (node, pod) (" + sel + ")"
			ref, err := thanosInstant(t.Context(), r.prom.URL(), q, end)
			require.NoError(t, err)
			got, err := thanosInstant(t.Context(), r.tq.URL(), q, end)
			require.NoError(t, err)
			assert.Empty(t, got.Warnings)
			byNodePod := func(v thanosVector) map[string]float64 {
				out := map[string]float64{}
				for _, s := range v.Result {
					f, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
					out[s.Metric["node"]+"/"+s.Metric["pod"]] = f
				}
				return out
			}
			assert.Equal(t, byNodePod(ref), byNodePod(got), q)
		})
	}
}

// testFreshSamples asks, again and again over three of Thanos Query's
// endpoint updates, for the samples of the last 4 s (each series has one:
// a scrape every 2 s, stored within milliseconds). Thanos Query leaves out
// a store whose advertised time range (Info, refreshed every endpoint
// update) ends before the query's start, so a StoreAPI that advertises
// its newest sample's time as of the last Info call, rather than "up to
// now" as a sidecar does (MaxTime: MaxInt64), has its fresh samples left
// out for part of every update interval.
func (r *thanosRig) testFreshSamples(t *testing.T) {
	const q = `count by (node) (count_over_time(mesh_requests_total{job="mesh"}[4s]))`
	want := map[string]float64{"n1": 3, "n2": 3, "n3": 3}
	var bad []string
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(3 * thanosEndpointInterval); time.Now().Before(end); <-tick.C {
		for name, base := range map[string]string{"prometheus": r.prom.URL(), "thanos query": r.tq.URL()} {
			at := time.Now()
			res, err := thanosInstant(t.Context(), base, q, at)
			require.NoError(t, err, name)
			if got := res.byLabel("node"); !maps.Equal(want, got) {
				bad = append(bad, fmt.Sprintf("%s at %s: %v %q", name, at.Format("15:04:05.000"), got, res.Warnings))
			}
		}
	}
	assert.Empty(t, bad, "answers without every node's newest samples")
	if len(bad) > 0 {
		for _, a := range r.agents {
			var stores map[string][]struct {
				Name    string `json:"name"`
				MinTime int64  `json:"minTime"`
				MaxTime int64  `json:"maxTime"`
			}
			thanosGetDataC(t, r.tq.URL()+"/api/v1/stores", &stores)
			for _, list := range stores {
				for _, s := range list {
					if s.Name == a.storeAPI() {
						t.Logf("%s advertises [%s, %s] at %s", a.node(), time.UnixMilli(s.MinTime).UTC().Format("15:04:05.000"), time.UnixMilli(s.MaxTime).UTC().Format("15:04:05.000"), time.Now().UTC().Format("15:04:05.000"))
					}
				}
			}
		}
	}
}

// testPromQL compares PromQL, label names, label values and series through
// Thanos Query with the same on Prometheus, at one evaluation time at which
// both hold a full rate window of samples.
func (r *thanosRig) testPromQL(t *testing.T) {
	// The evaluation time: one rate window and two scrape intervals after
	// every series was seen on both sides (the first sample of the window
	// then lies within 1.1 intervals of its start, and rate() extrapolates
	// to the edge), and a few seconds in the past when the queries run,
	// so that the newest samples before it are stored on both sides.
	at := r.ready.Add(thanosRateWindow + 2*thanosScrapeInterval).Truncate(time.Second)
	time.Sleep(time.Until(at.Add(3 * time.Second))) // a rate window must pass; nothing to poll for
	t.Logf("evaluation time %s (%s after the targets started)", at.Format(time.RFC3339), at.Sub(r.t0).Round(time.Second))

	// Analytic values: the slopes are per millisecond.
	wantRate := map[string]float64{}
	buckets := map[string][]float64{}
	for _, p := range r.pods {
		wantRate[p.Service] += float64(p.K) * 1000
		if buckets[p.Service] == nil {
			buckets[p.Service] = make([]float64, len(thanosLe))
		}
		for i, s := range p.bucketSlopes() {
			buckets[p.Service][i] += float64(s) * 1000
		}
	}
	wantQ := map[string]float64{}
	for svc, b := range buckets {
		wantQ[svc] = classicQuantile(0.9, []float64{0.1, 0.5, 2.5, math.Inf(1)}, b)
	}

	for _, tc := range []struct {
		query string
		by    string
		want  map[string]float64 // analytic; nil: no closed form
		exact bool
	}{
		{query: `sum by (service) (rate(mesh_requests_total{job="mesh"}[1m]))`, by: "service", want: wantRate},
		{query: `histogram_quantile(0.9, sum by (le, service) (rate(mesh_latency_seconds_bucket{job="mesh"}[1m])))`, by: "service", want: wantQ},
		// Prometheus has no node label of its own: the reference gives each
		// node's targets the target labels cluster and node, the agents'
		// StoreAPIs add them as external labels.
		{query: `count by (node) (up{job="mesh"})`, by: "node", want: map[string]float64{"n1": 3, "n2": 3, "n3": 3}, exact: true},
		{query: `count by (node) ({job="mesh"})`, by: "node", exact: true},
		{query: `count by (cluster, service) (mesh_latency_seconds_bucket{job="mesh"})`, by: "service", want: map[string]float64{"reviews": 24, "ratings": 12}, exact: true},
	} {
		t.Run(tc.query, func(t *testing.T) {
			ref, err := thanosInstant(t.Context(), r.prom.URL(), tc.query, at)
			require.NoError(t, err)
			require.Empty(t, ref.Warnings)
			got, err := thanosInstant(t.Context(), r.tq.URL(), tc.query, at)
			require.NoError(t, err)
			assert.Empty(t, got.Warnings, "a warning under partial response means a StoreAPI call failed")
			refBy, gotBy := ref.byLabel(tc.by), got.byLabel(tc.by)
			t.Logf("prometheus %v, thanos query %v, analytic %v", refBy, gotBy, tc.want)
			require.ElementsMatch(t, slices.Collect(maps.Keys(refBy)), slices.Collect(maps.Keys(gotBy)), "series")
			if tc.exact {
				assert.Equal(t, refBy, gotBy)
				if tc.want != nil {
					assert.Equal(t, tc.want, gotBy, "analytic")
				}
				return
			}
			for k, v := range refBy {
				assert.InEpsilonf(t, v, gotBy[k], thanosRelTolerance, "%s=%s: thanos query vs prometheus", tc.by, k)
				if tc.want != nil {
					assert.InEpsilonf(t, tc.want[k], gotBy[k], thanosRelTolerance, "%s=%s: thanos query vs analytic", tc.by, k)
					assert.InEpsilonf(t, tc.want[k], v, thanosRelTolerance, "%s=%s: prometheus vs analytic", tc.by, k)
				}
			}
		})
	}

	// Raw samples, as the StoreAPI streams them in chunks: every counter
	// sample through Thanos Query lies on its pod's line (value/k is the
	// milliseconds since t0 when the target answered, at or after the
	// sample's timestamp, which is when the scrape began; -1 ms for the
	// truncation of both to milliseconds, and up to 1 s for the scrape's
	// latency, far more than loopback takes), and each series holds one
	// sample per scrape interval of the window.
	kOf := map[string]int{}
	for _, p := range r.pods {
		kOf[p.Name] = p.K
	}
	for name, base := range map[string]string{"prometheus": r.prom.URL(), "thanos query": r.tq.URL()} {
		var m struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		}
		w := thanosGetDataC(t, base+"/api/v1/query?"+url.Values{"query": {`mesh_requests_total{job="mesh"}[1m]`}, "time": {thanosUnix(at)}}.Encode(), &m)
		assert.Empty(t, w, "%s: warnings", name)
		require.Equal(t, "matrix", m.ResultType, name)
		assert.Len(t, m.Result, len(r.pods), "%s: series", name)
		perWindow := int(thanosRateWindow / thanosScrapeInterval)
		for _, s := range m.Result {
			pod := s.Metric["pod"]
			assert.InDeltaf(t, perWindow, len(s.Values), 1, "%s: samples of %s in the window", name, pod)
			var off []string
			for _, smp := range s.Values {
				ts, _ := smp[0].(float64)
				vs, _ := smp[1].(string)
				v, _ := strconv.ParseFloat(vs, 64)
				lag := v/float64(kOf[pod]) - float64(int64(math.Round(ts*1000))-r.t0.UnixMilli())
				if lag < -1 || lag > 1000 {
					off = append(off, fmt.Sprintf("%.3f: %s (answered %+.0f ms from its timestamp)", ts, vs, lag))
				}
			}
			assert.Emptyf(t, off, "%s: samples of %s off the pod's line", name, pod)
		}
	}

	// Metadata over the window both sides hold: label names, each name's
	// values and the series of the job must be the same sets.
	match := `{job="mesh"}`
	rng := url.Values{"match[]": {match}, "start": {thanosUnix(r.ready)}, "end": {thanosUnix(at)}}
	var refNames, gotNames []string
	thanosGetData(t, r.prom.URL()+"/api/v1/labels?"+rng.Encode(), &refNames)
	thanosGetData(t, r.tq.URL()+"/api/v1/labels?"+rng.Encode(), &gotNames)
	assert.Equal(t, []string{"__name__", "cluster", "instance", "job", "le", "node", "pod", "service"}, refNames, "prometheus label names")
	assert.Equal(t, refNames, gotNames, "label names: thanos query vs prometheus")
	for _, name := range refNames {
		var refV, gotV []string
		thanosGetData(t, r.prom.URL()+"/api/v1/label/"+name+"/values?"+rng.Encode(), &refV)
		thanosGetData(t, r.tq.URL()+"/api/v1/label/"+name+"/values?"+rng.Encode(), &gotV)
		assert.Equalf(t, refV, gotV, "values of label %s: thanos query vs prometheus", name)
	}
	var refS, gotS []map[string]string
	thanosGetData(t, r.prom.URL()+"/api/v1/series?"+rng.Encode(), &refS)
	thanosGetData(t, r.tq.URL()+"/api/v1/series?"+rng.Encode(), &gotS)
	refSet, gotSet := thanosSeriesSet(refS), thanosSeriesSet(gotS)
	// 9 pods × (counter + 4 buckets + sum + count + up + 4 scrape_* series).
	assert.Len(t, refSet, 9*12, "prometheus series")
	if d := diffSets(refSet, gotSet); d != "" {
		t.Errorf("series, thanos query vs prometheus:\n%s", d)
	}
}

// testRulesAlertsExemplars checks the Rules and Exemplars APIs through
// Thanos Query: every agent's rules, each carrying its node's external
// labels as a Thanos sidecar or ruler gives them; every pod's alert; every
// pod's trace IDs, with the series labels of its node.
func (r *thanosRig) testRulesAlertsExemplars(t *testing.T) {
	nodeOf := map[string]string{}
	for _, p := range r.pods {
		nodeOf[p.Name] = p.Node
	}
	allPods := slices.Sorted(maps.Keys(nodeOf))

	// /api/v1/rules: the agents load the same file, so Thanos Query merges
	// their groups (same file, same name) into one group; its rules stay
	// apart by their external labels: 3 alerting and 3 recording rules,
	// one of each per node. Without the node label Thanos would dedup them
	// into one of each, and two nodes' alerts would be lost.
	type rule struct {
		Name   string            `json:"name"`
		Type   string            `json:"type"`
		Labels map[string]string `json:"labels"`
		Health string            `json:"health"`
		State  string            `json:"state"`
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			File  string `json:"file"`
			Rules []rule `json:"rules"`
		} `json:"groups"`
	}
	var rulesWarnings []string
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		rulesWarnings = thanosGetDataC(c, r.tq.URL()+"/api/v1/rules", &rules)
		if !assert.Len(c, rules.Groups, 1, "groups") {
			return
		}
		g := rules.Groups[0]
		assert.Equal(c, "mesh", g.Name)
		got := map[string][]string{} // node -> "type name health [pods firing]"
		for _, rl := range g.Rules {
			var firing []string
			for _, a := range rl.Alerts {
				if a.State == "firing" {
					firing = append(firing, a.Labels["pod"])
				}
			}
			sort.Strings(firing)
			got[rl.Labels["node"]] = append(got[rl.Labels["node"]],
				fmt.Sprintf("%s %s %s cluster=%s %v", rl.Type, rl.Name, rl.Health, rl.Labels["cluster"], firing))
		}
		want := map[string][]string{}
		for _, a := range r.agents {
			var pods []string
			for _, p := range a.pods() {
				pods = append(pods, p.Name)
			}
			sort.Strings(pods)
			want[a.node()] = []string{
				fmt.Sprintf("alerting PodTraffic ok cluster=c1 %v", pods),
				"recording service_pod:mesh_requests:rate30s ok cluster=c1 []",
			}
		}
		for _, v := range got {
			sort.Strings(v)
		}
		assert.Equal(c, want, got, "rules by node label")
	}, 30*time.Second, time.Second, "/api/v1/rules through thanos query")
	assert.Empty(t, rulesWarnings, "rules warnings")

	// /api/v1/alerts: one firing PodTraffic per pod, from all three nodes.
	var alerts struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		w := thanosGetDataC(c, r.tq.URL()+"/api/v1/alerts", &alerts)
		assert.Empty(c, w, "alerts warnings")
		var pods []string
		for _, a := range alerts.Alerts {
			if a.Labels["alertname"] == "PodTraffic" && a.State == "firing" {
				pods = append(pods, a.Labels["pod"])
			}
		}
		sort.Strings(pods)
		assert.Equal(c, allPods, pods, "firing PodTraffic alerts by pod")
	}, 30*time.Second, time.Second, "/api/v1/alerts through thanos query")
	// Thanos adds external labels to rules, not to alert instances (a
	// sidecar's or ruler's alerts lack them as well); say which it is.
	var withNode int
	for _, a := range alerts.Alerts {
		if a.Labels["node"] != "" {
			withNode++
			assert.Equal(t, nodeOf[a.Labels["pod"]], a.Labels["node"], "alert of pod %s", a.Labels["pod"])
		}
	}
	t.Logf("%d of %d alert instances carry a node label", withNode, len(alerts.Alerts))

	// /api/v1/query_exemplars: every pod's trace ID, on a series with its
	// node's labels, the same set Prometheus returns.
	q := url.Values{"query": {`mesh_requests_total{job="mesh"}`}, "start": {thanosUnix(r.t0)}, "end": {thanosUnix(time.Now())}}
	exemplarSet := func(c assert.TestingT, base string) []string {
		var data []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []struct {
				Labels map[string]string `json:"labels"`
			} `json:"exemplars"`
		}
		w := thanosGetDataC(c, base+"/api/v1/query_exemplars?"+q.Encode(), &data)
		assert.Empty(c, w, "exemplars warnings at %s", base)
		seen := map[string]bool{}
		for _, d := range data {
			for _, e := range d.Exemplars {
				seen[fmt.Sprintf("%s node=%s cluster=%s trace_id=%s", d.SeriesLabels["pod"], d.SeriesLabels["node"], d.SeriesLabels["cluster"], e.Labels["trace_id"])] = true
			}
		}
		return slices.Sorted(maps.Keys(seen))
	}
	var want []string
	for _, p := range r.pods {
		want = append(want, fmt.Sprintf("%s node=%s cluster=c1 trace_id=%s", p.Name, p.Node, p.TraceID))
	}
	sort.Strings(want)
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, want, exemplarSet(c, r.prom.URL()), "prometheus")
		assert.Equal(c, want, exemplarSet(c, r.tq.URL()), "thanos query")
	}, 30*time.Second, time.Second, "exemplars")
}

// testPartialResponse stops one agent with SIGTERM: both Thanos Queries
// still answer with the other two nodes; the one with strict endpoints
// (always asked, whatever the health check says) says in warnings that the
// answer is partial. Restarted on the same ports, the agent is in the
// answers again within a bound derived from Thanos's endpoint loop and
// gRPC's reconnect backoff.
func (r *thanosRig) testPartialResponse(t *testing.T) {
	const q = `count by (node) (up{job="mesh"})`
	down := r.agents[1]
	// What the agent served before the stop, to ask again after its
	// restart (its store's WAL and head chunks come back from disk).
	const before = `sum by (node) (count_over_time(mesh_requests_total{job="mesh"}[1m]))`
	beforeAt := time.Now().Add(-3 * time.Second)
	servedBefore, err := thanosInstant(t.Context(), r.tq.URL(), before, beforeAt)
	require.NoError(t, err)
	require.Len(t, servedBefore.byLabel("node"), 3, "before the stop")
	stopped := time.Now()
	down.stop(t)
	t.Logf("agent %s ended %v after SIGTERM", down.node(), time.Since(stopped).Round(time.Millisecond))

	without := map[string]float64{"n1": 3, "n3": 3}
	// Strict endpoints: the stopped agent is still asked, its error is a
	// partial-response warning.
	res, err := thanosInstant(t.Context(), r.tqStrict.URL(), q, time.Time{})
	require.NoError(t, err, "strict thanos query answers with one node down")
	assert.Equal(t, without, res.byLabel("node"))
	if assert.NotEmpty(t, res.Warnings, "partial response warning (strict endpoints)") {
		t.Logf("strict warnings: %q", res.Warnings)
		assert.Contains(t, strings.Join(res.Warnings, "\n"), down.storeAPI(), "the warning names the stopped endpoint")
	}
	// Asked not to answer partially, it fails instead.
	var strictAbort struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	code, err := thanosGetJSON(t.Context(), r.tqStrict.URL()+"/api/v1/query?"+url.Values{"query": {q}, "partial_response": {"false"}}.Encode(), &strictAbort)
	require.NoError(t, err)
	assert.NotEqual(t, http.StatusOK, code, "partial_response=false with a node down")
	assert.Equal(t, "error", strictAbort.Status)
	t.Logf("partial_response=false: %d %s", code, strictAbort.Error)
	// Plain endpoints: the stopped agent is asked until the next health
	// check drops it (then answers are partial without a warning).
	res, err = thanosInstant(t.Context(), r.tq.URL(), q, time.Time{})
	require.NoError(t, err, "thanos query answers with one node down")
	assert.Equal(t, without, res.byLabel("node"))
	t.Logf("non-strict warnings right after the stop: %q", res.Warnings)
	// The other APIs answer partially as well.
	var rulesData any
	w := thanosGetDataC(t, r.tqStrict.URL()+"/api/v1/rules", &rulesData)
	t.Logf("strict rules warnings: %q", w)
	assert.NotEmpty(t, w, "rules: partial response warning (strict endpoints)")

	// Once Thanos Query's health check has seen the endpoint fail, both
	// still answer: strict with the warning, plain without the endpoint
	// (Thanos no longer asks it, so its answer is partial without a
	// warning: that is Thanos's behaviour for non-strict endpoints).
	for name, base := range map[string]string{"strict": r.tqStrict.URL(), "plain": r.tq.URL()} {
		require.EventuallyWithTf(t, func(c *assert.CollectT) {
			assert.NotEmpty(c, thanosStoreError(c, base, down.storeAPI()), "lastError of %s", down.storeAPI())
		}, 3*thanosEndpointInterval, 100*time.Millisecond, "%s: the health check does not mark %s", name, down.storeAPI())
		res, err := thanosInstant(t.Context(), base, q, time.Time{})
		require.NoError(t, err, "%s: thanos query answers after the health check", name)
		assert.Equal(t, without, res.byLabel("node"), name)
		if name == "strict" {
			assert.NotEmpty(t, res.Warnings, "strict: partial response warning after the health check")
		}
		t.Logf("%s warnings after the health check: %q", name, res.Warnings)
	}

	down.start(t)
	restarted := time.Now()
	downtime := restarted.Sub(stopped)
	// Derived bound. gRPC (Thanos's client sets no backoff of its own)
	// retries a failed connection after min(1s·1.6^n, 120s) ±20 %, n the
	// failures so far; n is bounded by how many such waits fit in the
	// downtime. Strict: the first attempt after the pending wait succeeds
	// and the next query is answered (queries trigger connects). Plain: on
	// top, an endpoint update must run its Info call (every
	// thanosEndpointInterval, each bounded by the same) once connected.
	backoff := grpcBackoffBound(downtime)
	strictBound := backoff + time.Second // + one poll and query
	plainBound := backoff + 2*thanosEndpointInterval + time.Second
	t.Logf("downtime %v: gRPC backoff at most %v; bound %v (strict), %v (plain endpoints)", downtime.Round(time.Millisecond), backoff.Round(time.Millisecond), strictBound.Round(time.Millisecond), plainBound.Round(time.Millisecond))

	all := map[string]float64{"n1": 3, "n2": 3, "n3": 3}
	var wg sync.WaitGroup
	for name, tc := range map[string]struct {
		base  string
		bound time.Duration
	}{"strict": {r.tqStrict.URL(), strictBound}, "plain": {r.tq.URL(), plainBound}} {
		wg.Go(func() {
			var last string
			for {
				res, err := thanosInstant(t.Context(), tc.base, q, time.Time{})
				if err == nil && maps.Equal(all, res.byLabel("node")) && len(res.Warnings) == 0 {
					found := time.Since(restarted)
					t.Logf("%s: %s found again %v after its restart", name, down.node(), found.Round(time.Millisecond))
					assert.LessOrEqualf(t, found, tc.bound, "%s: rediscovery bound", name)
					return
				}
				last = fmt.Sprintf("err %v, result %v, warnings %q", err, res.byLabel("node"), res.Warnings)
				if time.Since(restarted) > tc.bound+30*time.Second {
					t.Errorf("%s: %s not found again %v after its restart: %s", name, down.node(), time.Since(restarted).Round(time.Second), last)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	wg.Wait()

	// The restarted agent serves what it stored before the stop.
	servedAfter, err := thanosInstant(t.Context(), r.tq.URL(), before, beforeAt)
	require.NoError(t, err)
	assert.Empty(t, servedAfter.Warnings)
	assert.Equal(t, servedBefore.byLabel("node"), servedAfter.byLabel("node"), "%s at %s, before the stop and after the restart", before, beforeAt.Format(time.TimeOnly))
}

// thanosStoreError returns the lastError Thanos Query's /api/v1/stores
// shows for the endpoint addr ("" when none, or not listed).
func thanosStoreError(c assert.TestingT, base, addr string) string {
	var stores map[string][]struct {
		Name      string `json:"name"`
		LastError any    `json:"lastError"`
	}
	thanosGetDataC(c, base+"/api/v1/stores", &stores)
	for _, list := range stores {
		for _, s := range list {
			if s.Name == addr && s.LastError != nil {
				return fmt.Sprint(s.LastError)
			}
		}
	}
	return ""
}

// grpcBackoffBound is the longest wait gRPC-Go's default connection
// backoff (base 1s, multiplier 1.6, jitter ±0.2, max 120s) can have
// pending after failing to connect for d: the n-th failure is followed by
// a wait of at most 1.2·min(1.6^(n-1), 120) s, and n failures take at least
// 0.8·Σ_{j<n-1} 1.6^j s.
func grpcBackoffBound(d time.Duration) time.Duration {
	wait := func(n int) float64 { return math.Min(math.Pow(1.6, float64(n-1)), 120) }
	n, spent := 1, 0.0
	for {
		next := spent + 0.8*wait(n)
		if next > d.Seconds() {
			break
		}
		spent, n = next, n+1
	}
	return time.Duration(1.2 * wait(n) * float64(time.Second))
}

// classicQuantile is histogram_quantile over cumulative bucket counts with
// the given upper bounds, as Prometheus computes it: linear interpolation
// inside the bucket that holds the rank, the lower bound of the first
// bucket taken as 0, and the last finite bound when the rank is in +Inf.
func classicQuantile(q float64, bounds, counts []float64) float64 {
	rank := q * counts[len(counts)-1]
	b := sort.Search(len(counts), func(i int) bool { return counts[i] >= rank })
	if b == len(counts)-1 {
		return bounds[len(bounds)-2]
	}
	lower, prev := 0.0, 0.0
	if b > 0 {
		lower, prev = bounds[b-1], counts[b-1]
	}
	return lower + (bounds[b]-lower)*(rank-prev)/(counts[b]-prev)
}

// thanosVector is an instant query's answer: its series and warnings.
type thanosVector struct {
	Result []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	Warnings []string
}

// byLabel maps the value of label to each series' value.
func (v thanosVector) byLabel(label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range v.Result {
		str, _ := s.Value[1].(string)
		f, _ := strconv.ParseFloat(str, 64)
		out[s.Metric[label]] = f
	}
	return out
}

// thanosInstant runs an instant query at at (zero: now), bounded in time.
func thanosInstant(ctx context.Context, base, q string, at time.Time) (thanosVector, error) {
	params := url.Values{"query": {q}}
	if !at.IsZero() {
		params.Set("time", thanosUnix(at))
	}
	var resp struct {
		Status   string   `json:"status"`
		Error    string   `json:"error"`
		Warnings []string `json:"warnings"`
		Data     struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	code, err := thanosGetJSON(ctx, base+"/api/v1/query?"+params.Encode(), &resp)
	if err != nil {
		return thanosVector{}, err
	}
	if code != http.StatusOK || resp.Status != "success" {
		return thanosVector{}, fmt.Errorf("%s: status %d %s: %s", q, code, resp.Status, resp.Error)
	}
	if resp.Data.ResultType != "vector" {
		return thanosVector{}, fmt.Errorf("%s: result type %q", q, resp.Data.ResultType)
	}
	v := thanosVector{Warnings: resp.Warnings}
	v.Result = resp.Data.Result
	return v, nil
}

// thanosGetData decodes the data of a successful API answer into v and
// fails the test on any error or warning.
func thanosGetData(t *testing.T, u string, v any) {
	t.Helper()
	w := thanosGetDataC(t, u, v)
	assert.Emptyf(t, w, "warnings of %s", u)
}

// thanosGetDataC decodes the data of a successful API answer into v and
// returns its warnings; failures go to c.
func thanosGetDataC(c assert.TestingT, u string, v any) []string {
	var resp struct {
		Status   string   `json:"status"`
		Error    string   `json:"error"`
		Warnings []string `json:"warnings"`
		Data     any      `json:"data"`
	}
	resp.Data = v
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := thanosGetJSON(ctx, u, &resp)
	if !assert.NoError(c, err, u) {
		return nil
	}
	assert.Equal(c, http.StatusOK, code, "%s: %s", u, resp.Error)
	assert.Equal(c, "success", resp.Status, "%s: %s", u, resp.Error)
	return resp.Warnings
}

// thanosSeriesSet returns the canonical strings of label sets, sorted.
func thanosSeriesSet(series []map[string]string) []string {
	out := make([]string, 0, len(series))
	for _, s := range series {
		out = append(out, seriesString(s))
	}
	return slices.SortedFunc(slices.Values(out), cmp.Compare[string])
}

// thanosGetJSON decodes the JSON answer of u into v whatever its status
// (an API error's body says what went wrong).
func thanosGetJSON(ctx context.Context, u string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("%s: status %d, %w: %.300s", u, resp.StatusCode, err, body)
	}
	return resp.StatusCode, nil
}

func thanosUnix(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}
