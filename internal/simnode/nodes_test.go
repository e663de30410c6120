package simnode

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TestTopologyPlacesEveryPodOnOneNode: for every cluster size, each pod is
// on exactly one node in range, every node runs one replica of each
// deployment, and names, UIDs and log directories are unique; one node is
// the single-node demo's pods, names unchanged.
func TestTopologyPlacesEveryPodOnOneNode(t *testing.T) {
	for nodes := 1; nodes <= MaxNodes; nodes++ {
		pods := topology(nodes)
		require.Len(t, pods, nodes*numDeployments)
		perNode := make([]map[int]int, nodes)
		for k := range perNode {
			perNode[k] = map[int]int{}
		}
		names, uids, dirs := map[string]bool{}, map[string]bool{}, map[string]bool{}
		for i, p := range pods {
			require.GreaterOrEqual(t, p.node, 0, "pod %s", p.name)
			require.Less(t, p.node, nodes, "pod %s", p.name)
			assert.Equal(t, i/numDeployments, p.node, "pod %d's node", i)
			assert.Equal(t, i%numDeployments, p.deployment, "pod %d's deployment", i)
			perNode[p.node][p.deployment]++
			assert.False(t, names[p.namespace+"/"+p.name], "%d nodes: duplicate pod %s", nodes, p.name)
			assert.False(t, uids[p.uid()], "%d nodes: duplicate uid of %s", nodes, p.name)
			assert.False(t, dirs[p.logDir()], "%d nodes: duplicate log dir of %s", nodes, p.name)
			names[p.namespace+"/"+p.name], uids[p.uid()], dirs[p.logDir()] = true, true, true
			// A replica is named like the first replica of its deployment
			// but for the pod suffix.
			first := pods[p.deployment].name
			assert.Equal(t, first[:len(first)-5], p.name[:len(p.name)-5], "replica name of %s", first)
			assert.Regexp(t, `-[bcdfghjklmnpqrstvwxz2456789]{5}$`, p.name)
		}
		for k, deps := range perNode {
			for dep := range numDeployments {
				assert.Equal(t, 1, deps[dep], "%d nodes: node %d runs one replica of deployment %d", nodes, k, dep)
			}
		}
	}
	var single []string
	for _, p := range topology(1) {
		single = append(single, p.name)
	}
	assert.Equal(t, []string{"productpage-v1-6b746f74dc-9stvs", "reviews-v1-545db77b95-2xqtp", "reviews-v2-7bf8c9648f-4xhzk",
		"ratings-v1-b6994bb9-ltxmd", "hello-00001-deployment-7d9c8b5f4-x2x9q"}, single)
}

func TestStartChecksNodes(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Nodes: MaxNodes + 1}, "Options.Nodes: between 1 and 9, got 10"},
		{Options{Nodes: -1}, "Options.Nodes: between 1 and 9, got -1"},
		{Options{Nodes: 3, Exports: make([]ExportFunc, 2)}, "Options.Exports: one per node (3), got 2"},
	} {
		tc.opts.Dir = t.TempDir()
		_, err := Start(tc.opts)
		assert.EqualError(t, err, "simnode: "+tc.want)
	}
}

// nodeSink records, for one node's agent, the pods its spans come from and
// its spans by trace ID.
type nodeSink struct {
	mu     sync.Mutex
	pods   map[string]bool
	traces map[string][]ptrace.Span
}

func (s *nodeSink) export(_ context.Context, td ptrace.Traces) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		pod, _ := rss.At(i).Resource().Attributes().Get("k8s.pod.name")
		s.pods[pod.Str()] = true
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				id := spans.At(k).TraceID().String()
				s.traces[id] = append(s.traces[id], spans.At(k))
			}
		}
	}
	return nil
}

// TestNodesSplitTheWorkload: with three nodes each node's agent gets the
// spans of its own pods only, its pods' logs are in its own log tree and
// its endpoints are its pods'; requests cross nodes (a trace has spans on
// several nodes), and the error burst fails reviews-v2 on every node.
// A failing trace's ratings hop answers 200: its node holds a fragment of
// the trace without an error.
func TestNodesSplitTheWorkload(t *testing.T) {
	const nodes = 3
	sinks := make([]*nodeSink, nodes)
	exports := make([]ExportFunc, nodes)
	for k := range sinks {
		sinks[k] = &nodeSink{pods: map[string]bool{}, traces: map[string][]ptrace.Span{}}
		exports[k] = sinks[k].export
	}
	dir := t.TempDir()
	n, err := Start(Options{Dir: dir, Nodes: nodes, Exports: exports, Seed: 4, ErrorBurst: true, ErrorAfter: time.Nanosecond, ErrorFor: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	generate(t, n, n.started.Add(time.Second), 600)
	require.NoError(t, n.Close())

	var m manifest
	raw, err := os.ReadFile(n.ManifestPath())
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &m))
	require.Len(t, m.Pods, nodes*numDeployments)
	podNode := map[string]string{}
	for _, p := range m.Pods {
		podNode[p.Name] = p.Node
		assert.True(t, strings.HasPrefix(p.LogDir, filepath.Join(dir, p.Node, "pods")+string(filepath.Separator)), "pod %s logs under its node: %s", p.Name, p.LogDir)
	}

	errorNodes := map[string]bool{}
	crossing := 0
	traceNodes := map[string]map[string]bool{}
	for k, s := range sinks {
		name := NodeName(k)
		assert.Equal(t, filepath.Join(dir, name), n.NodeDir(k))
		assert.Len(t, s.pods, numDeployments, "%s: spans of its own 5 pods", name)
		for pod := range s.pods {
			assert.Equal(t, name, podNode[pod], "%s got spans of pod %s", name, pod)
		}
		for id, spans := range s.traces {
			if traceNodes[id] == nil {
				traceNodes[id] = map[string]bool{}
			}
			traceNodes[id][name] = true
			for _, sp := range spans {
				if sp.Kind() == ptrace.SpanKindServer && sp.Name() == "GET /reviews/{id}" && sp.Status().Code() == ptrace.StatusCodeError {
					errorNodes[name] = true
				}
			}
		}
		eps := n.NodeEndpoints(k)
		assert.Len(t, eps, 2*numDeployments, "%s: one endpoint per container", name)
		for _, e := range eps {
			assert.Equal(t, name, e.Node)
			assert.Equal(t, name, podNode[e.Pod], "endpoint of %s", e.Pod)
		}
		logs, err := filepath.Glob(filepath.Join(n.NodePodsDir(k), "*", "*", "0.log"))
		require.NoError(t, err)
		assert.Len(t, logs, 2*numDeployments, "%s: one log per container", name)
		for _, r := range readRecords(t, n.NodePodsDir(k)) {
			pod := strings.Split(filepath.Base(filepath.Dir(filepath.Dir(r.file))), "_")[1]
			assert.Equal(t, name, podNode[pod], "log of %s under %s", pod, name)
		}
	}
	for _, ns := range traceNodes {
		if len(ns) > 1 {
			crossing++
		}
	}
	assert.Greater(t, crossing, 100, "requests crossing nodes (of %d traces)", len(traceNodes))
	assert.Len(t, errorNodes, nodes, "reviews-v2 fails on every node: %v", errorNodes)
	assert.Len(t, n.Endpoints(), nodes*2*numDeployments)

	// A failing request: reviews' client span to ratings is an error (a
	// reset, no status code); ratings' server span answered 200.
	var failing int
	all := map[string][]ptrace.Span{}
	for _, s := range sinks {
		for id, spans := range s.traces {
			all[id] = append(all[id], spans...)
		}
	}
	for _, spans := range all {
		var reset, ratings *ptrace.Span
		for i, sp := range spans {
			if sp.Name() != "GET /ratings/{id}" {
				continue
			}
			if sp.Kind() == ptrace.SpanKindClient && sp.Status().Code() == ptrace.StatusCodeError {
				reset = &spans[i]
			} else if sp.Kind() == ptrace.SpanKindServer {
				ratings = &spans[i]
			}
		}
		if reset == nil {
			continue
		}
		failing++
		_, hasCode := reset.Attributes().Get("http.response.status_code")
		assert.False(t, hasCode, "a reset has no status code")
		require.NotNil(t, ratings, "the ratings hop of a failing request")
		assert.NotEqual(t, ptrace.StatusCodeError, ratings.Status().Code())
		code, _ := ratings.Attributes().Get("http.response.status_code")
		assert.Equal(t, int64(200), code.Int())
		assert.True(t, ratings.EndTimestamp() > reset.EndTimestamp(), "ratings answers after the caller gave up")
	}
	assert.Positive(t, failing)
}
