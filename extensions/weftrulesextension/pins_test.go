package weftrulesextension

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extensions/weftpinsextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
	"github.com/weftobs/weft/internal/weftest"
)

// newPins creates a weft_pins extension without gossip (not started: its
// API works before Start).
func newPins(t *testing.T, id component.ID) *weftpinsextension.Pins {
	t.Helper()
	f := weftpinsextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*weftpinsextension.Config)
	cfg.Gossip.Enabled = false
	set := extensiontest.NewNopSettings(f.Type())
	set.ID = id
	ext, err := f.Create(context.Background(), set, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	p, err := weftpinsextension.FromHost(weftest.Host{id: ext}, id)
	require.NoError(t, err)
	return p
}

// TestPinsKey: "" takes the first weft_pins extension by ID (none: no
// pinning), "none" none, an ID that one, and Start fails when it is not
// configured; a named one is a dependency.
func TestPinsKey(t *testing.T) {
	idA, idB := component.MustNewIDWithName("weft_pins", "a"), component.MustNewIDWithName("weft_pins", "b")
	pa, pb := newPins(t, idA), newPins(t, idB)
	host := weftest.Host{idB: pb, idA: pa}

	got, err := weftpinsextension.Find(host, "")
	require.NoError(t, err)
	assert.Same(t, pa, got)
	got, err = weftpinsextension.Find(host, "weft_pins/b")
	require.NoError(t, err)
	assert.Same(t, pb, got)
	got, err = weftpinsextension.Find(host, PinsNone)
	require.NoError(t, err)
	assert.Nil(t, got)
	got, err = weftpinsextension.Find(weftest.Host{}, "")
	require.NoError(t, err)
	assert.Nil(t, got)

	st := weftstoretest.Start(t, nil)
	e := createFromFactory(t, component.NewIDWithName(componentType, "pins"), componenttest.NewNopTelemetrySettings(), func(c *Config) {
		c.Pins = "weft_pins/missing"
	})
	assert.Contains(t, e.Dependencies(), component.MustNewIDWithName("weft_pins", "missing"))
	err = e.Start(t.Context(), weftstoretest.Host(st))
	require.ErrorContains(t, err, "weft_pins/missing")
	require.NoError(t, e.Shutdown(t.Context()))
}

// podDown fires at once with the labels of pod bookinfo/reviews-v2, whose
// failing traces are its evidence (absent() is a cluster rule; the
// group's weft.io/scope keeps it on the node).
const podDown = `groups:
- name: pods
  labels: {weft.io/scope: node}
  rules:
  - alert: PodDown
    expr: absent(pod_up{k8s_namespace_name="bookinfo", k8s_pod_name="reviews-v2"})
`

// TestAlertPinsEvidence: with a weft_pins extension on the host (pins
// left empty), the traces a firing alert cites are pinned there with
// reason alert, until about now + 30m + evaluation_interval.
func TestAlertPinsEvidence(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pods.yaml", podDown)
	st := weftstoretest.Start(t, nil)
	failing := pcommon.TraceID{0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "reviews")
	rs.Resource().Attributes().PutStr("k8s.namespace.name", "bookinfo")
	rs.Resource().Attributes().PutStr("k8s.pod.name", "reviews-v2")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(failing)
	sp.SetSpanID(pcommon.SpanID{1})
	sp.SetName("GET /reviews")
	end := time.Now().Add(-30 * time.Second)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-50 * time.Millisecond)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	sp.Status().SetCode(ptrace.StatusCodeError)
	require.NoError(t, st.AppendTraces(t.Context(), td))

	pinsID := component.MustNewID("weft_pins")
	pins := newPins(t, pinsID)
	host := weftstoretest.Host(st)
	host[pinsID] = pins
	e := createFromFactory(t, component.NewIDWithName(componentType, "alerts"), componenttest.NewNopTelemetrySettings(), func(c *Config) {
		c.RuleFiles = []string{dir}
		c.EvaluationInterval = 100 * time.Millisecond
		c.Evidence.Timeout = 5 * time.Second
	})
	require.NoError(t, e.Start(t.Context(), host))
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })

	require.Eventually(t, func() bool { return pins.Pinned(failing) }, 20*time.Second, 20*time.Millisecond)
	until, ok := pins.PinnedUntil(failing)
	require.True(t, ok)
	assert.WithinDuration(t, time.Now().Add(30*time.Minute), until, 10*time.Second)
	assert.Positive(t, pins.Stats().Local["alert"])
}
