package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

// FuzzLoadRuleFile feeds arbitrary bytes to the loader: it must not panic,
// every error must name the file, and a file without errors must yield
// groups (possibly none).
func FuzzLoadRuleFile(f *testing.F) {
	for _, p := range []string{
		filepath.Join("testdata", "deploy", "high-error-rate.rules.yaml"),
		filepath.Join("testdata", "deploy", "high-error-rate.prometheusrule.yaml"),
		filepath.Join(realdata, "rules-istio-tools-stability-prometheusrule.yaml"),
	} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(highErrorRateRules))
	f.Add([]byte("apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nspec: {groups: [{name: a, rules: []}]}\n---\n---\n"))
	f.Add([]byte("apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nspec:\n  groups:\n"))
	p := parser.NewParser(parser.Options{})
	log := discardLogger()
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "fuzz.yaml"
		rgs, errs := loadRuleFile(path, data, p, log)
		for _, err := range errs {
			if !strings.HasPrefix(err.Error(), path+": ") {
				t.Fatalf("error does not name the file: %v", err)
			}
		}
		if len(errs) == 0 && rgs == nil {
			t.Fatalf("no error and no groups")
		}
	})
}
