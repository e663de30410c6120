package rules

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The shipped HighErrorRate rules exist as a rule file and as a
// PrometheusRule manifest; both must load to the same groups.
func TestDeployRulesFilesAgree(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	load := func(name string) any {
		path := filepath.Join("testdata", "deploy", name)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		rgs, errs := loadRuleFile(path, b, p, discardLogger())
		require.Empty(t, errs)
		return rgs
	}
	assert.Equal(t, load("high-error-rate.rules.yaml"), load("high-error-rate.prometheusrule.yaml"))
}

// The Istio variant fires on an istio_requests_total 5xx burst, with its
// summary rendered; the application rule stays quiet.
func TestDeployIstioRuleFires(t *testing.T) {
	st := newTestStore(t, "")
	_, groups, snk := newEvalEngine(t, st, nil, filepath.Join("testdata", "deploy", "high-error-rate.prometheusrule.yaml"))
	require.Len(t, groups, 1)
	g := groups[0]
	base := time.Now().Add(-15 * time.Minute).Truncate(time.Minute)
	series := labels.FromStrings("__name__", "istio_requests_total", "reporter", "destination", "response_code", "503",
		"destination_workload", "reviews-v2", "destination_workload_namespace", "bookinfo")
	v := 0.0
	for ts := base; !ts.After(base.Add(10 * time.Minute)); ts = ts.Add(15 * time.Second) {
		if ts.Sub(base) > 2*time.Minute {
			v += 2 // 2 errors per 15 s: 0.133/s
		}
		appendSample(t, st, series, ts, v, "")
	}
	var firstFiring time.Duration
	for i, ts := 0, base.Add(time.Minute); !ts.After(base.Add(10 * time.Minute)); i, ts = i+1, ts.Add(15*time.Second) {
		snk.setNow(ts)
		evalAsRun(g, i, ts)
		for _, r := range g.AlertingRules() {
			for _, a := range r.ActiveAlerts() {
				require.Equal(t, "HighErrorRateIstio", r.Name())
				if a.State.String() == "firing" && firstFiring == 0 {
					firstFiring = ts.Sub(base)
				}
			}
		}
	}
	// Active from the first evaluation that sees two increasing samples
	// (+2m30s), firing 2m later.
	assert.Equal(t, 4*time.Minute+30*time.Second, firstFiring)
	sends := snk.take()
	require.NotEmpty(t, sends)
	a := sends[0].alerts[0]
	assert.Equal(t, "page", a.Labels.Get("severity"))
	assert.Regexp(t, `^reviews-v2 \(bookinfo\) answers 0\.\d{3} 5xx/s$`, a.Annotations.Get("summary"))
}
