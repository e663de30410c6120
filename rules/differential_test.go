//go:build integration

package rules

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// promtool's rule unit test format (the fields used here).
type promtoolFile struct {
	RuleFiles          []string       `yaml:"rule_files"`
	EvaluationInterval string         `yaml:"evaluation_interval"`
	Tests              []promtoolTest `yaml:"tests"`
}

type promtoolTest struct {
	Interval     string              `yaml:"interval"`
	InputSeries  []promtoolSeries    `yaml:"input_series"`
	AlertRuleTes []promtoolAlertTest `yaml:"alert_rule_test"`
}

type promtoolSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type promtoolAlertTest struct {
	EvalTime  string          `yaml:"eval_time"`
	Alertname string          `yaml:"alertname"`
	ExpAlerts []promtoolAlert `yaml:"exp_alerts"`
}

type promtoolAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

// TestDifferentialAgainstPrometheus evaluates the shipped HighErrorRate
// rules over a 20-minute timeline with weft, then hands the same rules,
// the same input series and weft's firing alerts (labels and rendered
// annotations at every 15 s evaluation) to a real Prometheus rule engine
// (promtool test rules, Debian package). promtool passes only if
// Prometheus fires exactly the same alerts at exactly the same times.
func TestDifferentialAgainstPrometheus(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool not found: apt-get install prometheus (it ships promtool)")

	rulesPath, err := filepath.Abs(filepath.Join("testdata", "deploy", "high-error-rate.rules.yaml"))
	require.NoError(t, err)
	const (
		evalEvery = 15 * time.Second
		// Samples off the evaluation grid, so that no sample sits on a
		// range boundary (Prometheus 2 ranges are closed on the left,
		// Prometheus 3 ranges open): both engines select the same samples.
		sampleEvery = 14999 * time.Millisecond
		span        = 20 * time.Minute
	)
	type input struct {
		ls    labels.Labels
		value func(d time.Duration) float64 // counter value at offset d
	}
	burst := func(from, to time.Duration, perSample float64) func(time.Duration) float64 {
		return func(d time.Duration) float64 {
			n := 0.0
			for x := time.Duration(0); x <= d; x += sampleEvery {
				if x > from && x <= to {
					n += perSample
				}
			}
			return n
		}
	}
	inputs := []input{
		{labels.FromStrings("__name__", "http_requests_total", "job", "bookinfo/reviews", "status", "500",
			"k8s_namespace_name", "bookinfo", "k8s_pod_name", "reviews-v2"), burst(3*time.Minute, 9*time.Minute, 1)},
		{labels.FromStrings("__name__", "http_requests_total", "job", "bookinfo/reviews", "status", "503",
			"k8s_namespace_name", "bookinfo", "k8s_pod_name", "reviews-v1"), burst(12*time.Minute, 13*time.Minute, 3)},
		{labels.FromStrings("__name__", "http_requests_total", "job", "bookinfo/reviews", "status", "200",
			"k8s_namespace_name", "bookinfo", "k8s_pod_name", "reviews-v2"), burst(0, span, 5)},
		{labels.FromStrings("__name__", "istio_requests_total", "reporter", "destination", "response_code", "503",
			"destination_workload", "ratings-v1", "destination_workload_namespace", "bookinfo"), burst(6*time.Minute, 12*time.Minute, 2)},
	}

	// weft: the store, the extension's rule manager, explicit times.
	st := newTestStore(t, "")
	base := time.Now().Add(-25 * time.Minute).Truncate(time.Minute)
	var series []promtoolSeries
	for _, in := range inputs {
		var vals []string
		for d := time.Duration(0); d <= span; d += sampleEvery {
			v := in.value(d)
			appendSample(t, st, in.ls, base.Add(d), v, "")
			vals = append(vals, strconv.FormatFloat(v, 'f', -1, 64))
		}
		series = append(series, promtoolSeries{Series: in.ls.String(), Values: strings.Join(vals, " ")})
	}
	_, groups, _ := newEvalEngine(t, st, nil, rulesPath)
	require.Len(t, groups, 1)
	g := groups[0]

	var tests []promtoolAlertTest
	firing := 0
	for i, d := 0, time.Duration(0); d <= span; i, d = i+1, d+evalEvery {
		evalAsRun(g, i, base.Add(d))
		for _, r := range g.AlertingRules() {
			tc := promtoolAlertTest{EvalTime: fmt.Sprintf("%dms", d.Milliseconds()), Alertname: r.Name(), ExpAlerts: []promtoolAlert{}}
			for _, a := range r.ActiveAlerts() {
				if a.State.String() != "firing" {
					continue
				}
				firing++
				ls := a.Labels.Map()
				delete(ls, labels.AlertName)
				tc.ExpAlerts = append(tc.ExpAlerts, promtoolAlert{ExpLabels: ls, ExpAnnotations: a.Annotations.Map()})
			}
			slices.SortFunc(tc.ExpAlerts, func(x, y promtoolAlert) int {
				return strings.Compare(labels.FromMap(x.ExpLabels).String(), labels.FromMap(y.ExpLabels).String())
			})
			tests = append(tests, tc)
		}
	}
	require.Greater(t, firing, 20, "the timeline must fire alerts of both rules")
	names := map[string]bool{}
	for _, tc := range tests {
		if len(tc.ExpAlerts) > 0 {
			names[tc.Alertname] = true
		}
	}
	require.Equal(t, []string{"HighErrorRate", "HighErrorRateIstio"}, slices.Sorted(maps.Keys(names)))

	file := promtoolFile{
		RuleFiles: []string{rulesPath}, EvaluationInterval: "15s",
		Tests: []promtoolTest{{Interval: fmt.Sprintf("%dms", sampleEvery.Milliseconds()), InputSeries: series, AlertRuleTes: tests}},
	}
	run := func(f promtoolFile) ([]byte, error) {
		b, err := yaml.Marshal(f)
		require.NoError(t, err)
		testPath := filepath.Join(t.TempDir(), "differential.test.yaml")
		require.NoError(t, os.WriteFile(testPath, b, 0o600))
		return exec.Command(promtool, "test", "rules", testPath).CombinedOutput()
	}
	out, err := run(file)
	require.NoError(t, err, "Prometheus disagrees with weft:\n%s", out)
	require.Contains(t, string(out), "SUCCESS")

	// Control: the same file with the first firing evaluation claimed
	// quiet must fail, or promtool is not checking anything.
	wrong := file
	wrong.Tests = []promtoolTest{file.Tests[0]}
	wrong.Tests[0].AlertRuleTes = slices.Clone(tests)
	for i, tc := range wrong.Tests[0].AlertRuleTes {
		if len(tc.ExpAlerts) > 0 {
			wrong.Tests[0].AlertRuleTes[i].ExpAlerts = []promtoolAlert{}
			break
		}
	}
	out, err = run(wrong)
	require.Error(t, err, "promtool accepted a wrong expectation:\n%s", out)
	require.Contains(t, string(out), "FAILED")
}
