package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/otelcol"
)

// testdataPath is the absolute path of testdata/validate/name.
func testdataPath(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "validate", name))
	require.NoError(t, err)
	return p
}

// rulesConfig is validConfig with a weft_store and the weft_rules
// extensions of rulesExt (YAML bodies by extension ID).
func rulesConfig(rulesExt map[string]string) string {
	var b strings.Builder
	b.WriteString("extensions:\n  weft_store: {}\n")
	ids := []string{"weft_store"}
	for _, id := range []string{"weft_rules", "weft_rules/b"} {
		if body, ok := rulesExt[id]; ok {
			fmt.Fprintf(&b, "  %s:\n%s", id, body)
			ids = append(ids, id)
		}
	}
	return b.String() + strings.Replace(validConfig, "service:\n", "service:\n  extensions: ["+strings.Join(ids, ", ")+"]\n", 1)
}

// ruleFiles is a weft_rules body naming rule sources.
func ruleFiles(sources ...string) string {
	q := make([]string, len(sources))
	for i, s := range sources {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "    rule_files: [" + strings.Join(q, ", ") + "]\n"
}

// TestValidateRuleFiles runs `weft validate` on configurations whose
// weft_rules extensions name broken and valid rule files.
func TestValidateRuleFiles(t *testing.T) {
	bad := testdataPath(t, "bad-promql.yaml")
	badTemplate := testdataPath(t, "bad-template.prometheusrule.yaml")
	okDir := testdataPath(t, "ok")
	utf8 := testdataPath(t, "utf8-names.yaml")
	noMatch := filepath.Join(t.TempDir(), "*.yaml")
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	tests := []struct {
		name     string
		rules    map[string]string
		wantCode int
		wantOut  []string // substrings of the output
		notOut   []string
	}{
		{
			name:     "broken file",
			rules:    map[string]string{"weft_rules": ruleFiles(bad)},
			wantCode: 1,
			wantOut: []string{
				"invalid rule files",
				"extensions::weft_rules: " + bad + `: 6:15: group "app", rule 1, "HighErrorRate": could not parse expression`,
			},
		},
		{
			name:     "valid files: a directory and a glob",
			rules:    map[string]string{"weft_rules": ruleFiles(okDir, filepath.Join(okDir, "*.yaml"), utf8)},
			wantCode: 0,
			notOut:   []string{"Error", "warning"},
		},
		{
			name:     "glob matching nothing is a warning",
			rules:    map[string]string{"weft_rules": ruleFiles(okDir, noMatch)},
			wantCode: 0,
			wantOut:  []string{`warning: extensions::weft_rules: rule_files glob "` + noMatch + `" matches no file`},
			notOut:   []string{"Error"},
		},
		{
			name:     "missing file",
			rules:    map[string]string{"weft_rules": ruleFiles(okDir, missing)},
			wantCode: 1,
			wantOut:  []string{"extensions::weft_rules: rule_files \"" + missing + "\""},
		},
		{
			name: "every error of every extension",
			rules: map[string]string{
				"weft_rules":   ruleFiles(bad, okDir),
				"weft_rules/b": ruleFiles(badTemplate),
			},
			wantCode: 1,
			wantOut: []string{
				"extensions::weft_rules: " + bad + ": 6:15: ",
				"extensions::weft_rules/b: " + badTemplate + `: 10:11: group "app", rule 1, "Down": annotation "summary": template: `,
			},
		},
		{
			name:     "legacy names refuse UTF-8 names",
			rules:    map[string]string{"weft_rules": ruleFiles(utf8) + "    name_validation: legacy\n"},
			wantCode: 1,
			wantOut:  []string{"extensions::weft_rules: " + utf8 + `: 6:15: group "otel", rule 1, "ServerErrors": label name "service.name" is not a legacy name`},
		},
		{
			name:     "the collector's validation comes first",
			rules:    map[string]string{"weft_rules": ruleFiles(bad) + "    evaluation_interval: 0s\n"},
			wantCode: 1,
			wantOut:  []string{"extensions::weft_rules: evaluation_interval: must be positive"},
			notOut:   []string{"invalid rule files"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runWeft(t, nil, "validate", "--config", writeFile(t, "weft.yaml", rulesConfig(tt.rules)))
			assert.Equal(t, tt.wantCode, code, "output:\n%s", out)
			for _, s := range tt.wantOut {
				assert.Contains(t, out, s)
			}
			for _, s := range tt.notOut {
				assert.NotContains(t, out, s)
			}
		})
	}
}

// TestValidateEmbeddedDefaultRules: without --config, validate checks the
// rule files of the embedded profile (WEFT_RULE_FILES).
func TestValidateEmbeddedDefaultRules(t *testing.T) {
	env := []string{"WEFT_DATA_DIR=" + t.TempDir(), "NODE_NAME=node-a", "POD_IP=127.0.0.1"}
	bad := testdataPath(t, "bad-promql.yaml")
	out, code := runWeft(t, append(env, "WEFT_RULE_FILES="+bad), "validate")
	assert.Equal(t, 1, code, "output:\n%s", out)
	assert.Contains(t, out, bad+": 6:15: ")

	out, code = runWeft(t, append(env, "WEFT_RULE_FILES="+filepath.Join(testdataPath(t, "ok"), "*.yaml")), "validate")
	assert.Equal(t, 0, code, "output:\n%s", out)
	assert.Empty(t, out)
}

// TestValidateSetFlag: --set changes the configuration the rule files
// are taken from, as it does for the collector's checks.
func TestValidateSetFlag(t *testing.T) {
	cfg := writeFile(t, "weft.yaml", rulesConfig(map[string]string{"weft_rules": ruleFiles(testdataPath(t, "ok"))}))
	bad := testdataPath(t, "bad-promql.yaml")
	out, code := runWeft(t, nil, "validate", "--config", cfg, "--set", "extensions.weft_rules.rule_files=["+bad+"]")
	assert.Equal(t, 1, code, "output:\n%s", out)
	assert.Contains(t, out, bad+": 6:15: ")

	out, code = runWeft(t, nil, "validate", "--config", cfg, "--set", "no-equal-sign")
	assert.Equal(t, 1, code, "output:\n%s", out)
	assert.Contains(t, out, "missing equal sign")
}

// TestValidateKeepsCollectorCommand: weft's validate has the collector's
// usage, flags and help text.
func TestValidateKeepsCollectorCommand(t *testing.T) {
	ours, _, err := newCommand().Find([]string{"validate"})
	require.NoError(t, err)
	theirs, _, err := otelcol.NewCommand(collectorSettings(defaultConfigURI)).Find([]string{"validate"})
	require.NoError(t, err)
	var a, b bytes.Buffer
	ours.SetOut(&a)
	theirs.SetOut(&b)
	require.NoError(t, ours.Help())
	require.NoError(t, theirs.Help())
	assert.Equal(t, b.String(), a.String())
	assert.Contains(t, a.String(), "--config")
	assert.Contains(t, a.String(), "--set")
	assert.Contains(t, a.String(), "--feature-gates")
}
