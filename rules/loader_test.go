package rules

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// realdata is the repository's testdata/: real samples, see its SOURCES.md.
const realdata = "../testdata"

func loadForTest(t *testing.T, path string) ([]string, []error) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	rgs, errs := loadRuleFile(path, b, parser.NewParser(parser.Options{}), discardLogger())
	if len(errs) > 0 {
		return nil, errs
	}
	var names []string
	for _, g := range rgs.Groups {
		names = append(names, g.Name)
	}
	return names, nil
}

func TestLoadRealManifests(t *testing.T) {
	tests := []struct {
		file   string
		groups []string
		rules  int
	}{
		{"rules-istio-tools-stability-prometheusrule.yaml",
			[]string{"./basic.rules", "./workload.rules", "./infra.rules", "./controlplane.rules", "istio.recording-rules", "k8s.rules"}, 0},
		{"rules-kube-prometheus-node-exporter-prometheusrule.yaml", []string{"node-exporter", "node-exporter.rules"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			names, errs := loadForTest(t, filepath.Join(realdata, tt.file))
			require.Empty(t, errs)
			assert.Equal(t, tt.groups, names)
		})
	}
}

func TestLoadStrictErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string // substrings of the joined error
	}{
		{"rule file unknown key", `groups:
- name: a
  rules:
  - alert: A
    expr: up == 0
    forr: 5m
`, []string{"x.yaml", "line 6", "forr"}},
		{"rule file bad promql", `groups:
- name: a
  rules:
  - alert: A
    expr: rate(up[5m] > 0
`, []string{"x.yaml", "5:11", `group "a", rule 1, "A"`}},
		{"rule file bad duration", `groups:
- name: a
  rules:
  - alert: A
    expr: up == 0
    for: 5 minutes
`, []string{"x.yaml", "6:10", "for", "5 minutes"}},
		{"rule file duplicate group", `groups:
- name: a
  rules: [{record: r, expr: up}]
- name: a
  rules: [{record: r, expr: up}]
`, []string{"x.yaml", "4:9", `group name "a" repeated (first at line 2)`}},
		{"rule file second document", "groups: []\n---\ngroups: []\n", []string{"x.yaml", "several YAML documents"}},
		{"manifest bad promql on its line", `# leading comment
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: x
  namespace: y
spec:
  groups:
  - name: g
    rules:
    - alert: A
      expr: sum(rate(x[5m])) by (
      for: 2m
`, []string{"x.yaml", "12:13", `group "g", rule 1, "A"`}},
		{"manifest unknown spec key", `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: x}
spec:
  groups: []
  grups: []
`, []string{"x.yaml", "6:3", "grups"}},
		{"manifest unknown top key", `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: x}
specs: {}
`, []string{"x.yaml", "line 4", "specs"}},
		{"manifest unknown rule key in second document", `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: x}
spec:
  groups:
  - name: g
    rules: [{alert: A, expr: up == 0}]
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: y}
spec:
  groups:
  - name: h
    rules:
    - alert: B
      expr: up == 0
      keep_firing: 5m
`, []string{"x.yaml", "line 18", "keep_firing"}},
		{"manifest duplicate group across documents", `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: x}
spec:
  groups:
  - name: g
    rules: [{alert: A, expr: up == 0}]
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: y}
spec:
  groups:
  - name: g
    rules: [{alert: B, expr: up == 0}]
`, []string{"x.yaml", "14:", `group name "g" repeated (first at line 6)`}},
		{"manifest wrong kind", `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: x}
spec: {}
`, []string{"x.yaml", "ServiceMonitor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "x.yaml")
			require.NoError(t, os.WriteFile(p, []byte(tt.content), 0o600))
			_, errs := loadForTest(t, p)
			require.NotEmpty(t, errs)
			msg := joinErrs(errs).Error()
			for _, w := range tt.want {
				assert.Contains(t, msg, w)
			}
		})
	}
}

func TestLoadManifestGroupsKeepRules(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: x
  creationTimestamp: null
  labels: {a: b}
spec:
  groups:
  - name: g
    interval: 30s
    rules:
    - alert: A
      expr: |
        up
          == 0
      for: 2m
      keep_firing_for: 1m
      labels: {severity: page}
      annotations: {summary: "{{ $labels.job }} down"}
status: {}
`), 0o600))
	b, _ := os.ReadFile(p)
	rgs, errs := loadRuleFile(p, b, parser.NewParser(parser.Options{}), discardLogger())
	require.Empty(t, errs)
	require.Len(t, rgs.Groups, 1)
	g := rgs.Groups[0]
	assert.Equal(t, "g", g.Name)
	require.Len(t, g.Rules, 1)
	r := g.Rules[0]
	assert.Equal(t, "A", r.Alert)
	assert.Equal(t, "up\n  == 0\n", r.Expr)
	assert.Equal(t, "2m", r.For.String())
	assert.Equal(t, "1m", r.KeepFiringFor.String())
	assert.Equal(t, "page", r.Labels["severity"])
}

func TestExpandSources(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.yaml", "b.yml", "c.txt", ".hidden.yaml", "sub/d.yaml"} {
		p := filepath.Join(dir, f)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte("groups: []\n"), 0o600))
	}
	files, err := expandSources([]string{dir, filepath.Join(dir, "*.yaml"), filepath.Join(dir, "nomatch-*.yaml"), filepath.Join(dir, "sub", "d.yaml")})
	require.NoError(t, err)
	assert.Equal(t, []string{
		filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yml"), filepath.Join(dir, "sub", "d.yaml"),
	}, files)
	_, err = expandSources([]string{filepath.Join(dir, "missing.yaml")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.yaml")
}

func TestLoadManifestLayouts(t *testing.T) {
	tests := []struct {
		name    string
		content string
		groups  []string
	}{
		{"flow spec", "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: x}\nspec: {groups: [{name: a, rules: [{alert: A, expr: 'up == 0', for: 1m}]}]}\n", []string{"a"}},
		{"crlf", "apiVersion: monitoring.coreos.com/v1\r\nkind: PrometheusRule\r\nmetadata:\r\n  name: x\r\nspec:\r\n  groups:\r\n  - name: a\r\n    rules:\r\n    - record: r\r\n      expr: up\r\n", []string{"a"}},
		{"root key after spec", "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nspec:\n  groups:\n  - name: a\n    rules:\n    - record: r\n      expr: |\n        sum(up)\nmetadata:\n  name: late\n", []string{"a"}},
		{"empty documents around", "---\napiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nspec:\n  groups:\n  - name: a\n    rules: []\n---\n# only a comment\n---\napiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nspec:\n  groups:\n  - name: b\n    rules: []\n", []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "m.yaml", tt.content)
			names, errs := loadForTest(t, p)
			require.Empty(t, errs)
			assert.Equal(t, tt.groups, names)
		})
	}
}

// The real-world manifests evaluate over the store without rule errors.
func TestRealManifestsEvaluate(t *testing.T) {
	st := newTestStore(t, "")
	_, groups, _ := newEvalEngine(t, st, nil,
		filepath.Join(realdata, "rules-istio-tools-stability-prometheusrule.yaml"),
		filepath.Join(realdata, "rules-kube-prometheus-node-exporter-prometheusrule.yaml"))
	require.Len(t, groups, 8)
	rules := 0
	for _, g := range groups {
		evalAsRun(g, 0, time.Now())
		for _, r := range g.Rules() {
			rules++
			assert.NoError(t, r.LastError(), "%s/%s", g.Name(), r.Name())
			assert.Equal(t, "ok", string(r.Health()), "%s/%s", g.Name(), r.Name())
		}
	}
	assert.Greater(t, rules, 30)
}
