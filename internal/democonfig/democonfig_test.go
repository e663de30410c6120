package democonfig

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/weftobs/weft/internal/simnode"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRulesMatchDeploy: the demo evaluates the HighErrorRate rules that
// deploy/ ships; the rules package's copy, which its tests load and
// evaluate, is the reference (cmd/weft's TestShippedRulesAgree holds
// deploy/base to it).
func TestRulesMatchDeploy(t *testing.T) {
	ref, err := os.ReadFile("../../rules/testdata/deploy/high-error-rate.rules.yaml")
	require.NoError(t, err)
	assert.Equal(t, string(ref), string(rules), "internal/democonfig/rules differs from rules/testdata/deploy")

	dir, err := WriteRules(t.TempDir())
	require.NoError(t, err)
	written, err := os.ReadFile(filepath.Join(dir, "high-error-rate.rules.yaml"))
	require.NoError(t, err)
	assert.Equal(t, string(ref), string(written))
}

func TestScrapeJobsGroupByContainer(t *testing.T) {
	jobs, err := ScrapeJobs([]simnode.Endpoint{
		{Namespace: "bookinfo", Pod: "reviews-v1", Container: "istio-proxy", URL: "http://127.0.0.1:1/stats/prometheus"},
		{Namespace: "functions", Pod: "hello", Container: "queue-proxy", URL: "http://127.0.0.1:2/metrics"},
		{Namespace: "bookinfo", Pod: "reviews-v1", Container: "reviews", URL: "http://127.0.0.1:3/metrics"},
	})
	require.NoError(t, err)
	assert.Equal(t, []ScrapeJob{
		{Name: "envoy", Path: "/stats/prometheus", Targets: []ScrapeTarget{{Addr: "127.0.0.1:1", Namespace: "bookinfo", Pod: "reviews-v1", Container: "istio-proxy"}}},
		{Name: "queue-proxy", Path: "/metrics", Targets: []ScrapeTarget{{Addr: "127.0.0.1:2", Namespace: "functions", Pod: "hello", Container: "queue-proxy"}}},
		{Name: "apps", Path: "/metrics", Targets: []ScrapeTarget{{Addr: "127.0.0.1:3", Namespace: "bookinfo", Pod: "reviews-v1", Container: "reviews"}}},
	}, jobs)
}

// TestRenderWiresOptionalBackends: Jaeger, Prometheus and Alertmanager
// appear in the configuration only when the demo runs them.
func TestRenderWiresOptionalBackends(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
		not  []string
	}{
		{"none", Config{PodsDir: "/p"}, []string{"include: [/p/*/*/*.log]"},
			[]string{"otlp_grpc/jaeger", "prometheus_remote_write", "weft_remote_write", "alertmanagers"}},
		{"all", Config{PodsDir: "/p", Jaeger: "127.0.0.1:1", Prometheus: "http://127.0.0.1:2/api/v1/write", Alertmanager: "http://127.0.0.1:3"},
			[]string{"otlp_grpc/jaeger", "endpoint: http://127.0.0.1:2/api/v1/write", "- url: http://127.0.0.1:3"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			require.NoError(t, Render(&b, tc.cfg))
			for _, s := range tc.want {
				assert.Contains(t, b.String(), s)
			}
			for _, s := range tc.not {
				assert.NotContains(t, b.String(), s)
			}
		})
	}
}

// TestWriteGossipKey: a fresh random 32-byte key, base64, in a file only
// its owner reads, also when the file was there before with wider modes.
func TestWriteGossipKey(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, GossipKeyFile), []byte("old"), 0o644))
	var keys []string
	for range 2 {
		path, err := WriteGossipKey(dir)
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(dir, GossipKeyFile), path)
		st, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		key, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(string(raw), "\n"))
		require.NoError(t, err)
		assert.Len(t, key, 32)
		keys = append(keys, string(raw))
	}
	assert.NotEqual(t, keys[0], keys[1], "a new key each time")
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, left, 1, "no temporary file left: %v", left)

	_, err = WriteGossipKey(filepath.Join(dir, "missing"))
	assert.ErrorContains(t, err, "gossip key")
}

func TestPeers(t *testing.T) {
	g := []string{"a:1", "b:2", "c:3"}
	assert.Empty(t, Peers(g, 0), "the first agent waits for the others")
	assert.Equal(t, []string{"a:1", "c:3"}, Peers(g, 1))
	assert.Equal(t, []string{"a:1", "b:2"}, Peers(g, 2))
	assert.Empty(t, Peers(g[:1], 0))
}

// renderedYAML renders cfg and parses it.
func renderedYAML(t *testing.T, cfg Config) map[string]any {
	t.Helper()
	var b strings.Builder
	require.NoError(t, Render(&b, cfg))
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(b.String()), &doc), b.String())
	return doc
}

// at walks a parsed YAML document along keys.
func at(t *testing.T, doc any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := doc.(map[string]any)
		require.True(t, ok, "%v: not a map at %q", keys, k)
		doc, ok = m[k]
		require.True(t, ok, "%v: no key %q", keys, k)
	}
	return doc
}

// TestClusterConfigsNameEachOther: the three agents of `--nodes 3` gossip
// with each other (node-1 waits, the others each join the two others,
// node-1 first) under
// the one key, each under its own node name, which is also its store's,
// rules' and remote write's node label; the store budget is applied and
// evidence_sampling runs in the traces and logs pipelines.
func TestClusterConfigsNameEachOther(t *testing.T) {
	gossip := []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}
	for i, g := range gossip {
		node := "node-" + string(rune('1'+i))
		doc := renderedYAML(t, Config{PodsDir: "/p", Node: node, Gossip: g, Join: Peers(gossip, i), KeyFile: "/d/gossip.key",
			StoreBudget: 1 << 20, Prometheus: "http://127.0.0.1:9/api/v1/write"})
		pins := at(t, doc, "extensions", "weft_pins", "gossip")
		assert.Equal(t, g, at(t, pins, "bind"))
		var join []string
		for _, j := range at(t, pins, "join").([]any) {
			join = append(join, j.(string))
		}
		if i == 0 {
			assert.Empty(t, join, "node-1, started first, waits for the others to join it")
		} else {
			assert.Len(t, join, 2, "%s joins the two others", node)
			assert.Equal(t, gossip[0], join[0], "%s: the first agent first", node)
			for k, other := range gossip {
				if k != i {
					assert.Contains(t, join, other, "%s joins node-%d", node, k+1)
				}
			}
		}
		assert.Equal(t, node, at(t, pins, "node_name"))
		assert.Equal(t, "/d/gossip.key", at(t, pins, "secret_key_file"))
		assert.Equal(t, RejoinInterval.String(), at(t, pins, "rejoin_interval"))
		assert.Equal(t, node, at(t, doc, "extensions", "weft_store", "external_labels", "node"))
		assert.Equal(t, node, at(t, doc, "extensions", "weft_rules", "external_labels", "node"))
		assert.Equal(t, node, at(t, doc, "extensions", "weft_remote_write", "external_labels", "node"))
		assert.Equal(t, node, at(t, doc, "exporters", "prometheus_remote_write/otlp", "external_labels", "node"))
		assert.Equal(t, 1<<20, at(t, doc, "extensions", "weft_store", "traces_max_bytes"))
		assert.Equal(t, 1<<20, at(t, doc, "extensions", "weft_store", "logs_max_bytes"))
		assert.Contains(t, at(t, doc, "service", "extensions"), "weft_pins")
		for _, p := range []string{"traces", "logs"} {
			assert.Contains(t, at(t, doc, "service", "pipelines", p, "processors"), "evidence_sampling", "%s pipeline", p)
		}
	}
}

// TestRenderOneNode: the one-node demo keeps its node name and no gossip
// (no port, no key), with the store's default budgets.
func TestRenderOneNode(t *testing.T) {
	doc := renderedYAML(t, Config{PodsDir: "/p"})
	assert.Equal(t, map[string]any{"enabled": false}, at(t, doc, "extensions", "weft_pins", "gossip"))
	assert.Equal(t, DefaultNode, at(t, doc, "extensions", "weft_rules", "external_labels", "node"))
	assert.NotContains(t, at(t, doc, "extensions", "weft_store"), "traces_max_bytes")
	assert.Contains(t, at(t, doc, "service", "pipelines", "traces", "processors"), "evidence_sampling")
}

func TestRenderRejectsIncompleteGossip(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Gossip: "127.0.0.1:1"}, "KeyFile is required with Gossip"},
		{Config{Join: []string{"127.0.0.1:1"}}, "Join without Gossip"},
		{Config{StoreBudget: -1}, "StoreBudget: must not be negative, got -1"},
	} {
		var b strings.Builder
		assert.ErrorContains(t, Render(&b, tc.cfg), tc.want)
		assert.Empty(t, b.String())
	}
}
