package weftremotewriteextension

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// point returns the value of metric name at the data point whose
// attributes include every pair of attrs; false when there is none.
func point(t *testing.T, tel *componenttest.Telemetry, name string, attrs ...string) (float64, bool) {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0, false
	}
	var dps []metricdata.DataPoint[float64]
	switch d := m.Data.(type) {
	case metricdata.Sum[float64]:
		dps = d.DataPoints
	case metricdata.Gauge[float64]:
		dps = d.DataPoints
	default:
		t.Fatalf("%s: unexpected data %T", name, m.Data)
	}
next:
	for _, dp := range dps {
		for i := 0; i+1 < len(attrs); i += 2 {
			if v, ok := dp.Attributes.Value(attribute.Key(attrs[i])); !ok || v.AsString() != attrs[i+1] {
				continue next
			}
		}
		return dp.Value, true
	}
	return 0, false
}

func TestTelemetry(t *testing.T) {
	sk, url := newSink(t)
	cfg := testConfig(t.TempDir(), url)
	cfg.Endpoints[0].WriteRelabelConfigs = []RelabelConfig{{SourceLabels: []string{"__name__"}, Regex: ptr("gone"), Action: "drop"}}
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	rw, err := newRemoteWrite(tel.NewTelemetrySettings(), cfg)
	require.NoError(t, err)
	rw.grace = 0
	require.NoError(t, rw.Start(context.Background(), nil))
	t.Cleanup(func() { require.NoError(t, rw.Shutdown(context.Background())) })
	waitLive(t, rw)

	b := batch{metric: "m", series: 6, samples: 3, base: futureBase(), step: 10}
	b.appendTo(t, rw.Appendable())
	gone := batch{metric: "gone", series: 2, samples: 2, base: b.base, step: 10}
	gone.appendTo(t, rw.Appendable())
	require.Eventually(t, func() bool { return received(sk, b, labels.EmptyLabels()) }, 30*time.Second, 10*time.Millisecond)

	ep := []string{"endpoint", "ep"}
	require.Eventually(t, func() bool {
		v, _ := point(t, tel, "weft_remote_write.sent", "endpoint", "ep", "kind", "samples")
		return v == float64(b.series*b.samples)
	}, 10*time.Second, 10*time.Millisecond)
	v, _ := point(t, tel, "weft_remote_write.sent", append(ep, "kind", "exemplars")...)
	assert.Equal(t, float64(2*b.samples), v, "exemplars of series 0 and 3")
	v, _ = point(t, tel, "weft_remote_write.appended", "kind", "samples")
	assert.Equal(t, float64(b.series*b.samples+gone.series*gone.samples), v)
	v, _ = point(t, tel, "weft_remote_write.dropped", append(ep, "kind", "samples", "reason", "dropped_series")...)
	assert.Equal(t, float64(gone.series*gone.samples), v, "relabelled away, counted with a reason")
	v, _ = point(t, tel, "weft_remote_write.active_series")
	assert.Equal(t, float64(b.series+gone.series), v)
	v, ok := point(t, tel, "weft_remote_write.shards", ep...)
	assert.True(t, ok)
	assert.GreaterOrEqual(t, v, 1.0)
	v, _ = point(t, tel, "weft_remote_write.wal_segments")
	assert.GreaterOrEqual(t, v, 1.0)
	v, _ = point(t, tel, "weft_remote_write.wal_size")
	assert.Positive(t, v)

	// An outage: what is appended waits in the queue and is retried.
	sk.setDown(true)
	more := batch{metric: "m", series: 6, samples: 2, base: b.lastTS() + 100, step: 10}
	more.appendTo(t, rw.Appendable())
	require.Eventually(t, func() bool {
		p, _ := point(t, tel, "weft_remote_write.pending", append(ep, "kind", "samples")...)
		r, _ := point(t, tel, "weft_remote_write.retried", append(ep, "kind", "samples")...)
		return p == float64(more.series*more.samples) && r > 0
	}, 10*time.Second, 10*time.Millisecond)
	sk.setDown(false)
	require.Eventually(t, func() bool {
		p, _ := point(t, tel, "weft_remote_write.pending", append(ep, "kind", "samples")...)
		return p == 0
	}, 10*time.Second, 10*time.Millisecond)
}
