package rules

import (
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validateCorpus is every file of testdata/validate (bad-*: broken, ok-*:
// valid) and the real PrometheusRule samples at the repository's top.
func validateCorpus(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "validate", "*.yaml"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 20)
	return append(files,
		filepath.Join("..", "testdata", "rules-istio-tools-stability-prometheusrule.yaml"),
		filepath.Join("..", "testdata", "rules-kube-prometheus-node-exporter-prometheusrule.yaml"))
}

// wantLine is where the first error of each broken file is, after "file: ".
var wantLine = map[string]string{
	"bad-alert-and-record.yaml":          "6:17: 5:16:", // record, alert
	"bad-duplicate-group.yaml":           "7:11:",
	"bad-duration.yaml":                  "7:14:",
	"bad-label-name.yaml":                "9:11:",
	"bad-missing-expr.yaml":              "5:9:", // the rule
	"bad-multi-document.yaml":            "8:",   // the second document
	"bad-not-yaml.yaml":                  "yaml: line 2:",
	"bad-prometheusrule-apiversion.yaml": "2:",
	"bad-prometheusrule-kind.yaml":       "2:",
	"bad-prometheusrule-promql.yaml":     "25:17:", // in the second document
	"bad-prometheusrule-spec-key.yaml":   "7:3:",
	"bad-promql.yaml":                    "6:15:",
	"bad-record-braces.yaml":             "5:17:",
	"bad-recording-annotations.yaml":     "5:17:",
	"bad-template.yaml":                  "5:9:", // the rule
	"bad-unknown-key.yaml":               "yaml: unmarshal errors:\n  line 7:",
	"ok-utf8-names.yaml":                 "7:17:", // legacy only: the recording rule's name
}

// lineRef finds the line an error names: "file: 12:3: …", "file: 12: …"
// or yaml's "line 12".
var lineRef = regexp.MustCompile(`^[^:]+: (\d+):|line (\d+)`)

// TestValidateAgreesWithExtension: for every corpus file and both name
// validations, CheckRuleFiles (weft validate) and a running extension
// loading that file alone give the same verdict and the same errors, and
// broken files are reported with file and line.
func TestValidateAgreesWithExtension(t *testing.T) {
	st := newTestStore(t, "")
	for _, names := range []string{nameValidationUTF8, nameValidationLegacy} {
		for _, file := range validateCorpus(t) {
			base := filepath.Base(file)
			t.Run(names+"/"+base, func(t *testing.T) {
				cfg := testConfig()
				cfg.RuleFiles = []string{file}
				cfg.NameValidation = names
				cfg.ReloadInterval = 0
				wantOK := !strings.HasPrefix(base, "bad-") &&
					(names == nameValidationUTF8 || base != "ok-utf8-names.yaml")

				warnings, errs := CheckRuleFiles(cfg)
				assert.Empty(t, warnings)
				assert.Equal(t, wantOK, len(errs) == 0, "validate: %v", errs)

				e, err := New(cfg, st, Settings{})
				require.NoError(t, err)
				require.NoError(t, e.Start())
				s := e.Status()
				e.Stop()

				assert.Equal(t, wantOK, s.LastReloadSuccess, "extension: %s", s.LastError)
				assert.Equal(t, errText(errs), s.LastError, "same errors, same text")
				if wantOK {
					if base != "ok-empty.yaml" {
						assert.NotZero(t, s.Groups, "a valid file runs its groups")
					}
					return
				}
				for _, err := range errs {
					assert.True(t, strings.HasPrefix(err.Error(), file+": "), "names the file: %v", err)
				}
				first := strings.TrimPrefix(errs[0].Error(), file+": ")
				want, ok := wantLine[base]
				require.True(t, ok, "add %s to wantLine", base)
				assert.True(t, strings.HasPrefix(first, want), "first error at %q: %s", want, first)
				for _, err := range errs {
					assert.Regexp(t, lineRef, err.Error(), "names the line")
				}
			})
		}
	}
}

// errText is the text of the joined errors, as the extension reports them.
func errText(errs []error) string {
	if err := errors.Join(errs...); err != nil {
		return err.Error()
	}
	return ""
}

// TestCheckRuleFilesSources: rule_files expand as in the extension; a glob
// matching nothing is a warning, a missing plain path an error, and the
// errors of every file are reported.
func TestCheckRuleFilesSources(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.yaml", "groups:\n- name: a\n  rules:\n  - alert: A\n    expr: up ==\n")
	b := writeFile(t, dir, "b.yml", "groups:\n- name: b\n  rules:\n  - alert: B\n    expr: up\n    for: soon\n")
	writeFile(t, dir, ".hidden.yaml", "not: rules\n")
	writeFile(t, dir, "notes.txt", "not rules")
	missing := filepath.Join(dir, "missing.yaml")
	empty := filepath.Join(t.TempDir(), "*.yaml")

	cfg := testConfig()
	cfg.RuleFiles = []string{dir, empty, missing}
	warnings, errs := CheckRuleFiles(cfg)
	assert.Equal(t, []string{`rule_files glob "` + empty + `" matches no file`}, warnings)
	require.Len(t, errs, 3, "%v", errs)
	assert.True(t, strings.HasPrefix(errs[0].Error(), a+": 5:11: "), errs[0].Error())
	assert.True(t, strings.HasPrefix(errs[1].Error(), b+": 6:10: for: "), errs[1].Error())
	assert.Contains(t, errs[2].Error(), missing)

	cfg.RuleFiles = []string{empty}
	warnings, errs = CheckRuleFiles(cfg)
	assert.Len(t, warnings, 1)
	assert.Empty(t, errs, "a glob matching nothing is no error")
}

// TestNameValidationLegacy: with name_validation: legacy every UTF-8 name
// is refused where it is written, with its line; utf8 accepts them all.
func TestNameValidationLegacy(t *testing.T) {
	rule := func(body string) string {
		return "groups:\n  - name: g\n    rules:\n" + body
	}
	tests := []struct {
		name, content, want string
	}{
		{"group label", "groups:\n  - name: g\n    labels: {\"team.name\": a}\n    rules: [{record: r, expr: up}]\n",
			`3:14: group "g": label name "team.name" is not a legacy name`},
		{"rule label", rule("      - alert: A\n        expr: up == 0\n        labels:\n          \"team.name\": a\n"),
			`7:11: group "g", rule 1, "A": label name "team.name" is not a legacy name`},
		{"annotation", rule("      - alert: A\n        expr: up == 0\n        annotations:\n          runbook.url: x\n"),
			`7:11: group "g", rule 1, "A": annotation name "runbook.url" is not a legacy name`},
		{"recording rule name", rule("      - record: \"http.requests:rate5m\"\n        expr: up\n"),
			`4:17: group "g", rule 1, "http.requests:rate5m": recording rule name "http.requests:rate5m" is not a legacy name`},
		{"quoted metric name", rule("      - alert: A\n        expr: '{\"my.metric\"} > 0'\n"),
			`5:15: group "g", rule 1, "A": metric name "my.metric" is not a legacy name`},
		{"__name__ matcher", rule("      - alert: A\n        expr: '{__name__=\"my.metric\"} > 0'\n"),
			`metric name "my.metric" is not a legacy name`},
		{"matcher label", rule("      - alert: A\n        expr: 'up{\"k8s.pod.name\"=\"a\"} == 0'\n"),
			`label name "k8s.pod.name" is not a legacy name`},
		{"by", rule("      - record: r\n        expr: 'sum by (\"service.name\") (up)'\n"),
			`label name "service.name" is not a legacy name`},
		{"without", rule("      - record: r\n        expr: 'sum without (\"service.name\") (up)'\n"),
			`label name "service.name" is not a legacy name`},
		{"on and group_left", rule("      - record: r\n        expr: 'up * on (\"a.b\") group_left (\"c.d\") up'\n"),
			`label name "c.d" is not a legacy name`},
		{"label_replace", rule("      - record: r\n        expr: 'label_replace(up, \"a.b\", \"$1\", \"job\", \"(.*)\")'\n"),
			`label name "a.b" is not a legacy name`},
		{"label_join", rule("      - record: r\n        expr: 'label_join(up, \"dst\", \",\", \"a.b\")'\n"),
			`label name "a.b" is not a legacy name`},
		{"PrometheusRule", "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: x}\nspec:\n  groups:\n" +
			"    - name: g\n      rules:\n        - alert: A\n          expr: '{\"my.metric\"} > 0'\n",
			`9:17: group "g", rule 1, "A": metric name "my.metric" is not a legacy name`},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, dir, strings.ReplaceAll(tt.name, " ", "_")+".yaml", tt.content)
			cfg := testConfig()
			cfg.RuleFiles = []string{f}
			_, errs := CheckRuleFiles(cfg)
			require.Empty(t, errs, "utf8 accepts UTF-8 names")

			cfg.NameValidation = nameValidationLegacy
			require.NoError(t, cfg.Check())
			_, errs = CheckRuleFiles(cfg)
			require.NotEmpty(t, errs)
			assert.Contains(t, errText(errs), f+": ")
			assert.Contains(t, errText(errs), tt.want)
			assert.Contains(t, errText(errs), "(name_validation: legacy: ")
		})
	}

	// Legacy names stay valid: colons in metric names, regular expressions
	// on __name__, quoted legacy names.
	f := writeFile(t, dir, "legacy.yaml", rule("      - record: job:up:sum\n        expr: 'sum by (job) ({__name__=~\"up|x.y\", \"job\"=\"a\"})'\n"+
		"      - alert: A\n        expr: 'label_replace(job:up:sum, \"dst\", \"$1\", \"job\", \"(.*)\") * on (job) group_left (instance) up == 0'\n"+
		"        labels: {severity: page}\n        annotations: {runbook_url: x}\n"))
	cfg := testConfig()
	cfg.RuleFiles = []string{f}
	cfg.NameValidation = nameValidationLegacy
	_, errs := CheckRuleFiles(cfg)
	assert.Empty(t, errs)
}

func TestNameValidationConfig(t *testing.T) {
	cfg := testConfig()
	assert.Equal(t, "utf8", cfg.NameValidation, "default: today's behaviour")
	cfg.NameValidation = "UTF-8"
	assert.ErrorContains(t, cfg.Check(), `name_validation: must be "utf8" or "legacy", got "UTF-8"`)

	cfg.NameValidation = nameValidationLegacy
	cfg.ExternalLabels = map[string]string{"cluster": "a", "k8s.cluster.name": "b"}
	assert.EqualError(t, cfg.Check(), `external_labels: "k8s.cluster.name" is not a legacy label name (name_validation: legacy)`)
	cfg.NameValidation = nameValidationUTF8
	assert.NoError(t, cfg.Check())
}

// TestNameValidationKubernetesObjects: the Kubernetes source of a running
// extension applies name_validation too.
func TestNameValidationKubernetesObjects(t *testing.T) {
	obj := []byte("apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: x}\nspec:\n  groups:\n" +
		"    - name: g\n      rules:\n        - alert: A\n          expr: '{\"my.metric\"} > 0'\n")
	for _, names := range []string{nameValidationUTF8, nameValidationLegacy} {
		cfg := testConfig()
		cfg.NameValidation = names
		e := newEngine(cfg, Settings{})
		e.kubeGood = map[string][]byte{}
		_, _, rejected := e.parseKube(map[string]*rulefmt.RuleGroups{}, []string{"kubernetes:shop/x"}, [][]byte{obj})
		if names == nameValidationUTF8 {
			assert.Empty(t, rejected)
			continue
		}
		require.Len(t, rejected, 1)
		assert.Contains(t, rejected[0].Error(), `kubernetes:shop/x: 9:17: group "g", rule 1, "A": metric name "my.metric" is not a legacy name`)
	}
}
