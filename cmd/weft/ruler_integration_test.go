//go:build integration

// The acceptance test of issue #19: node rules on the node, cluster rules
// split by `weft rules split` and finished by a stock Thanos Ruler
// (v0.42.4) over a stock Thanos Query over three weft agents, alerts in a
// real Alertmanager (0.25).
//
// Nine pods on three nodes (reviews: two per node, ratings: one per node),
// each serving app_requests_total and app_errors_total as straight lines
// (rate × seconds since the test began), app_errors_total with an exemplar
// that carries the pod's trace ID. The numbers:
//
//	node  pod        requests/s  errors/s
//	n1    reviews-0  50          1
//	n1    reviews-1  50          1
//	n1    ratings-0   1          1      <- a failing replica
//	n2    reviews-2  50          1
//	n2    reviews-3  50          1
//	n2    ratings-1  10          0
//	n3    reviews-4  50          1
//	n3    reviews-5  50          1
//	n3    ratings-2  10          0
//
// ServiceErrors (cluster): sum by (service) (errors/s) > 4. Each node sees
// 2/s of reviews and at most 1/s of ratings: evaluated per node it never
// fires; the cluster total of reviews is 6/s, of ratings 1/s: it fires
// once, for reviews. (A ratio of sums cannot show this: the cluster's
// ratio is a weighted mean of the nodes' ratios, so when every node is
// under a threshold so is the cluster. The threshold is on a total.)
//
// PodErrorRatio (node, by (service, pod)): errors / requests > 0.5: only
// ratings-0 (1.0; every other pod is at most 0.02), on n1 only, while the
// service ratings is fine cluster-wide (1/s, under ServiceErrors' 4).
//
// JobXAbsent (cluster, absent(up{job="x"})): only n1 scrapes job x. Every
// other node alone would fire it; over Thanos Query nobody does.
// JobYAbsent (absent(up{job="y"}), no node scrapes y) is the control: it
// fires once, from the ruler, which shows absent is evaluated at all. Both
// have for: 10s, as absent alerts do in practice (kube-prometheus: 15m):
// the ruler may evaluate before n1's first scrape of x is visible through
// Thanos Query (a scrape interval plus one Query endpoint interval, 7 s),
// and a for shorter than that would fire at start-up.

package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
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
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/weftobs/weft/internal/backends"
	"github.com/weftobs/weft/internal/gobuild"
	"github.com/weftobs/weft/internal/loopback"
)

const (
	// rulerScrapeInterval is every agent's scrape interval.
	rulerScrapeInterval = 2 * time.Second
	// rulerEvalInterval is the rule group's interval (agents and ruler: the
	// split keeps a group's interval).
	rulerEvalInterval = 2 * time.Second
	// rulerRateWindow is the rules' rate() range.
	rulerRateWindow = 30 * time.Second
	// rulerRelTolerance bounds |thanos query - prometheus| / |prometheus|
	// for a cluster rule's expression, split vs original; why 2 %: below.
	rulerRelTolerance = 0.02
	// rulerCompareRounds comparisons rulerCompareEvery apart: 30 s.
	rulerCompareRounds = 7
	rulerCompareEvery  = 5 * time.Second
)

// The tolerance of the split against one Prometheus, 2 %. As in
// thanos_integration_test.go (thanosRelTolerance), every counter is a
// straight line, so rate() over a window covered by samples is the slope
// exactly but for δ, the time from a scrape's start (the sample's
// timestamp) to the target's answer (the value): a series' rate is off by
// k·(δlast − δfirst)/(tlast − tfirst), and a sum of series by at most the
// largest such relative error. Here the window is 30 s, not 1m, and with
// 2 s scrapes the first and last samples of a window are at least
// 30 − 2·2 = 26 s apart. The two sides scrape independently (the agents
// for the partials, the reference for the original), so their errors add:
// 2 % of 26 s allows 520 ms of (δlast − δfirst) over both sides together,
// where loopback answers take milliseconds and 10–100 ms under load. The
// partial is evaluated at most an evaluation interval before the query
// time, over its own 30 s window; on straight lines that shift changes
// nothing. The faults the comparison is for are far larger: one reviews
// pod of six is 16.7 % of its service, a node missing from the sum a
// third of reviews and all of ratings (ratings-0 on n1 alone errs), a
// node counted twice as much again.

// rulerRules is the file every agent loads and `weft rules split` reads.
const rulerRules = `groups:
  - name: app
    interval: 2s
    rules:
      - alert: ServiceErrors
        expr: sum by (service) (rate(app_errors_total{job="app"}[30s])) > 4
        labels:
          severity: page
      - alert: PodErrorRatio
        expr: sum by (service, pod) (rate(app_errors_total{job="app"}[30s])) / sum by (service, pod) (rate(app_requests_total{job="app"}[30s])) > 0.5
        labels:
          severity: ticket
      - alert: JobXAbsent
        expr: absent(up{job="x"})
        for: 10s
      - alert: JobYAbsent
        expr: absent(up{job="y"})
        for: 10s
`

// rulerAgentConfig is one node's agent: pod_scrape of the node's pods (job
// app) and, on n1 only, of job x; OTLP over HTTP for spans and logs; all
// into weft_store (external labels cluster and node); weft_rules with
// scope.cluster_rules: ruler, the node label on its alerts and the real
// Alertmanager; weft_query with the StoreAPI.
const rulerAgentConfig = `
extensions:
  health_check:
    endpoint: {{.Health}}
  weft_store:
    directory: {{.Dir}}/store
    external_labels:
      cluster: c1
      node: {{.Node}}
  weft_rules:
    store: weft_store
    rule_files: [{{.Rules}}]
    evaluation_interval: 2s
    reload_interval: 0s
    alertmanagers:
      - url: {{.Alertmanager}}
    external_labels:
      node: {{.Node}}
    scope:
      cluster_rules: ruler
  weft_query:
    http:
      endpoint: {{.Query}}
    store: weft_store
    store_api:
      endpoint: {{.StoreAPI}}
receivers:
  otlp:
    protocols:
      http:
        endpoint: {{.OTLP}}
  pod_scrape:
    scrape_interval: 2s
    scrape_configs:
      - job_name: app
        static_configs:
          - targets: [{{.AppTargets}}]
{{- if .XTarget}}
      - job_name: x
        static_configs:
          - targets: [{{.XTarget}}]
{{- end}}
exporters:
  weft_store: {}
service:
  extensions: [health_check, weft_store, weft_rules, weft_query]
  pipelines:
    metrics:
      receivers: [pod_scrape]
      exporters: [weft_store]
    traces:
      receivers: [otlp]
      exporters: [weft_store]
    logs:
      receivers: [otlp]
      exporters: [weft_store]
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
`

// rulerPod is one scrape target.
type rulerPod struct {
	Service, Name, Node string
	Req, Err            float64 // per second
	TraceID             string
	Addr                string
}

func rulerPods() []*rulerPod {
	pods := []*rulerPod{
		{Service: "reviews", Name: "reviews-0", Node: "n1", Req: 50, Err: 1},
		{Service: "reviews", Name: "reviews-1", Node: "n1", Req: 50, Err: 1},
		{Service: "ratings", Name: "ratings-0", Node: "n1", Req: 1, Err: 1},
		{Service: "reviews", Name: "reviews-2", Node: "n2", Req: 50, Err: 1},
		{Service: "reviews", Name: "reviews-3", Node: "n2", Req: 50, Err: 1},
		{Service: "ratings", Name: "ratings-1", Node: "n2", Req: 10, Err: 0},
		{Service: "reviews", Name: "reviews-4", Node: "n3", Req: 50, Err: 1},
		{Service: "reviews", Name: "reviews-5", Node: "n3", Req: 50, Err: 1},
		{Service: "ratings", Name: "ratings-2", Node: "n3", Req: 10, Err: 0},
	}
	for i, p := range pods {
		p.TraceID = fmt.Sprintf("%016x%016x", 0x5eed00+i, 0xfeed0000+i)
	}
	return pods
}

// serve starts the pod's OpenMetrics endpoint.
func (p *rulerPod) serve(t *testing.T, t0 time.Time) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s := time.Since(t0).Seconds()
		lbl := fmt.Sprintf(`service=%q,pod=%q`, p.Service, p.Name)
		var b strings.Builder
		b.WriteString("# TYPE app_requests counter\n")
		fmt.Fprintf(&b, "app_requests_total{%s} %g\n", lbl, p.Req*s)
		b.WriteString("# TYPE app_errors counter\n")
		fmt.Fprintf(&b, "app_errors_total{%s} %g # {trace_id=%q} 1\n", lbl, p.Err*s, p.TraceID)
		b.WriteString("# EOF\n")
		w.Header().Set("Content-Type", ctOM)
		_, _ = w.Write([]byte(b.String()))
	}))
	t.Cleanup(srv.Close)
	p.Addr = srv.Listener.Addr().String()
}

// rulerAgent is the template data of one agent.
type rulerAgent struct {
	Node, Health, Query, StoreAPI, OTLP, Dir string
	Rules, Alertmanager                      string
	AppTargets, XTarget                      string
	proc                                     *thanosAgent
}

// amAlert is an alert as Alertmanager's v2 API lists it.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	GeneratorURL string            `json:"generatorURL"`
	Status       struct {
		State string `json:"state"`
	} `json:"status"`
}

func (a amAlert) String() string {
	return fmt.Sprintf("%s gen=%s", seriesString(a.Labels), a.GeneratorURL)
}

// amAlerts lists Alertmanager's active alerts named alertname.
func amAlerts(c assert.TestingT, base, alertname string) []amAlert {
	var out []amAlert
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := thanosGetJSON(ctx, base+"/api/v2/alerts?"+url.Values{"filter": {fmt.Sprintf("alertname=%q", alertname)}}.Encode(), &out)
	assert.NoError(c, err)
	assert.Equal(c, http.StatusOK, code)
	return out
}

// promAlert is an alert of a Prometheus-style /api/v1/alerts.
type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

// apiAlerts returns the alerts of base's /api/v1/alerts by name.
func apiAlerts(c assert.TestingT, base string) map[string][]promAlert {
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	thanosGetDataC(c, base+"/api/v1/alerts", &data)
	out := map[string][]promAlert{}
	for _, a := range data.Alerts {
		out[a.Labels["alertname"]] = append(out[a.Labels["alertname"]], a)
	}
	return out
}

// sendEvidence sends one error span and one log record of traceID to the
// agent's OTLP/HTTP receiver, as the pod's SDK and its log shipper would.
func sendEvidence(t *testing.T, otlpAddr string, p *rulerPod) {
	t.Helper()
	var tid pcommon.TraceID
	raw, err := hex.DecodeString(p.TraceID)
	require.NoError(t, err)
	copy(tid[:], raw)
	now := time.Now()

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", p.Service)
	rs.Resource().Attributes().PutStr("k8s.pod.name", p.Name)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(tid)
	sp.SetSpanID(pcommon.SpanID{0xab, raw[15], 1, 2, 3, 4, 5, 6})
	sp.SetName("GET /" + p.Service)
	sp.SetKind(ptrace.SpanKindServer)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-20 * time.Millisecond)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	sp.Status().SetCode(ptrace.StatusCodeError)
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	postBody(t, "http://"+otlpAddr+"/v1/traces", "application/x-protobuf", body)

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", p.Service)
	rl.Resource().Attributes().PutStr("k8s.pod.name", p.Name)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
	lr.SetSeverityNumber(plog.SeverityNumberError)
	lr.SetSeverityText("ERROR")
	lr.Body().SetStr("upstream failed for " + p.Name)
	lr.SetTraceID(tid)
	body, err = plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	require.NoError(t, err)
	postBody(t, "http://"+otlpAddr+"/v1/logs", "application/x-protobuf", body)
}

// TestThanosRulerOverAgents is issue #19's live acceptance: see the file
// comment for the numbers.
func TestThanosRulerOverAgents(t *testing.T) {
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	thanosBin, err := backends.FindThanos()
	require.NoError(t, err)
	amBin, err := backends.FindAlertmanager()
	require.NoError(t, err)

	t0 := time.Now()
	pods := rulerPods()
	for _, p := range pods {
		p.serve(t, t0)
	}
	// Job x: one target, scraped by n1 only.
	x := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ctOM)
		_, _ = w.Write([]byte("# TYPE x_ok gauge\nx_ok 1\n# EOF\n"))
	}))
	t.Cleanup(x.Close)

	am, err := backends.StartAlertmanager(t.Context(), amBin, t.TempDir(), testLogWriter{t})
	require.NoError(t, err)
	t.Cleanup(am.Stop)

	work := t.TempDir()
	rulesPath := filepath.Join(work, "app.rules.yaml")
	require.NoError(t, os.WriteFile(rulesPath, []byte(rulerRules), 0o600))
	// The reference: one Prometheus 2.42 scraping every target of all three
	// nodes (job app: the nine pods; job x: n1's target) at the agents'
	// interval and evaluating the original rule file, the one the agents
	// load, unsplit. The cluster and node an agent adds as external labels
	// are target labels here, so both sides name every series the same. It
	// starts first: Prometheus hands discovered targets to its scrape pools
	// on a 5 s tick (discovery updates, scrape manager reloads), so its
	// first scrape comes seconds after it is ready.
	promBin, err := backends.FindPrometheus()
	require.NoError(t, err)
	var promCfg strings.Builder
	fmt.Fprintf(&promCfg, "rule_files: [%s]\nscrape_configs:\n  - job_name: app\n    scrape_interval: %s\n    static_configs:\n", rulesPath, rulerScrapeInterval)
	for _, node := range []string{"n1", "n2", "n3"} {
		var addrs []string
		for _, p := range pods {
			if p.Node == node {
				addrs = append(addrs, p.Addr)
			}
		}
		fmt.Fprintf(&promCfg, "      - targets: [%s]\n        labels: {cluster: c1, node: %s}\n", strings.Join(addrs, ", "), node)
	}
	fmt.Fprintf(&promCfg, "  - job_name: x\n    scrape_interval: %s\n    static_configs:\n      - targets: [%s]\n        labels: {cluster: c1, node: n1}\n", rulerScrapeInterval, x.Listener.Addr().String())
	refProm, err := backends.StartPrometheus(t.Context(), promBin, t.TempDir(), promCfg.String(), testLogWriter{t})
	require.NoError(t, err)
	t.Cleanup(refProm.Stop)

	bin := filepath.Join(work, "weft")
	require.NoError(t, gobuild.Build(t.Context(), ".", bin, ".", ""))

	// The cluster file, as an operator writes it: the built binary's
	// subcommand over the agents' rule file, with the agents' scope values
	// (the defaults).
	clusterPath := filepath.Join(work, "cluster.rules.yaml")
	split := exec.Command(bin, "rules", "split", "-o", clusterPath, rulesPath)
	var splitErr bytes.Buffer
	split.Stderr = &splitErr
	require.NoError(t, split.Run(), "weft rules split: %s", splitErr.String())
	clusterFile, err := os.ReadFile(clusterPath)
	require.NoError(t, err)
	t.Logf("weft rules split:\n%s\n%s", splitErr.String(), clusterFile)
	for _, want := range []string{`"ServiceErrors": cluster`, `"PodErrorRatio": node`, `"JobXAbsent": cluster`, `"JobYAbsent": cluster`} {
		assert.Contains(t, splitErr.String(), want, "scope summary")
	}
	for _, want := range []string{"alert: ServiceErrors", "weft:partial:", "alert: JobXAbsent", "alert: JobYAbsent", "partial_response_strategy: abort"} {
		assert.Contains(t, string(clusterFile), want, "cluster file")
	}
	assert.NotContains(t, string(clusterFile), "PodErrorRatio", "a node rule is not in the cluster file")

	var agents []*rulerAgent
	var storeAPIs []string
	for _, node := range []string{"n1", "n2", "n3"} {
		ports, err := loopback.FreeAddrs(4)
		require.NoError(t, err)
		a := &rulerAgent{
			Node: node, Health: ports[0], Query: ports[1], StoreAPI: ports[2], OTLP: ports[3], Dir: t.TempDir(),
			Rules: rulesPath, Alertmanager: am.URL(),
		}
		var addrs []string
		for _, p := range pods {
			if p.Node == node {
				addrs = append(addrs, p.Addr)
			}
		}
		a.AppTargets = strings.Join(addrs, ", ")
		if node == "n1" {
			a.XTarget = x.Listener.Addr().String()
		}
		cfg := filepath.Join(a.Dir, "weft.yaml")
		require.NoError(t, os.WriteFile(cfg, renderTemplate(t, rulerAgentConfig, a), 0o600))
		a.proc = &thanosAgent{Node: node, bin: bin, cfgPath: cfg, logT: t, Health: a.Health}
		a.proc.start(t)
		t.Cleanup(func() { a.proc.stop(t) })
		agents = append(agents, a)
		storeAPIs = append(storeAPIs, a.StoreAPI)
	}
	agentOf := map[string]*rulerAgent{}
	for _, a := range agents {
		agentOf[a.Node] = a
	}

	tq, err := backends.StartThanosQuery(t.Context(), thanosBin, t.TempDir(), storeAPIs, []string{"--query.partial-response"}, testLogWriter{t})
	require.NoError(t, err)
	t.Cleanup(tq.Stop)
	ruler, err := backends.StartThanosRuler(t.Context(), thanosBin, t.TempDir(), tq.URL(), am.URL(), []string{clusterPath}, []string{"--alert.query-url=" + tq.URL()}, testLogWriter{t})
	require.NoError(t, err)
	t.Cleanup(ruler.Stop)
	started := time.Now()

	// Every pod's series through Thanos Query. Bound: a scrape interval
	// for the first samples, and Thanos Query's first endpoint update
	// (thanosEndpointInterval) to list the agents, twice over for
	// slow starts.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		res, err := thanosInstant(t.Context(), tq.URL(), `count by (node) (app_errors_total{job="app"})`, time.Time{})
		if assert.NoError(c, err) {
			assert.Equal(c, map[string]float64{"n1": 3, "n2": 3, "n3": 3}, res.byLabel("node"))
		}
	}, 2*(rulerScrapeInterval+thanosEndpointInterval)+5*time.Second, 250*time.Millisecond, "thanos query sees every pod")

	// The alerts. Bound, from the moment everything runs (JobYAbsent's
	// for: 10s is shorter than the rate window): a rate window
	// filled with samples (rulerRateWindow + 2 scrape intervals: until then
	// rate() underestimates, which only delays firing), one node group
	// evaluation to record the partial, one ruler evaluation over it
	// (each rulerEvalInterval), the ruler's and the agents' send (at once on
	// firing) and Alertmanager's group_wait (0s in backends'
	// configuration), plus one Thanos Query endpoint interval for the
	// partials' freshness and 10 s of slack for process scheduling.
	alertBound := rulerRateWindow + 2*rulerScrapeInterval + 2*rulerEvalInterval + thanosEndpointInterval + 10*time.Second
	deadline := started.Add(alertBound)
	t.Logf("alerts expected by %s (%v after the ruler started)", deadline.Format(time.TimeOnly), alertBound)

	t.Run("ClusterAlertFromRulerOnce", func(t *testing.T) {
		var got []amAlert
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			got = amAlerts(c, am.URL(), "ServiceErrors")
			assert.Len(c, got, 1)
		}, time.Until(deadline)+time.Second, 250*time.Millisecond, "ServiceErrors in Alertmanager")
		a := got[0]
		t.Logf("alertmanager: %s", a)
		assert.Equal(t, "reviews", a.Labels["service"])
		assert.Equal(t, "r1", a.Labels["ruler"], "sent by Thanos Ruler (its external label)")
		assert.NotContains(t, a.Labels, "node", "no node's alert")
		assert.Equal(t, "page", a.Labels["severity"])
		assert.Equal(t, "active", a.Status.State)
		// --alert.query-url: the ruler's alerts link to Thanos Query's graph
		// of the expression; the agents' have no such link.
		assert.True(t, strings.HasPrefix(a.GeneratorURL, tq.URL()+"/graph?g0.expr="), "generatorURL %s", a.GeneratorURL)
		assert.Contains(t, a.GeneratorURL, url.QueryEscape("weft:partial:"), "the cluster expression finishes the nodes' partials")

		// Per node the expression is under the threshold everywhere: each
		// agent's own query API (its node's series only) returns nothing.
		const expr = `sum by (service) (rate(app_errors_total{job="app"}[30s])) > 4`
		for _, ag := range agents {
			res, err := thanosInstant(t.Context(), "http://"+ag.Query, expr, time.Time{})
			require.NoError(t, err)
			assert.Empty(t, res.Result, "%s alone fires nothing", ag.Node)
			res, err = thanosInstant(t.Context(), "http://"+ag.Query, `sum by (service) (rate(app_errors_total{job="app"}[30s]))`, time.Time{})
			require.NoError(t, err)
			t.Logf("%s alone: %v", ag.Node, res.byLabel("service"))
		}
		res, err := thanosInstant(t.Context(), tq.URL(), `sum by (service) (rate(app_errors_total{job="app"}[30s]))`, time.Time{})
		require.NoError(t, err)
		t.Logf("thanos query: %v", res.byLabel("service"))

		// No agent fires it; each lists it as a cluster rule and records
		// its partial.
		for _, ag := range agents {
			al := apiAlerts(t, "http://"+ag.Query)
			assert.Empty(t, al["ServiceErrors"], "%s fires ServiceErrors", ag.Node)
			var rules struct {
				Groups []struct {
					Rules []struct {
						Name, Type, Health, Scope, PartialOf string
						ScopeReason                          string `json:"scopeReason"`
					} `json:"rules"`
				} `json:"groups"`
			}
			thanosGetData(t, "http://"+ag.Query+"/api/v1/rules", &rules)
			scope, partials := map[string]string{}, 0
			for _, g := range rules.Groups {
				for _, r := range g.Rules {
					if r.PartialOf != "" {
						partials++
						continue
					}
					scope[r.Name] = r.Scope
				}
			}
			assert.Equal(t, map[string]string{"ServiceErrors": "cluster", "PodErrorRatio": "node", "JobXAbsent": "cluster", "JobYAbsent": "cluster"}, scope, ag.Node)
			assert.Positive(t, partials, "%s records partials", ag.Node)
		}
		// The ruler's own view: it fires ServiceErrors for reviews only.
		al := apiAlerts(t, ruler.URL())
		var svc []string
		for _, a := range al["ServiceErrors"] {
			if a.State == "firing" {
				svc = append(svc, a.Labels["service"])
			}
		}
		assert.Equal(t, []string{"reviews"}, svc, "ruler's firing ServiceErrors")
	})

	t.Run("NodeAlertOnItsNodeOnly", func(t *testing.T) {
		var got []amAlert
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			got = amAlerts(c, am.URL(), "PodErrorRatio")
			assert.Len(c, got, 1)
		}, time.Until(deadline)+time.Second, 250*time.Millisecond, "PodErrorRatio in Alertmanager")
		a := got[0]
		t.Logf("alertmanager: %s", a)
		assert.Equal(t, "ratings-0", a.Labels["pod"])
		assert.Equal(t, "n1", a.Labels["node"])
		assert.NotContains(t, a.Labels, "ruler", "a node rule is not the ruler's")
		for _, ag := range agents {
			var pods []string
			for _, a := range apiAlerts(t, "http://"+ag.Query)["PodErrorRatio"] {
				if a.State == "firing" {
					pods = append(pods, a.Labels["pod"])
				}
			}
			if ag.Node == "n1" {
				assert.Equal(t, []string{"ratings-0"}, pods, ag.Node)
			} else {
				assert.Empty(t, pods, ag.Node)
			}
		}
		assert.Empty(t, apiAlerts(t, ruler.URL())["PodErrorRatio"], "the ruler does not evaluate node rules")
		// The service ratings is fine cluster-wide: no ServiceErrors for it.
		for _, a := range amAlerts(t, am.URL(), "ServiceErrors") {
			assert.NotEqual(t, "ratings", a.Labels["service"])
		}
	})

	t.Run("AbsentNoFalseAlert", func(t *testing.T) {
		// The control fires once, from the ruler: absent is evaluated.
		var got []amAlert
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			got = amAlerts(c, am.URL(), "JobYAbsent")
			assert.Len(c, got, 1)
		}, time.Until(deadline)+time.Second, 250*time.Millisecond, "JobYAbsent in Alertmanager")
		assert.Equal(t, "r1", got[0].Labels["ruler"])
		assert.Equal(t, "y", got[0].Labels["job"])
		var rr struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		}
		thanosGetData(t, ruler.URL()+"/api/v1/rules", &rr)
		health := map[string]string{}
		for _, g := range rr.Groups {
			for _, r := range g.Rules {
				health[r.Name] = r.Health + r.LastError
			}
		}
		assert.Equal(t, "ok", health["JobXAbsent"], "the ruler evaluates JobXAbsent")
		// By now the ruler has evaluated JobXAbsent as often as JobYAbsent
		// (same group): nothing anywhere.
		assert.Empty(t, amAlerts(t, am.URL(), "JobXAbsent"), "alertmanager")
		assert.Empty(t, apiAlerts(t, ruler.URL())["JobXAbsent"], "ruler")
		for _, ag := range agents {
			assert.Empty(t, apiAlerts(t, "http://"+ag.Query)["JobXAbsent"], ag.Node)
			assert.Empty(t, apiAlerts(t, "http://"+ag.Query)["JobYAbsent"], ag.Node)
			// What each node alone would answer: n2 and n3 have no job x.
			res, err := thanosInstant(t.Context(), "http://"+ag.Query, `absent(up{job="x"})`, time.Time{})
			require.NoError(t, err)
			assert.Equal(t, ag.Node != "n1", len(res.Result) == 1, "%s alone: absent(up{job=\"x\"}) = %v", ag.Node, res.Result)
		}
	})

	t.Run("EvidenceFromExemplarsToSpansAndLogs", func(t *testing.T) {
		for _, p := range pods {
			sendEvidence(t, agentOf[p.Node].OTLP, p)
		}
		alert := amAlerts(t, am.URL(), "ServiceErrors")
		require.Len(t, alert, 1)
		// The alert's labels, less the ruler's and the alert's own, select
		// the exemplars of the rule's error series.
		sel := []string{`job="app"`}
		for _, k := range slices.Sorted(maps.Keys(alert[0].Labels)) {
			if k != "alertname" && k != "ruler" && k != "severity" {
				sel = append(sel, fmt.Sprintf("%s=%q", k, alert[0].Labels[k]))
			}
		}
		q := "app_errors_total{" + strings.Join(sel, ",") + "}"
		type hit struct{ node, pod, traceID string }
		var hits []hit
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			hits = nil
			var data []struct {
				SeriesLabels map[string]string `json:"seriesLabels"`
				Exemplars    []struct {
					Labels map[string]string `json:"labels"`
				} `json:"exemplars"`
			}
			params := url.Values{"query": {q}, "start": {thanosUnix(t0)}, "end": {thanosUnix(time.Now())}}
			w := thanosGetDataC(c, tq.URL()+"/api/v1/query_exemplars?"+params.Encode(), &data)
			assert.Empty(c, w)
			seen := map[hit]bool{}
			for _, d := range data {
				for _, e := range d.Exemplars {
					seen[hit{d.SeriesLabels["node"], d.SeriesLabels["pod"], e.Labels["trace_id"]}] = true
				}
			}
			for h := range seen {
				hits = append(hits, h)
			}
			assert.Len(c, hits, 6, "one trace per reviews pod")
		}, 10*time.Second, 250*time.Millisecond, "exemplars of %s through thanos query", q)
		sort.Slice(hits, func(i, j int) bool { return hits[i].pod < hits[j].pod })
		want := map[string]*rulerPod{}
		for _, p := range pods {
			want[p.TraceID] = p
		}
		for _, h := range hits {
			p := want[h.traceID]
			if !assert.NotNil(t, p, "trace %s", h.traceID) {
				continue
			}
			assert.Equal(t, p.Name, h.pod)
			assert.Equal(t, p.Node, h.node)
			// The node the exemplar's series names holds the trace: spans,
			// log lines and the exemplar. The store indexes within
			// milliseconds of the export; bound: 5 s.
			var corr struct {
				TraceID string `json:"traceID"`
				Trace   struct {
					Spans []struct {
						OperationName string `json:"operationName"`
					} `json:"spans"`
				} `json:"trace"`
				Logs      []map[string]any `json:"logs"`
				Exemplars []map[string]any `json:"exemplars"`
			}
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				thanosGetDataC(c, "http://"+agentOf[h.node].Query+"/api/v1/correlate/"+h.traceID, &corr)
				assert.Len(c, corr.Trace.Spans, 1, "spans")
				assert.Len(c, corr.Logs, 1, "logs")
				assert.NotEmpty(c, corr.Exemplars, "exemplars")
			}, 5*time.Second, 100*time.Millisecond, "correlate %s on %s", h.traceID, h.node)
			t.Logf("exemplar %s (%s on %s) -> %d span(s) %q, %d log line(s), %d exemplar(s)", h.traceID, h.pod, h.node, len(corr.Trace.Spans), corr.Trace.Spans, len(corr.Logs), len(corr.Exemplars))
			// The other nodes know nothing of it.
			for _, ag := range agents {
				if ag.Node == h.node {
					continue
				}
				code, err := thanosGetJSON(t.Context(), "http://"+ag.Query+"/api/v1/correlate/"+h.traceID, &map[string]any{})
				require.NoError(t, err)
				assert.Equal(t, http.StatusNotFound, code, "%s on %s", h.traceID, ag.Node)
			}
		}
	})

	// Issue #19's acceptance, bullet 1: for every cluster rule, the split
	// (the agents' partials, finished over Thanos Query by the cluster
	// file's expression) gives what the original expression gives on one
	// Prometheus holding all nodes' data, at 7 times over 30 s.
	//
	// Alignment. Each round has a query time T. The round waits until every
	// agent's, the ruler's and the reference's group has evaluated at or
	// after T (lastEvaluation ≥ T; a group's lastEvaluation is its last
	// evaluation's start, recorded when it ends): then every partial sample
	// at or before T is written, and both alert lists are the state of an
	// evaluation at or after T. Bound: one evaluation interval plus 3 s of
	// slack. Both expressions are then queried at T itself: the
	// reference's over its own samples up to T, Thanos Query's over the
	// partials' last samples at or before T, which the round checks are no
	// older than two evaluation intervals (one, if no evaluation is late).
	// The alert lists are read after the wait and compared as sets of
	// firing alerts (the ruler's labels less its external label ruler).
	t.Run("SplitMatchesOnePrometheus", func(t *testing.T) {
		type rulesData struct {
			Groups []struct {
				Name           string    `json:"name"`
				LastEvaluation time.Time `json:"lastEvaluation"`
				Rules          []struct {
					Name      string `json:"name"`
					Query     string `json:"query"`
					Type      string `json:"type"`
					PartialOf string `json:"partialOf"`
				} `json:"rules"`
			} `json:"groups"`
		}
		// The cluster rules: the ruler's (the split file's), with the
		// original expression of the same rule from the reference.
		var rr, pr rulesData
		thanosGetData(t, ruler.URL()+"/api/v1/rules", &rr)
		thanosGetData(t, refProm.URL()+"/api/v1/rules", &pr)
		orig := map[string]string{}
		for _, g := range pr.Groups {
			for _, r := range g.Rules {
				orig[r.Name] = r.Query
			}
		}
		type pair struct{ name, split, orig string }
		var pairs []pair
		cluster := map[string]bool{}
		p := parser.NewParser(parser.Options{})
		for _, g := range rr.Groups {
			for _, r := range g.Rules {
				cluster[r.Name] = true
				require.Contains(t, orig, r.Name, "the reference evaluates %s", r.Name)
				pairs = append(pairs, pair{r.Name, r.Query, orig[r.Name]})
				// A threshold's left side too: the values it filters out
				// (ratings' 1/s under ServiceErrors' 4) are compared as well.
				se, err := p.ParseExpr(r.Query)
				require.NoError(t, err)
				oe, err := p.ParseExpr(orig[r.Name])
				require.NoError(t, err)
				sb, ok1 := se.(*parser.BinaryExpr)
				ob, ok2 := oe.(*parser.BinaryExpr)
				if ok1 && ok2 && sb.Op.IsComparisonOperator() && ob.Op.IsComparisonOperator() && !sb.ReturnBool && !ob.ReturnBool {
					_, n1 := sb.RHS.(*parser.NumberLiteral)
					_, n2 := ob.RHS.(*parser.NumberLiteral)
					if n1 && n2 {
						pairs = append(pairs, pair{r.Name + " (left of the threshold)", sb.LHS.String(), ob.LHS.String()})
					}
				}
			}
		}
		require.Equal(t, map[string]bool{"ServiceErrors": true, "JobXAbsent": true, "JobYAbsent": true}, cluster, "the cluster rules")
		for _, pp := range pairs {
			t.Logf("%s: thanos query %q vs prometheus %q", pp.name, pp.split, pp.orig)
		}

		groupsEvaluated := func(c assert.TestingT, base string, at time.Time) {
			var d rulesData
			thanosGetDataC(c, base+"/api/v1/rules", &d)
			if assert.NotEmpty(c, d.Groups, base) {
				for _, g := range d.Groups {
					assert.False(c, g.LastEvaluation.Before(at), "%s group %s last evaluated %s, before %s", base, g.Name, g.LastEvaluation.Format(time.StampMilli), at.Format(time.StampMilli))
				}
			}
		}
		firing := func(base string, strip string) []string {
			var out []string
			for name, as := range apiAlerts(t, base) {
				if !cluster[name] {
					continue
				}
				for _, a := range as {
					if a.State != "firing" {
						continue
					}
					ls := maps.Clone(a.Labels)
					delete(ls, strip)
					out = append(out, seriesString(ls))
				}
			}
			slices.Sort(out)
			return out
		}

		// The first round waits for full rate windows on both sides. Until
		// a scraper's samples cover a window, rate() extrapolates short of
		// the window's start and underestimates by how much is missing,
		// which differs between the reference and the agents, whose first
		// scrapes are seconds apart. The first round is a rate window, an
		// evaluation interval (the partial's window ends up to one before
		// T) and a scrape interval (extrapolation reaches the window's start
		// from up to 1.1 sample intervals in) after the last series' first
		// sample, on either side.
		lastStart := time.Time{}
		for _, base := range []string{refProm.URL(), tq.URL()} {
			var m struct {
				Result []struct {
					Values [][2]any `json:"values"`
				} `json:"result"`
			}
			thanosGetData(t, base+"/api/v1/query?"+url.Values{"query": {`app_errors_total{job="app"}[5m]`}}.Encode(), &m)
			require.Len(t, m.Result, len(pods), "%s: every pod's series", base)
			for _, s := range m.Result {
				require.NotEmpty(t, s.Values)
				sec, ok := s.Values[0][0].(float64)
				require.True(t, ok, "timestamp %v", s.Values[0][0])
				if first := time.UnixMilli(int64(sec * 1000)); first.After(lastStart) {
					lastStart = first
				}
			}
		}
		first := lastStart.Add(rulerRateWindow + rulerEvalInterval + rulerScrapeInterval).Truncate(time.Second).Add(time.Second)
		t.Logf("last series' first sample at %s; rounds from %s every %v", lastStart.Format(time.StampMilli), first.Format(time.StampMilli), rulerCompareEvery)
		require.Less(t, time.Until(first), rulerRateWindow+rulerEvalInterval+rulerScrapeInterval+time.Second, "first round too far ahead")
		for round := range rulerCompareRounds {
			at := first.Add(time.Duration(round) * rulerCompareEvery)
			time.Sleep(time.Until(at))
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				for _, ag := range agents {
					groupsEvaluated(c, "http://"+ag.Query, at)
				}
				groupsEvaluated(c, ruler.URL(), at)
				groupsEvaluated(c, refProm.URL(), at)
			}, rulerEvalInterval+3*time.Second, 100*time.Millisecond, "round %d: every group evaluated at or after %s", round, at.Format(time.StampMilli))

			// The partials are fresh on every node.
			fresh, err := thanosInstant(t.Context(), tq.URL(), `min by (node) (timestamp({__name__=~"weft:partial:.*"}))`, at)
			require.NoError(t, err)
			ts := fresh.byLabel("node")
			require.Len(t, ts, 3, "round %d: partials of every node: %v", round, ts)
			for node, sec := range ts {
				age := at.Sub(time.UnixMilli(int64(sec * 1000)))
				assert.LessOrEqual(t, age, 2*rulerEvalInterval, "round %d: %s's oldest partial at %s is %v old", round, node, thanosUnix(at), age)
			}

			for _, pp := range pairs {
				ref, err := thanosInstant(t.Context(), refProm.URL(), pp.orig, at)
				require.NoError(t, err)
				got, err := thanosInstant(t.Context(), tq.URL(), pp.split, at)
				require.NoError(t, err)
				assert.Empty(t, got.Warnings, "round %d: %s: thanos query warnings", round, pp.name)
				refV, gotV := map[string]float64{}, map[string]float64{}
				for _, v := range []struct {
					in  thanosVector
					out map[string]float64
				}{{ref, refV}, {got, gotV}} {
					for _, s := range v.in.Result {
						str, _ := s.Value[1].(string)
						f, err := strconv.ParseFloat(str, 64)
						require.NoError(t, err)
						v.out[seriesString(s.Metric)] = f
					}
				}
				t.Logf("round %d at %s: %s: prometheus %v, thanos query %v", round, thanosUnix(at), pp.name, refV, gotV)
				if !assert.ElementsMatch(t, slices.Collect(maps.Keys(refV)), slices.Collect(maps.Keys(gotV)), "round %d: %s: series", round, pp.name) {
					continue
				}
				for k, v := range refV {
					assert.InDelta(t, v, gotV[k], rulerRelTolerance*math.Abs(v), "round %d: %s: %s: thanos query (split) vs prometheus (original)", round, pp.name, k)
				}
			}

			rf, pf := firing(ruler.URL(), "ruler"), firing(refProm.URL(), "")
			t.Logf("round %d: firing cluster alerts: ruler %v, prometheus %v", round, rf, pf)
			assert.Equal(t, pf, rf, "round %d: firing cluster alerts, ruler vs prometheus", round)
		}
	})
}
