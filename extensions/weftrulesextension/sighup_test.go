package weftrulesextension

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promrules "github.com/prometheus/prometheus/rules"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
	"github.com/weftobs/weft/internal/loopback"
)

// createFromFactory builds a weft_rules instance the way the collector does
// (a fresh factory each time, as otelcol calls Factories per reload).
func createFromFactory(t *testing.T, id component.ID, tel component.TelemetrySettings, mod func(*Config)) *Extension {
	t.Helper()
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	mod(cfg)
	require.NoError(t, cfg.Validate())
	set := extension.Settings{ID: id, TelemetrySettings: tel}
	ext, err := f.Create(t.Context(), set, cfg)
	require.NoError(t, err)
	return ext.(*Extension)
}

// TestNewInstanceInheritsLastGoodSet: what a collector reload does to
// weft_rules, done by hand: the instance is shut down, the rule file turns
// invalid, a new instance from a new factory starts. It runs the previous
// set (evaluations go on) and reports the error in Status and in its
// self-metrics; once the file is fixed the new set replaces it.
func TestNewInstanceInheritsLastGoodSet(t *testing.T) {
	id := component.NewIDWithName(componentType, "inherit")
	st := weftstoretest.Start(t, nil)
	host := weftstoretest.Host(st)
	dir := t.TempDir()
	f := writeFile(t, dir, "r.yaml", twoRules)
	mod := func(c *Config) {
		c.RuleFiles = []string{f}
		c.ReloadInterval = 0
		c.EvaluationInterval = 50 * time.Millisecond
	}

	first := createFromFactory(t, id, componenttest.NewNopTelemetrySettings(), mod)
	require.NoError(t, first.Start(t.Context(), host))
	require.True(t, first.Status().LastReloadSuccess)
	require.NoError(t, first.Shutdown(t.Context()))

	writeFile(t, dir, "r.yaml", twoRules+"  - alert: B\n    expr: sum(\n")
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	second := createFromFactory(t, id, tel.NewTelemetrySettings(), mod)
	require.NoError(t, second.Start(t.Context(), host))
	t.Cleanup(func() { require.NoError(t, second.Shutdown(context.Background())) })

	s := second.Status()
	assert.False(t, s.LastReloadSuccess)
	assert.True(t, s.Inherited)
	assert.Contains(t, s.LastError, f+": 10:11:")
	assert.Equal(t, 2, s.Rules)
	assert.Equal(t, []string{f}, s.Files)
	m, err := tel.GetMetric("weft_rules.last_reload_successful")
	require.NoError(t, err)
	assert.Equal(t, int64(0), m.Data.(metricdata.Gauge[int64]).DataPoints[0].Value)
	m, err = tel.GetMetric("weft_rules.reloads")
	require.NoError(t, err)
	dps := m.Data.(metricdata.Sum[int64]).DataPoints
	require.Len(t, dps, 1)
	r, _ := dps[0].Attributes.Value("result")
	assert.Equal(t, "failure", r.AsString())
	assert.Equal(t, int64(1), dps[0].Value)

	// The inherited recording rule is evaluated by the new instance.
	evalStart := time.Now()
	require.Eventually(t, func() bool {
		g := second.Groups()
		return len(g) == 1 && g[0].GetLastEvaluation().After(evalStart)
	}, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return instantCount(t, st, "r1") == 1 }, 10*time.Second, 10*time.Millisecond)

	// Another ID inherits nothing.
	other := createFromFactory(t, component.NewIDWithName(componentType, "other"), componenttest.NewNopTelemetrySettings(), mod)
	require.NoError(t, other.Start(t.Context(), host))
	t.Cleanup(func() { require.NoError(t, other.Shutdown(context.Background())) })
	assert.False(t, other.Status().Inherited)
	assert.Zero(t, other.Status().Rules)

	// Fixed: the instance's own set replaces the inherited one.
	writeFile(t, dir, "r.yaml", threeRules)
	require.NoError(t, second.Reload())
	s = second.Status()
	assert.True(t, s.LastReloadSuccess)
	assert.False(t, s.Inherited)
	assert.Equal(t, 3, s.Rules)
}

// instantCount is the number of series named name with a sample in the
// last minute.
func instantCount(t *testing.T, st *weftstoreextension.Store, name string) int {
	t.Helper()
	q, err := st.Queryable().Querier(time.Now().Add(-time.Minute).UnixMilli(), time.Now().UnixMilli())
	require.NoError(t, err)
	defer q.Close()
	n := 0
	ss := q.Select(t.Context(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", name))
	for ss.Next() {
		n++
	}
	require.NoError(t, ss.Err())
	return n
}

// instances records the weft_rules instances a collector creates.
type instances struct {
	mu  sync.Mutex
	all []*Extension
}

func (in *instances) factory() extension.Factory {
	real := NewFactory()
	return extension.NewFactory(real.Type(), real.CreateDefaultConfig,
		func(ctx context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
			ext, err := real.Create(ctx, set, cfg)
			if err == nil {
				in.mu.Lock()
				in.all = append(in.all, ext.(*Extension))
				in.mu.Unlock()
			}
			return ext, err
		}, real.Stability())
}

func (in *instances) last() (*Extension, int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.all) == 0 {
		return nil, 0
	}
	return in.all[len(in.all)-1], len(in.all)
}

// testCollector is weft_rules (and weft_store) in a real otelcol.Collector
// with a file config; reload sends the process SIGHUP.
type testCollector struct {
	col         *otelcol.Collector
	in          *instances
	metricsAddr string // the collector's own Prometheus endpoint
}

// startCollector runs a collector whose weft_rules reads ruleFile.
func startCollector(t *testing.T, dir, ruleFile string) *testCollector {
	t.Helper()
	// Catch SIGHUP here too, so a signal sent before the collector listens
	// cannot end the test process.
	hup := make(chan os.Signal, 8)
	signal.Notify(hup, syscall.SIGHUP)
	t.Cleanup(func() { signal.Stop(hup) })

	addrs, err := loopback.FreeAddrs(1)
	require.NoError(t, err)
	host, port, _ := strings.Cut(addrs[0], ":")
	cfgPath := writeFile(t, dir, "weft.yaml", fmt.Sprintf(`extensions:
  weft_store: {}
  weft_rules:
    rule_files: [%q]
    evaluation_interval: 100ms
receivers:
  nop: {}
exporters:
  nop: {}
service:
  extensions: [weft_store, weft_rules]
  pipelines:
    traces: {receivers: [nop], exporters: [nop]}
  telemetry:
    logs: {level: warn}
    metrics:
      readers:
        - pull:
            exporter:
              prometheus: {host: %q, port: %s}
`, ruleFile, host, port))

	in := &instances{}
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo: component.NewDefaultBuildInfo(),
		Factories: func() (otelcol.Factories, error) {
			var f otelcol.Factories
			var err error
			f.Telemetry = otelconftelemetry.NewFactory()
			if f.Extensions, err = otelcol.MakeFactoryMap(weftstoreextension.NewFactory(), in.factory()); err != nil {
				return f, err
			}
			if f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](receivertest.NewNopFactory()); err != nil {
				return f, err
			}
			f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](exportertest.NewNopFactory())
			return f, err
		},
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs:              []string{"file:" + cfgPath},
			ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory()},
		}},
		DisableGracefulShutdown: true,
	})
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()
	t.Cleanup(func() { stop(); require.NoError(t, <-done) })

	require.Eventually(t, func() bool {
		e, _ := in.last()
		return col.GetState() == otelcol.StateRunning && e != nil && !e.Status().LastReload.IsZero()
	}, 30*time.Second, 10*time.Millisecond)
	return &testCollector{col: col, in: in, metricsAddr: addrs[0]}
}

// sighup reloads the collector by signal and returns the new weft_rules
// instance once it has loaded its rules.
func (c *testCollector) sighup(t *testing.T) *Extension {
	t.Helper()
	_, before := c.in.last()
	require.Eventually(t, func() bool {
		e, n := c.in.last()
		if n == before {
			if c.col.GetState() == otelcol.StateRunning {
				require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
			}
			return false
		}
		return c.col.GetState() == otelcol.StateRunning && !e.Status().LastReload.IsZero()
	}, 30*time.Second, 200*time.Millisecond)
	e, n := c.in.last()
	require.Equal(t, before+1, n, "one reload")
	return e
}

// TestCollectorSIGHUPKeepsRules runs weft_rules in a real collector
// (otelcol.Collector, file config), breaks the rule file and sends the
// process SIGHUP: the collector rebuilds every extension, and the new
// weft_rules instance runs the previous rules and reports the error in its
// status and in the collector's own metrics endpoint.
func TestCollectorSIGHUPKeepsRules(t *testing.T) {
	dir := t.TempDir()
	ruleFile := writeFile(t, dir, "r.yaml", twoRules)
	c := startCollector(t, dir, ruleFile)
	first, _ := c.in.last()
	require.True(t, first.Status().LastReloadSuccess, first.Status().LastError)
	require.Equal(t, 2, first.Status().Rules)

	// Break the rule file and reload the collector by signal.
	writeFile(t, dir, "r.yaml", twoRules+"  - alert: B\n    expr: sum(\n")
	second := c.sighup(t)
	assert.NotSame(t, first, second, "the reload built a new instance")
	s := second.Status()
	assert.False(t, s.LastReloadSuccess)
	assert.True(t, s.Inherited)
	assert.Contains(t, s.LastError, ruleFile+": 10:11:")
	assert.Equal(t, 2, s.Rules, "the previous rules run on")
	evalStart := time.Now()
	require.Eventually(t, func() bool {
		g := second.Groups()
		return len(g) == 1 && g[0].GetLastEvaluation().After(evalStart)
	}, 10*time.Second, 10*time.Millisecond, "the inherited group is evaluated")

	// The collector's own metrics carry the failure.
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		body := scrape(t, "http://"+c.metricsAddr+"/metrics")
		assert.Regexp(ct, `(?m)^weft_rules_last_reload_successful(\{[^}]*\})? 0$`, body)
		assert.Regexp(ct, `(?m)^weft_rules_reloads(_total)?\{[^}]*result="failure"[^}]*\} 1$`, body)
		assert.Regexp(ct, `(?m)^weft_rules_rules(\{[^}]*\})? 2$`, body)
	}, 10*time.Second, 100*time.Millisecond)
}

// TestCollectorSIGHUPKeepsAlertState: a firing alert stays firing across
// a SIGHUP, with its activeAt, as across a Prometheus config reload. (A
// restart instead restores it from ALERTS_FOR_STATE and holds it pending
// for for_grace_period, 10m by default; here the store is in memory, so
// a restore would not even find it.)
func TestCollectorSIGHUPKeepsAlertState(t *testing.T) {
	dir := t.TempDir()
	ruleFile := writeFile(t, dir, "r.yaml", `groups:
- name: a
  labels: {weft.io/scope: node}
  rules:
  - alert: Always
    expr: vector(1)
    for: 300ms
`)
	c := startCollector(t, dir, ruleFile)
	first, _ := c.in.last()
	var activeAt time.Time
	require.Eventually(t, func() bool {
		as := activeAlerts(first)
		if len(as) == 1 && as[0].State == promrules.StateFiring {
			activeAt = as[0].ActiveAt
			return true
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "the alert fires")

	second := c.sighup(t)
	require.True(t, second.Status().LastReloadSuccess, second.Status().LastError)
	// Right from the new instance's first evaluation: firing, same activeAt.
	require.Eventually(t, func() bool {
		g := second.Groups()
		return len(g) == 1 && !g[0].GetLastEvaluation().IsZero()
	}, 10*time.Second, 5*time.Millisecond)
	as := activeAlerts(second)
	require.Len(t, as, 1)
	assert.Equal(t, promrules.StateFiring, as[0].State)
	assert.True(t, activeAt.Equal(as[0].ActiveAt), "activeAt %s, was %s", as[0].ActiveAt, activeAt)
}

// activeAlerts are the active alerts of e's alerting rules.
func activeAlerts(e *Extension) []*promrules.Alert {
	var out []*promrules.Alert
	for _, g := range e.Groups() {
		for _, r := range g.AlertingRules() {
			out = append(out, r.ActiveAlerts()...)
		}
	}
	return out
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // test helper on loopback
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
