package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/weftobs/weft/rules"
)

// The shipped Istio sample and a file of our own.
var splitInputs = []string{
	filepath.Join("..", "..", "testdata", "rules-istio-tools-stability-prometheusrule.yaml"),
}

const splitOwnRules = `groups:
- name: services
  interval: 30s
  labels: {team: mesh}
  rules:
  - alert: ServiceErrorRate
    expr: sum by (service) (rate(errors_total[5m])) / sum by (service) (rate(requests_total[5m])) > 0.05
    for: 2m
    labels: {severity: page}
    annotations: {summary: "{{ $labels.service }} fails"}
  - alert: PodErrorRate
    expr: sum by (pod) (rate(errors_total[5m])) > 1
  - record: service:latency:p99
    expr: histogram_quantile(0.99, sum by (service, le) (rate(latency_bucket[5m])))
  - alert: JobXMissing
    expr: absent(up{job="x"})
    keep_firing_for: 1m
`

func TestRulesSplitWritesTheClusterFile(t *testing.T) {
	own := writeFile(t, "own.yaml", splitOwnRules)
	out := filepath.Join(t.TempDir(), "cluster.yaml")
	var stdout, stderr bytes.Buffer
	require.NoError(t, rulesSplit(&stdout, &stderr, append(slices.Clone(splitInputs), own), rules.ScopeOptions{}, out))
	assert.Empty(t, stdout.String())
	b, err := os.ReadFile(out)
	require.NoError(t, err)

	var f struct {
		Groups []struct {
			Name     string            `yaml:"name"`
			Interval string            `yaml:"interval"`
			Strategy string            `yaml:"partial_response_strategy"`
			Labels   map[string]string `yaml:"labels"`
			Rules    []struct {
				Alert, Record, Expr, For string
				KeepFiringFor            string            `yaml:"keep_firing_for"`
				Labels                   map[string]string `yaml:"labels"`
				Annotations              map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&f), string(b))
	byName := map[string]int{}
	for i, g := range f.Groups {
		byName[g.Name] = i
		assert.Equal(t, "abort", g.Strategy, g.Name)
	}
	require.Contains(t, byName, "services")
	g := f.Groups[byName["services"]]
	assert.Equal(t, "30s", g.Interval)
	assert.Equal(t, map[string]string{"team": "mesh"}, g.Labels)
	require.Len(t, g.Rules, 3, "PodErrorRate is a node rule")
	assert.Equal(t, "ServiceErrorRate", g.Rules[0].Alert)
	assert.Regexp(t, `^sum by \(service\) \(weft:partial:[0-9a-f]{16}\) / sum by \(service\) \(weft:partial:[0-9a-f]{16}\) > 0.05$`, g.Rules[0].Expr)
	assert.Equal(t, "2m", g.Rules[0].For)
	assert.Equal(t, map[string]string{"severity": "page"}, g.Rules[0].Labels)
	assert.Equal(t, map[string]string{"summary": "{{ $labels.service }} fails"}, g.Rules[0].Annotations)
	assert.Equal(t, "service:latency:p99", g.Rules[1].Record)
	assert.Regexp(t, `^histogram_quantile\(0.99, sum by \(service, le\) \(weft:partial:[0-9a-f]{16}\)\)$`, g.Rules[1].Expr)
	assert.Equal(t, "JobXMissing", g.Rules[2].Alert)
	assert.Equal(t, `absent(up{job="x"})`, g.Rules[2].Expr)
	assert.Equal(t, "1m", g.Rules[2].KeepFiringFor)
	assert.Contains(t, byName, "./workload.rules")
	assert.NotContains(t, byName, "istio.recording-rules", "only node rules there")

	// Every partial the cluster file reads is one the agents record
	// (the engine's node groups from the same files).
	plan, err := rules.SplitFiles(append(slices.Clone(splitInputs), own), rules.ScopeOptions{})
	require.NoError(t, err)
	recorded := map[string]bool{}
	for _, rgs := range plan.NodeGroups(false) {
		for _, ng := range rgs.Groups {
			for _, r := range ng.Rules {
				recorded[r.Record] = true
			}
		}
	}
	refs := regexp.MustCompile(`weft:partial:[0-9a-f]{16}`).FindAllString(string(b), -1)
	require.NotEmpty(t, refs)
	for _, r := range refs {
		assert.True(t, recorded[r], "%s is read by the ruler but recorded by no node", r)
	}

	// The summary: one line per rule, naming file, group and rule.
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	assert.Contains(t, lines, own+`: group "services", rule 2, "PodErrorRate": node: sum by (pod) keeps pod`)
	var svc string
	for _, l := range lines {
		if strings.Contains(l, `"ServiceErrorRate"`) {
			svc = l
		}
	}
	assert.Contains(t, svc, `cluster: sum by (service) drops node/pod/instance; pushed down: weft:partial:`)
	assert.Contains(t, stderr.String(), `"JobXMissing": cluster: absent() fires on every node that lacks the series; not pushed down`)

	// Deterministic: the same input, the same bytes.
	var again bytes.Buffer
	require.NoError(t, rulesSplit(&again, &bytes.Buffer{}, append(slices.Clone(splitInputs), own), rules.ScopeOptions{}, ""))
	assert.Equal(t, string(b), again.String())
}

func TestRulesSplitPartitionLabel(t *testing.T) {
	own := writeFile(t, "own.yaml", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum by (hostname) (rate(x[5m])) > 1\n")
	var stdout, stderr bytes.Buffer
	require.NoError(t, rulesSplit(&stdout, &stderr, []string{own}, rules.ScopeOptions{}, ""))
	assert.Contains(t, stdout.String(), "alert: A")
	stdout.Reset()
	stderr.Reset()
	require.NoError(t, rulesSplit(&stdout, &stderr, []string{own}, rules.ScopeOptions{PartitionLabels: []string{"hostname"}}, ""))
	assert.Contains(t, stdout.String(), "groups: []")
	assert.Contains(t, stdout.String(), "# Partition labels: node, pod, instance, hostname.")
	assert.Contains(t, stderr.String(), "node: sum by (hostname) keeps hostname")
}

// The subcommand is part of the weft command; errors name file, group
// and rule and exit non-zero.
func TestRulesSplitCommand(t *testing.T) {
	bad := writeFile(t, "bad.yaml", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    annotations:\n      weft.io/scope: everywhere\n")
	out, code := runWeft(t, nil, "rules", "split", bad)
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, bad+`: group "g", rule 1, "A": annotation weft.io/scope: "everywhere": want "node" or "cluster"`)

	good := writeFile(t, "good.yaml", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: count(up) < 3\n")
	out, code = runWeft(t, nil, "rules", "split", "--partition-label", "hostname", good)
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "partial_response_strategy: abort")
	assert.Contains(t, out, "expr: sum(weft:partial:")
	assert.Contains(t, out, `"A": cluster: count over all series drops node/pod/instance/hostname; pushed down`)

	out, code = runWeft(t, nil, "rules", "split", filepath.Join(t.TempDir(), "missing.yaml"))
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "missing.yaml")
}
