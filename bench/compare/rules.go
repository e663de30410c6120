package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ruleFile is the rule set of weft's own 200-rule benchmark
// (rules/bench_test.go): alerting rules over a 5m rate, one shard of the
// series each, in 10 groups.
func ruleFile(rules int) string {
	var b strings.Builder
	b.WriteString("groups:\n")
	groups := min(10, rules)
	for g := range groups {
		fmt.Fprintf(&b, "- name: g%d\n  rules:\n", g)
		for r := g; r < rules; r += groups {
			fmt.Fprintf(&b, "  - alert: A%d\n    expr: rate(http_requests_total{shard=\"%d\",status=~\"5..\"}[5m]) > 0.2\n    for: 2m\n", r, r)
		}
	}
	return b.String()
}

// rulePayload is the scraped side of the same data: n counter series,
// shard × pod, each growing by i%7 per scrape.
func rulePayload(b *bytes.Buffer, n, rules, k int) {
	b.Reset()
	b.WriteString("# TYPE http_requests_total counter\n")
	for i := range n {
		b.WriteString(`http_requests_total{shard="`)
		b.WriteString(strconv.Itoa(i % rules))
		b.WriteString(`",pod="pod-`)
		b.WriteString(strconv.Itoa(i / rules))
		b.WriteString(`",status="500"} `)
		b.WriteString(strconv.Itoa(k * (i % 7)))
		b.WriteByte('\n')
	}
}

const rulesWeftConfig = `extensions:
  health_check:
    endpoint: {{health}}
  weft_store:
    directory: {{data}}
  weft_rules:
    store: weft_store
    rule_files: [{{rules}}]
    evaluation_interval: {{interval}}
    reload_interval: 0s
  weft_query:
    http:
      endpoint: {{query}}
    store: weft_store
receivers:
  pod_scrape:
{{native}}    scrape_configs:
      - job_name: rules-bench
        scrape_interval: {{interval}}
        scrape_timeout: {{timeout}}
        static_configs:
          - targets: [{{target}}]
` + weftStorePipeline

// weftStorePipeline ends a weft configuration whose pod_scrape receiver
// writes into weft_store ({{extensions}}: the service's extensions). The
// rules workload and the storeapi mode's agents share it.
const weftStorePipeline = `processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 1024
    spike_limit_mib: 256
exporters:
  weft_store: {}
service:
  extensions: [{{extensions}}]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    metrics:
      receivers: [pod_scrape]
      processors: [memory_limiter]
      exporters: [weft_store]
`

const rulesPromConfig = `global:
  scrape_interval: {{interval}}
  scrape_timeout: {{timeout}}
  evaluation_interval: {{interval}}
rule_files: [{{rules}}]
scrape_configs:
  - job_name: rules-bench
    static_configs:
      - targets: [{{target}}]
`

// runRules: weft (pod_scrape → weft_store, weft_rules, weft_query) and
// Prometheus 2.42 scrape the same 50k series and evaluate the same rules at
// the same interval. The window runs from the first scrape for RuleCycles
// intervals; CPU per cycle is everything the process did in that time
// (scrape, storage, rule evaluation). Verified: the store answers
// count(http_requests_total) = RuleSeries, and every rule was evaluated
// with health "ok".
func runRules(ctx context.Context, h *harness, side string, s *sample) error {
	name := fmt.Sprintf("%s-%02d-%s", s.Workload, s.Order, side)
	n, nr := h.o.RuleSeries, h.o.RuleCount
	tgt, err := startTarget("/metrics", func(b *bytes.Buffer, k int) { rulePayload(b, n, nr, k) })
	if err != nil {
		return err
	}
	defer tgt.close()
	data := filepath.Join(h.o.WorkDir, name+"-data")
	defer os.RemoveAll(data)
	rulesPath := filepath.Join(h.o.WorkDir, name+"-rules.yaml")
	if err := os.WriteFile(rulesPath, []byte(ruleFile(nr)), 0o644); err != nil {
		return err
	}
	addrs, err := freeAddrs(2)
	if err != nil {
		return err
	}
	api, health := addrs[0], addrs[1]
	timeout := min(10*time.Second, h.o.RuleInterval*9/10)
	vars := []string{"{{health}}", health, "{{data}}", data, "{{rules}}", rulesPath, "{{interval}}", promDuration(h.o.RuleInterval),
		"{{timeout}}", promDuration(timeout), "{{query}}", api, "{{target}}", tgt.Addr,
		"{{extensions}}", "health_check, weft_store, weft_rules, weft_query", "{{native}}", ""}
	if h.o.WeftNative {
		vars[len(vars)-1] = "    appendables: [weft_store]\n    pdata: false\n" // the shipped profile's path
	}
	var c *child
	var readyURL string
	cfgPath := filepath.Join(h.o.WorkDir, name+".yaml")
	if side == sideWeft {
		if err := os.WriteFile(cfgPath, []byte(replaceAll(rulesWeftConfig, vars...)), 0o600); err != nil {
			return err
		}
		c, err = startChild(h, name, h.o.WeftBin, "--config", "file:"+cfgPath)
		readyURL = "http://" + health + "/"
	} else {
		if err := os.WriteFile(cfgPath, []byte(replaceAll(rulesPromConfig, vars...)), 0o600); err != nil {
			return err
		}
		c, err = startChild(h, name, h.o.PrometheusBin, "--config.file="+cfgPath, "--storage.tsdb.path="+data,
			"--web.listen-address="+api, "--log.level=warn")
		readyURL = "http://" + api + "/-/ready"
	}
	if err != nil {
		return err
	}
	defer c.stop()
	smp, err := h.ready(ctx, c, readyURL, s)
	if err != nil {
		return err
	}
	if err := tgt.waitFirst(ctx, c, 2*h.o.RuleInterval+30*time.Second); err != nil {
		return err
	}
	smp.restart()
	window := time.Duration(h.o.RuleCycles) * h.o.RuleInterval
	select {
	case <-time.After(window): // the window is a number of evaluation intervals
	case <-c.done:
		return fmt.Errorf("%s exited during the window (see %s)", side, c.logf.Name())
	case <-ctx.Done():
		return ctx.Err()
	}
	h.finish(c, smp, s)
	base := "http://" + api
	count, cerr := queryScalar(ctx, base, "count(http_requests_total)")
	evaluated, rerr := rulesEvaluatedOK(ctx, base)
	s.Sent, s.Received = int64(n), int64(count)
	s.Items = s.WallSec / h.o.RuleInterval.Seconds() // intervals in the window (≈ RuleCycles)
	s.Verified = cerr == nil && rerr == nil && count == n && evaluated == nr
	s.Detail = fmt.Sprintf("%d scrapes served; %d series stored; %d of %d rules evaluated with health ok", tgt.served.Load(), count, evaluated, nr)
	for _, e := range []error{cerr, rerr} {
		if e != nil {
			s.Detail += "; " + e.Error()
		}
	}
	return nil
}

// queryScalar runs an instant query through the Prometheus HTTP API and
// returns the value of its single result as an integer.
func queryScalar(ctx context.Context, base, q string) (int, error) {
	return queryScalarURL(ctx, base+"/api/v1/query?query="+url.QueryEscape(q), q)
}

// queryScalarURL is queryScalar for a query URL u made by the caller (q
// names the query in errors).
func queryScalarURL(ctx context.Context, u, q string) (int, error) {
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(ctx, u, &body); err != nil {
		return 0, err
	}
	if body.Status != "success" || len(body.Data.Result) != 1 {
		return 0, fmt.Errorf("%s: status %q, %d results", q, body.Status, len(body.Data.Result))
	}
	v, ok := body.Data.Result[0].Value[1].(string)
	if !ok {
		return 0, fmt.Errorf("%s: value %v", q, body.Data.Result[0].Value[1])
	}
	f, err := strconv.ParseFloat(v, 64)
	return int(f), err
}

// rulesEvaluatedOK counts the rules of /api/v1/rules that were evaluated
// and are healthy.
func rulesEvaluatedOK(ctx context.Context, base string) (int, error) {
	var body struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Health         string    `json:"health"`
					LastEvaluation time.Time `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := getJSON(ctx, base+"/api/v1/rules", &body); err != nil {
		return 0, err
	}
	ok := 0
	for _, g := range body.Data.Groups {
		for _, r := range g.Rules {
			if r.Health == "ok" && r.LastEvaluation.Year() > 2000 {
				ok++
			}
		}
	}
	return ok, nil
}

func getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
