package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// latencyQueries are the dashboard queries timed through Thanos Query.
var latencyQueries = []struct{ Name, Expr string }{
	{"sum by rate", `sum by (destination_workload) (rate(istio_request_duration_milliseconds_count[1m]))`},
	{"histogram_quantile", `histogram_quantile(0.99, sum by (le, destination_workload) (rate(istio_request_duration_milliseconds_bucket[1m])))`},
	{"count by node", `count by (node) (envoy_cluster_upstream_rq_total)`},
}

// latencyRow is one query over one agent count.
type latencyRow struct {
	Agents  int       `json:"agents"`
	Query   string    `json:"query"`
	Results int       `json:"results"`
	Millis  []float64 `json:"ms"`
	P50     float64   `json:"p50_ms"`
	P99     float64   `json:"p99_ms"`
}

// latencyResult is the query phase's outcome.
type latencyResult struct {
	Over        string // weft or sidecar
	AgentSeries int
	Scrapes     int
	Rows        []latencyRow
	Verified    bool
	Problems    []string
}

// runLatency starts max(agents) weft agents, each scraping its own target
// of AgentSeries series under its own node label, and for each agent
// count n runs a fresh Thanos Query over the first n agents and times the
// queries at one fixed evaluation time (after every agent holds K scrapes).
// All agents keep scraping throughout, so every row runs beside the same
// background load.
func runLatency(ctx context.Context, o *storeOptions, over string) (*latencyResult, error) {
	res := &latencyResult{Over: over, AgentSeries: o.AgentSeries, Scrapes: o.Scrapes}
	most := slices.Max(o.Agents)
	logf("query over %s: starting %d agents of %d series each", over, most, o.AgentSeries)
	var targets []*target
	var agents []*agent
	var sidecars []*sidecarSide
	defer func() {
		for _, a := range agents {
			a.stop()
		}
		for _, s := range sidecars {
			s.stop()
		}
		for _, t := range targets {
			t.close()
		}
	}()
	var children []*child
	var endpoints []string
	for i := range most {
		t, err := startEnvoyTarget(o.AgentSeries)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
		name, node := fmt.Sprintf("agent-%02d", i+1), fmt.Sprintf("n%d", i+1)
		if over == sideSidecar {
			s, err := startSidecar(ctx, o, name, node, t)
			if err != nil {
				return nil, err
			}
			sidecars = append(sidecars, s)
			endpoints = append(endpoints, s.GRPC)
			children = append(children, s.prom, s.sidecar)
			continue
		}
		a, err := startAgent(ctx, o, name, node, t)
		if err != nil {
			return nil, err
		}
		agents = append(agents, a)
		endpoints = append(endpoints, a.GRPC)
		children = append(children, a.c)
	}
	timeout := time.Duration(o.Scrapes+2)*o.Interval + 60*time.Second
	if err := waitScrapes(ctx, timeout, o.Scrapes, targets, children...); err != nil {
		return nil, err
	}
	var evalAt time.Time
	for _, t := range targets {
		tK, _ := t.servedAt(o.Scrapes)
		if e := tK.Add(o.Interval / 2); e.After(evalAt) {
			evalAt = e
		}
	}
	select {
	case <-time.After(time.Until(evalAt)):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	wantPerNode := upstreamCounters(o.AgentSeries)
	for _, n := range o.Agents {
		q, err := startQuery(ctx, o, fmt.Sprintf("thanos-query-%s-%d", over, n), endpoints[:n])
		if err != nil {
			return nil, err
		}
		rows, problems := timeQueries(ctx, o, q, n, evalAt, wantPerNode)
		q.c.stop()
		res.Rows = append(res.Rows, rows...)
		res.Problems = append(res.Problems, problems...)
		for _, r := range rows {
			logf("query over %s: %2d agents, %-18s p50 %.1f ms, p99 %.1f ms (%d results)", over, n, r.Query, r.P50, r.P99, r.Results)
		}
	}
	res.Verified = len(res.Problems) == 0
	return res, nil
}

// timeQueries checks that count by (node) sees every agent's series (it
// retries for a while: the agents may still be committing the K-th scrape),
// warms up with one run of each query, then runs the queries Reps times in
// turn.
func timeQueries(ctx context.Context, o *storeOptions, q *querier, n int, at time.Time, wantPerNode int) ([]latencyRow, []string) {
	var problems []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		counts, _, err := instantQuery(ctx, q.HTTP, `count by (node) (envoy_cluster_upstream_rq_total)`, at)
		ok := err == nil && len(counts) == n
		for node, c := range counts {
			if c != float64(wantPerNode) {
				ok = false
				if time.Now().After(deadline) {
					problems = append(problems, fmt.Sprintf("%d agents: node %s has %v upstream counters, want %d", n, node, c, wantPerNode))
				}
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			problems = append(problems, fmt.Sprintf("%d agents: count by (node) answered %v (%v), want %d nodes of %d", n, counts, err, n, wantPerNode))
			break
		}
		time.Sleep(500 * time.Millisecond) // an agent is still committing its K-th scrape
	}
	rows := make([]latencyRow, len(latencyQueries))
	for i, lq := range latencyQueries {
		rows[i] = latencyRow{Agents: n, Query: lq.Name}
		res, _, err := instantQuery(ctx, q.HTTP, lq.Expr, at) // warm-up, not timed
		if err != nil {
			problems = append(problems, fmt.Sprintf("%d agents: %s: %v", n, lq.Name, err))
		}
		rows[i].Results = len(res)
		if len(res) == 0 {
			problems = append(problems, fmt.Sprintf("%d agents: %s: no result", n, lq.Name))
		}
	}
	for range o.Reps {
		for i, lq := range latencyQueries {
			_, d, err := instantQuery(ctx, q.HTTP, lq.Expr, at)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%d agents: %s: %v", n, lq.Name, err))
				continue
			}
			rows[i].Millis = append(rows[i].Millis, float64(d.Microseconds())/1000)
		}
	}
	for i := range rows {
		rows[i].P50, rows[i].P99 = percentile(rows[i].Millis, 50), percentile(rows[i].Millis, 99)
	}
	return rows, problems
}

// instantQuery runs a PromQL instant query at t through the Prometheus
// HTTP API and returns its results keyed by their labels (the value as a
// float) and the time from request to the decoded answer.
func instantQuery(ctx context.Context, addr, expr string, t time.Time) (map[string]float64, time.Duration, error) {
	var body struct {
		Status   string   `json:"status"`
		Warnings []string `json:"warnings"`
		Data     struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	u := "http://" + addr + "/api/v1/query?query=" + url.QueryEscape(expr) +
		"&time=" + strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
	start := time.Now()
	err := getJSON(ctx, u, &body)
	d := time.Since(start)
	if err != nil {
		return nil, d, err
	}
	if body.Status != "success" {
		return nil, d, fmt.Errorf("status %q", body.Status)
	}
	if len(body.Warnings) > 0 {
		return nil, d, fmt.Errorf("warnings: %v", body.Warnings)
	}
	out := map[string]float64{}
	for _, r := range body.Data.Result {
		s, _ := r.Value[1].(string)
		v, _ := strconv.ParseFloat(s, 64)
		out[fmt.Sprint(r.Metric)] = v
		if node, ok := r.Metric["node"]; ok && len(r.Metric) == 1 {
			delete(out, fmt.Sprint(r.Metric))
			out[node] = v
		}
	}
	return out, d, nil
}

// percentile is the nearest-rank percentile p of xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}
