package weftrulesextension

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
	"github.com/weftobs/weft/internal/rulesapi"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// twoRules read no series (cluster rules): the group's weft.io/scope
// makes the node evaluate them.
const twoRules = `groups:
- name: a
  labels: {weft.io/scope: node}
  rules:
  - record: r1
    expr: vector(1)
  - alert: A
    expr: vector(1) > 2
`

const threeRules = twoRules + `- name: b
  rules:
  - record: r2
    expr: vector(2)
`

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// TestExtensionLifecycle starts the extension on a host with a store:
// the engine runs, the extension serves rulesapi and the weft_rules.*
// self-metrics, reloads are counted by result, and Shutdown is safe twice.
func TestExtensionLifecycle(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", twoRules)
	st := weftstoretest.Start(t, nil)
	id := component.NewIDWithName(componentType, "lifecycle")
	e := createFromFactory(t, id, tel.NewTelemetrySettings(), func(c *Config) {
		c.RuleFiles = []string{filepath.Join(dir, "*.yaml")}
		c.ReloadInterval = 0
		c.Webhooks = []string{"http://127.0.0.1:9/hook"} // no alert fires: never posted
	})
	var _ rulesapi.Source = e
	assert.Zero(t, e.Status().Rules, "nothing before Start")
	assert.Empty(t, e.RuleGroups())
	require.Error(t, e.Reload(), "not running before Start")
	require.NoError(t, e.Start(t.Context(), weftstoretest.Host(st)))
	require.True(t, e.Status().LastReloadSuccess, e.Status().LastError)
	assert.Equal(t, "applied", e.Status().State)
	require.Len(t, e.RuleGroups(), 1)
	assert.True(t, e.RulesHealth().ReloadOK)

	writeFile(t, dir, "r.yaml", twoRules+"  - alert: B\n    expr: sum(\n")
	require.Error(t, e.Reload())
	assert.Equal(t, "rejected", e.Status().State)
	assert.False(t, e.RulesHealth().ReloadOK)

	gauge := func(name string) int64 {
		m, err := tel.GetMetric(name)
		require.NoError(t, err)
		return m.Data.(metricdata.Gauge[int64]).DataPoints[0].Value
	}
	assert.Equal(t, int64(0), gauge("weft_rules.last_reload_successful"))
	assert.Equal(t, int64(2), gauge("weft_rules.rules"))
	m, err := tel.GetMetric("weft_rules.reloads")
	require.NoError(t, err)
	byResult := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		r, _ := dp.Attributes.Value("result")
		byResult[r.AsString()] = dp.Value
	}
	assert.Equal(t, map[string]int64{"success": 1, "failure": 1}, byResult)
	assert.Equal(t, int64(0), gauge("weft_rules.rejected_sources"))
	sum := func(name, attr string) map[string]int64 {
		m, err := tel.GetMetric(name)
		require.NoError(t, err)
		out := map[string]int64{}
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			v, _ := dp.Attributes.Value(attribute.Key(attr))
			out[v.AsString()] = dp.Value
		}
		return out
	}
	assert.Equal(t, map[string]int64{"sent": 0, "failed": 0, "dropped": 0}, sum("weft_rules.webhook_notifications", "result"))
	assert.Equal(t, map[string]int64{"": 0}, sum("weft_rules.evidence_timeouts", ""))
	_, err = tel.GetMetric("weft_rules.kubernetes_requests")
	assert.Error(t, err, "no Kubernetes source, no requests metric")

	require.NoError(t, e.Shutdown(t.Context()))
	require.NoError(t, e.Shutdown(t.Context()))
}
