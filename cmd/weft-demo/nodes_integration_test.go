//go:build integration

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/internal/backends"
)

// nodesBudget is each agent's store budget in TestDemoThreeNodesSharePins:
// at --rate 600 a node's agent stored about 100 KB/s of spans (2,800 span
// records evicted or held in 20 s at ≈ 840 B each, from the status page),
// so it evicts what it got 5 s earlier: time enough for a pin to arrive
// by gossip (a few 200 ms rounds), short enough for the test.
const nodesBudget = 512 << 10

var (
	nodeStatusRe = regexp.MustCompile(`(?m)^\s+(node-\d)\s+status page\s+(http://\S+?)/\s`)
	nodePinsRe   = regexp.MustCompile(`pins held (\d+), set here (\d+), received from peers (\d+), expired \d+, evicted \d+, cluster members (\d+)`)
	// Ground truth from the simulated nodes' container logs: the CRI
	// timestamp, then the trace ID of reviews' failures (logback JSON),
	// of productpage's degraded answers (its client span to reviews
	// failed) and of every ratings request (logfmt).
	criTimeRe     = regexp.MustCompile(`^(\S+) `)
	reviewsErrRe  = regexp.MustCompile(`"level":"ERROR".*"traceId":"([0-9a-f]{32})"`)
	ppDegradedRe  = regexp.MustCompile(`"level":"WARNING".*"trace_id":"([0-9a-f]{32})"`)
	ratingsLineRe = regexp.MustCompile(` trace_id=([0-9a-f]{32}) `)
)

// nodePins is the pins line of a node's status page.
type nodePins struct{ held, local, received, members int }

func readNodePins(c assert.TestingT, ctx context.Context, status string) (nodePins, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, status+"/", nil)
	if !assert.NoError(c, err) {
		return nodePins{}, false
	}
	resp, err := http.DefaultClient.Do(req)
	if !assert.NoError(c, err) {
		return nodePins{}, false
	}
	defer resp.Body.Close()
	var page []byte
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		page = append(append(page, sc.Bytes()...), '\n')
	}
	m := nodePinsRe.FindSubmatch(page)
	if !assert.NotNil(c, m, "pins line on %s", status) {
		return nodePins{}, false
	}
	var v [4]int
	for i := range v {
		v[i], _ = strconv.Atoi(string(m[1+i]))
	}
	return nodePins{held: v[0], local: v[1], received: v[2], members: v[3]}, true
}

// logLine is one traced line of a simulated container log.
type logLine struct {
	ts    time.Time
	trace string
}

// scanLogs returns the lines of the container logs matching glob (under
// the node's pods directory) whose message matches re, in file order.
func scanLogs(t *testing.T, podsDir, glob string, re *regexp.Regexp) []logLine {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(podsDir, glob))
	require.NoError(t, err)
	require.NotEmpty(t, files, "%s in %s", glob, podsDir)
	var out []logLine
	for _, path := range files {
		f, err := os.Open(path)
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			m := re.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			ts, err := time.Parse(time.RFC3339Nano, criTimeRe.FindStringSubmatch(sc.Text())[1])
			require.NoError(t, err)
			out = append(out, logLine{ts: ts, trace: m[1]})
		}
		require.NoError(t, sc.Err())
		require.NoError(t, f.Close())
	}
	return out
}

// correlation is the part of /api/v1/correlate/{traceID} the test reads.
type correlation struct {
	Data struct {
		Trace *struct {
			Spans []struct {
				OperationName string `json:"operationName"`
				Tags          []struct {
					Key   string `json:"key"`
					Value any    `json:"value"`
				} `json:"tags"`
			} `json:"spans"`
		} `json:"trace"`
		Logs []struct {
			Pod            string `json:"pod"`
			SeverityNumber int32  `json:"severityNumber"`
		} `json:"logs"`
	} `json:"data"`
}

// correlate asks a node what it holds of a trace; 404 (nothing, not even
// an exemplar) is an empty answer.
func correlate(c require.TestingT, ctx context.Context, status, trace string) correlation {
	var out correlation
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, status+"/api/v1/correlate/"+trace, nil)
	require.NoError(c, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c, err)
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return out
	}
	require.Equal(c, http.StatusOK, resp.StatusCode, status)
	require.NoError(c, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

// TestDemoThreeNodesSharePins runs `weft-demo --nodes 3` (no backends)
// with a short error burst and small store budgets:
//
//  1. every node's status page shows 3 cluster members and pins received
//     from peers;
//  2. a failing request's ratings hop answers 200, so the ratings pod's
//     node holds spans and log lines of the failing trace without any
//     error in them; for every such trace whose productpage and reviews
//     pods ran on other nodes (ground truth: the container logs), that
//     node's correlate API still returns its ratings span and log lines
//     after it evicted later traffic: a control trace of the same node,
//     without errors, written after the last of them, is gone (spans and
//     logs) by then. Only a peer's pin kept them;
//  3. the agents all export to the demo's one Jaeger, which tells what
//     they received: the traces of (2) are checked when Jaeger has them
//     whole (the simulator drops span batches when an agent lags, on a
//     loaded machine; then it counts them), at least 3 per node.
func TestDemoThreeNodesSharePins(t *testing.T) {
	const errorAfter, errorFor = 2 * time.Second, 5 * time.Second
	jaegerBin, err := backends.FindJaeger()
	require.NoError(t, err)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, demoFlags{weft: agentBin, nodes: 3, rate: 600, errors: true, errorAfter: errorAfter, errorFor: errorFor,
			budget: nodesBudget, jaeger: jaegerBin, prometheus: "off", alertmgr: "off", dir: dir, progress: 5 * time.Second}, out, out)
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		if t.Failed() {
			t.Logf("demo output:\n%s", out)
		}
	})
	t.Cleanup(http.DefaultClient.CloseIdleConnections)

	// The intro names every node's status page; traffic starts right after.
	var status [3]string
	require.Eventually(t, func() bool {
		for _, m := range nodeStatusRe.FindAllStringSubmatch(out.String(), -1) {
			k, _ := strconv.Atoi(m[1][len("node-"):])
			status[k-1] = m[2]
		}
		return status[0] != "" && status[1] != "" && status[2] != ""
	}, 60*time.Second, 100*time.Millisecond, "the demo prints each node's status page")
	running := time.Now()

	// 1. The cluster forms and pins travel. Bound: the burst starts
	// errorAfter after the intro; a pin spreads in a few gossip rounds
	// (200 ms); 20 s of slack for the three agents on a shared machine.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for k, s := range status {
			p, ok := readNodePins(c, t.Context(), s)
			if ok {
				assert.Equal(c, 3, p.members, "node-%d: cluster members", k+1)
				assert.Positive(c, p.received, "node-%d: pins received from peers", k+1)
			}
		}
	}, errorAfter+20*time.Second, 250*time.Millisecond, "three members, pins received on every node")

	// 2. Wait for the burst to end (plus a second of logs), then read the
	// ground truth from the container logs.
	require.Eventually(t, func() bool { return time.Since(running) > errorAfter+errorFor+time.Second },
		errorAfter+errorFor+5*time.Second, 100*time.Millisecond)
	podsDir := func(k int) string { return filepath.Join(dir, "node-"+strconv.Itoa(k+1), "pods") }
	errorNodes := map[string]map[int]bool{} // failing trace → nodes with an error of it
	for k := range 3 {
		for _, l := range append(scanLogs(t, podsDir(k), "bookinfo_reviews-v2-*/reviews/0.log", reviewsErrRe),
			scanLogs(t, podsDir(k), "bookinfo_productpage-*/productpage/0.log", ppDegradedRe)...) {
			if errorNodes[l.trace] == nil {
				errorNodes[l.trace] = map[int]bool{}
			}
			errorNodes[l.trace][k] = true
		}
	}
	require.NotEmpty(t, errorNodes, "the burst failed requests")

	type check struct {
		candidates []string // failing traces whose only fragment here is ratings'
		control    string   // a trace without errors, written here after them
	}
	checks := make([]check, 3)
	for k := range 3 {
		ratings := scanLogs(t, podsDir(k), "bookinfo_ratings-*/ratings/0.log", ratingsLineRe)
		var last time.Time
		for _, l := range ratings {
			if nodes, failing := errorNodes[l.trace]; failing && !nodes[k] {
				checks[k].candidates = append(checks[k].candidates, l.trace)
				last = l.ts
			}
		}
		for _, l := range ratings {
			if _, failing := errorNodes[l.trace]; !failing && l.ts.After(last.Add(100*time.Millisecond)) {
				checks[k].control = l.trace
				break
			}
		}
		require.NotEmpty(t, checks[k].candidates, "node-%d: failing traces with only their ratings hop here", k+1)
		require.NotEmpty(t, checks[k].control, "node-%d: a later trace without errors", k+1)
		t.Logf("node-%d: %d failing traces of which it holds only the ratings hop; control trace %s", k+1, len(checks[k].candidates), checks[k].control)
	}

	// The control traces are evicted: spans and log lines (their
	// exemplars stay in the TSDB). Bound: the budget at ≈ 100 KB/s each of
	// spans and logs is 5 s; 30 s of slack.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for k, ck := range checks {
			corr := correlate(c, t.Context(), status[k], ck.control)
			assert.Nil(c, corr.Data.Trace, "node-%d: spans of control trace %s", k+1, ck.control)
			assert.Empty(c, corr.Data.Logs, "node-%d: log lines of control trace %s", k+1, ck.control)
		}
	}, 30*time.Second, 500*time.Millisecond, "every node evicted its traffic after the burst")

	// 3. What the agents received, from the demo's one Jaeger (every
	// agent exports everything, evidence_sampling at 100 %): a failing
	// trace is checked if Jaeger has it whole, five spans from the agents
	// of two or three nodes (productpage's two, reviews' two, ratings'
	// one). A trace with spans missing there lost them before any agent:
	// the simulator drops a batch when an agent lags (counted in
	// spans_dropped, which must then be positive), so no node pinned it
	// or held its ratings hop.
	jaegerQuery := regexp.MustCompile(`Jaeger query API\s+(http://127\.0\.0\.1:\d+)/api/`).FindStringSubmatch(out.String())
	require.NotNil(t, jaegerQuery, "the demo prints the Jaeger query API")
	whole := func(c require.TestingT, id string) bool {
		var got struct {
			Data []struct {
				Spans []struct {
					ProcessID string `json:"processID"`
				} `json:"spans"`
				Processes map[string]struct {
					ServiceName string `json:"serviceName"`
				} `json:"processes"`
			} `json:"data"`
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, jaegerQuery[1]+"/api/traces/"+id, nil)
		require.NoError(c, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(c, err)
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return false
		}
		require.Equal(c, http.StatusOK, resp.StatusCode, id)
		require.NoError(c, json.NewDecoder(resp.Body).Decode(&got))
		require.Len(c, got.Data, 1, id)
		services := map[string]int{}
		for _, sp := range got.Data[0].Spans {
			services[got.Data[0].Processes[sp.ProcessID].ServiceName]++
		}
		return assert.ObjectsAreEqual(map[string]int{"productpage": 2, "reviews": 2, "ratings": 1}, services)
	}
	// Bound: the agents' Jaeger exporters flush every 200 ms; 15 s for
	// an agent that lags.
	checked := make([][]string, 3)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		missed := 0
		for k, ck := range checks {
			checked[k] = checked[k][:0]
			for _, id := range ck.candidates {
				if whole(c, id) {
					checked[k] = append(checked[k], id)
				} else {
					missed++
				}
			}
			assert.GreaterOrEqual(c, len(checked[k]), 3, "node-%d: failing traces whole in Jaeger", k+1)
		}
		if missed > 0 {
			m := regexp.MustCompile(`spans_dropped=(\d+)`).FindAllStringSubmatch(out.String(), -1)
			require.NotEmpty(c, m, "a progress line")
			dropped, _ := strconv.Atoi(m[len(m)-1][1])
			assert.Positive(c, dropped, "%d failing traces are not whole in Jaeger, yet the simulator dropped no span", missed)
		}
	}, 15*time.Second, 500*time.Millisecond, "Jaeger has what the agents received")

	for k, ids := range checked {
		t.Logf("node-%d: %d of %d failing traces whole in Jaeger, checked", k+1, len(ids), len(checks[k].candidates))
		for _, id := range ids {
			corr := correlate(t, t.Context(), status[k], id)
			if !assert.NotNil(t, corr.Data.Trace, "node-%d: spans of failing trace %s (errors on nodes %v)", k+1, id, errorNodes[id]) {
				continue
			}
			require.Len(t, corr.Data.Trace.Spans, 1, "node-%d: trace %s: the ratings hop only", k+1, id)
			sp := corr.Data.Trace.Spans[0]
			assert.Equal(t, "GET /ratings/{id}", sp.OperationName)
			for _, tag := range sp.Tags {
				if tag.Key == "error" || tag.Key == "otel.status_code" {
					assert.NotEqual(t, true, tag.Value, "node-%d: trace %s: the ratings span is no error", k+1, id)
					assert.NotEqual(t, "ERROR", tag.Value, "node-%d: trace %s: the ratings span is no error", k+1, id)
				}
			}
			assert.Len(t, corr.Data.Logs, 2, "node-%d: trace %s: ratings' app and sidecar log lines", k+1, id)
			for _, l := range corr.Data.Logs {
				assert.Less(t, l.SeverityNumber, int32(17), "node-%d: trace %s: no error log line on this node (%s)", k+1, id, l.Pod)
			}
		}
	}

	for k, s := range status {
		p, _ := readNodePins(t, t.Context(), s)
		t.Logf("node-%d: pins held %d, set here %d, received from peers %d, cluster members %d", k+1, p.held, p.local, p.received, p.members)
	}
}
