package clockguardprocessor

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftobs/weft/internal/refusal"
)

// node is the node's clock in these tests.
var node = time.Date(2026, 11, 30, 8, 15, 0, 0, time.UTC)

func ts(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

// batchBuilder builds one resource's metrics, one data point per call.
type batchBuilder struct {
	sm pmetric.ScopeMetrics
}

func addResource(md pmetric.Metrics, attrs map[string]string) batchBuilder {
	rm := md.ResourceMetrics().AppendEmpty()
	for k, v := range attrs {
		rm.Resource().Attributes().PutStr(k, v)
	}
	return batchBuilder{sm: rm.ScopeMetrics().AppendEmpty()}
}

func (b batchBuilder) gauge(name string, at time.Time, exemplarsAt ...time.Time) {
	m := b.sm.Metrics().AppendEmpty()
	m.SetName(name)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(ts(at))
	dp.SetDoubleValue(1)
	for _, e := range exemplarsAt {
		ex := dp.Exemplars().AppendEmpty()
		ex.SetTimestamp(ts(e))
		ex.SetDoubleValue(0.5)
	}
}

func (b batchBuilder) sum(name string, at ...time.Time) {
	m := b.sm.Metrics().AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, t := range at {
		dp := s.DataPoints().AppendEmpty()
		dp.SetTimestamp(ts(t))
		dp.SetIntValue(int64(i))
		dp.Attributes().PutInt("i", int64(i))
	}
}

func (b batchBuilder) histogram(name string, at time.Time) {
	m := b.sm.Metrics().AppendEmpty()
	m.SetName(name)
	dp := m.SetEmptyHistogram().DataPoints().AppendEmpty()
	dp.SetTimestamp(ts(at))
	dp.ExplicitBounds().FromRaw([]float64{0.1, 1})
	dp.BucketCounts().FromRaw([]uint64{1, 2, 3})
	dp.SetCount(6)
}

func (b batchBuilder) expHistogram(name string, at time.Time) {
	m := b.sm.Metrics().AppendEmpty()
	m.SetName(name)
	dp := m.SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
	dp.SetTimestamp(ts(at))
	dp.SetCount(1)
}

func (b batchBuilder) summary(name string, at time.Time) {
	m := b.sm.Metrics().AppendEmpty()
	m.SetName(name)
	dp := m.SetEmptySummary().DataPoints().AppendEmpty()
	dp.SetTimestamp(ts(at))
	dp.SetCount(3)
}

// names lists "resource source: metric names" of md, with its data points.
func contents(md pmetric.Metrics) map[string][]string {
	out := map[string][]string{}
	for _, rm := range md.ResourceMetrics().All() {
		src := refusal.SourceOf(rm.Resource().Attributes()).ID
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				out[src] = append(out[src], m.Name())
			}
		}
	}
	return out
}

type fixture struct {
	proc interface {
		ConsumeMetrics(context.Context, pmetric.Metrics) error
		Shutdown(context.Context) error
	}
	g    *guard
	sink *consumertest.MetricsSink
	logs *observer.ObservedLogs
	tel  *componenttest.Telemetry
	now  *time.Time
}

func newFixture(t *testing.T, skew time.Duration) *fixture {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := processortest.NewNopSettings(component.MustNewType(typeStr))
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	now := node
	f := &fixture{sink: new(consumertest.MetricsSink), logs: logs, tel: tel, now: &now}
	g, err := newGuard(set.TelemetrySettings, &Config{MaxFutureSkew: skew}, func() time.Time { return *f.now })
	require.NoError(t, err)
	f.g = g
	p, err := newProcessor(t.Context(), set, &Config{MaxFutureSkew: skew}, f.sink, g)
	require.NoError(t, err)
	require.NoError(t, p.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	f.proc = p
	return f
}

// TestMixedBatch: in one request, the data points of a source stamped
// past the bound are dropped, of every metric type, and nothing else: the
// other source's points, the noisy source's in-bound points and metrics,
// and in-bound points' late exemplars go (only the exemplars).
func TestMixedBatch(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	md := pmetric.NewMetrics()
	normal := addResource(md, map[string]string{"job": "reviews", "instance": "10.1.0.7:15090"})
	normal.gauge("envoy_server_live", node)
	normal.sum("envoy_cluster_upstream_rq", node.Add(-time.Second), node.Add(9*time.Minute))
	normal.histogram("istio_request_duration_milliseconds", node.Add(-30*time.Second))
	noisy := addResource(md, map[string]string{"service.name": "ratings", "service.namespace": "shop", "service.instance.id": "ratings-7d9f-x2"})
	noisy.gauge("cpu_temp", node.Add(2*time.Hour))
	noisy.sum("orders", node.Add(-time.Minute), node.Add(11*time.Minute), node.Add(time.Minute))
	noisy.histogram("latency", node.Add(24*time.Hour))
	noisy.expHistogram("latency_exp", node.Add(time.Hour))
	noisy.summary("gc_pause", node.Add(30*time.Minute))
	noisy.gauge("queue_depth", node, node.Add(-time.Second), node.Add(15*time.Minute))

	require.NoError(t, f.proc.ConsumeMetrics(t.Context(), md))
	require.Len(t, f.sink.AllMetrics(), 1)
	got := f.sink.AllMetrics()[0]
	assert.Equal(t, map[string][]string{
		"reviews@10.1.0.7:15090":       {"envoy_server_live", "envoy_cluster_upstream_rq", "istio_request_duration_milliseconds"},
		"shop/ratings@ratings-7d9f-x2": {"orders", "queue_depth"},
	}, contents(got))
	assert.Equal(t, 7, got.DataPointCount(), "4 normal points (one at +9m, within the skew), orders' 2 in-bound points and queue_depth")
	rm := got.ResourceMetrics().At(1).ScopeMetrics().At(0).Metrics()
	orders := rm.At(0).Sum().DataPoints()
	require.Equal(t, 2, orders.Len())
	assert.Equal(t, int64(0), orders.At(0).IntValue())
	assert.Equal(t, int64(2), orders.At(1).IntValue(), "the point at +11m went, the one after it stays")
	ex := rm.At(1).Gauge().DataPoints().At(0).Exemplars()
	require.Equal(t, 1, ex.Len(), "the exemplar 15m ahead went, the one in the past stayed")
	assert.Equal(t, ts(node.Add(-time.Second)), ex.At(0).Timestamp())

	assert.Equal(t, map[string]map[string]int64{reasonTooFarInFuture: {"shop/ratings@ratings-7d9f-x2": 5}}, f.g.points.Snapshot())
	assert.Equal(t, map[string]map[string]int64{reasonTooFarInFuture: {"shop/ratings@ratings-7d9f-x2": 1}}, f.g.exemplr.Snapshot())
	lines := f.logs.FilterMessage("Metric data stamped too far ahead of the node's clock dropped").All()
	require.Len(t, lines, 1, "one line for the one noisy source")
	fields := lines[0].ContextMap()
	assert.Equal(t, "shop/ratings@ratings-7d9f-x2", fields["source"])
	assert.Equal(t, "cpu_temp", fields["metric"], "the first refused point's metric")
	assert.Equal(t, int64(5), fields["refused_data_points"])
	assert.Equal(t, 2*time.Hour, fields["skew"])

	published := publishedBySource(t, f.tel, "clock_guard.refused_data_points")
	assert.Equal(t, map[string]int64{"shop/ratings@ratings-7d9f-x2": 5}, published)
	assert.Equal(t, map[string]int64{"shop/ratings@ratings-7d9f-x2": 1}, publishedBySource(t, f.tel, "clock_guard.refused_exemplars"))
}

func publishedBySource(t *testing.T, tel *componenttest.Telemetry, name string) map[string]int64 {
	t.Helper()
	m, err := tel.GetMetric(name)
	require.NoError(t, err)
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%T", m.Data)
	out := map[string]int64{}
	for _, dp := range sum.DataPoints {
		r, _ := dp.Attributes.Value("reason")
		assert.Equal(t, reasonTooFarInFuture, r.AsString())
		s, _ := dp.Attributes.Value("source")
		out[s.AsString()] = dp.Value
	}
	return out
}

// TestBound: a point exactly max_future_skew ahead stays, one nanosecond
// later goes; the bound follows the node's clock from call to call.
func TestBound(t *testing.T) {
	f := newFixture(t, 30*time.Second)
	send := func(at time.Time) error {
		md := pmetric.NewMetrics()
		addResource(md, map[string]string{"job": "edge"}).sum("c", node.Add(-time.Minute), at)
		return f.proc.ConsumeMetrics(t.Context(), md)
	}
	require.NoError(t, send(node.Add(30*time.Second)))
	require.NoError(t, send(node.Add(30*time.Second+time.Nanosecond)))
	*f.now = node.Add(time.Minute)
	require.NoError(t, send(node.Add(90*time.Second)))
	counts := []int{}
	for _, md := range f.sink.AllMetrics() {
		counts = append(counts, md.DataPointCount())
	}
	assert.Equal(t, []int{2, 1, 2}, counts)
	assert.Equal(t, int64(1), f.g.points.Total(reasonTooFarInFuture))
}

// TestAllRefused: a request whose every data point is too far ahead is
// refused as a whole with a permanent error (an OTLP client gets 400 and
// the reason), and nothing goes on.
func TestAllRefused(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	md := pmetric.NewMetrics()
	b := addResource(md, map[string]string{"job": "skewed", "instance": "a"})
	b.gauge("g", node.Add(time.Hour))
	b.summary("s", node.Add(time.Hour))
	addResource(md, map[string]string{"job": "skewed", "instance": "b"}).sum("c", node.Add(48*time.Hour), node.Add(11*time.Minute))
	err := f.proc.ConsumeMetrics(t.Context(), md)
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), "%v", err)
	st, ok := status.FromError(err)
	require.True(t, ok, "a gRPC status the OTLP receiver passes on")
	assert.Equal(t, codes.InvalidArgument, st.Code())
	assert.Contains(t, err.Error(), "all 4 data points are stamped more than max_future_skew (10m0s) ahead")
	assert.Empty(t, f.sink.AllMetrics())
	assert.Equal(t, map[string]map[string]int64{reasonTooFarInFuture: {"skewed@a": 2, "skewed@b": 2}}, f.g.points.Snapshot())

	// A request without data points (metadata only) is not an error.
	empty := pmetric.NewMetrics()
	addResource(empty, map[string]string{"job": "x"}).sm.Metrics().AppendEmpty().SetName("nothing")
	require.NoError(t, f.proc.ConsumeMetrics(t.Context(), empty))
	require.Len(t, f.sink.AllMetrics(), 1)
	assert.Equal(t, map[string][]string{"x": {"nothing"}}, contents(f.sink.AllMetrics()[0]))
}

// TestLogRateLimit: one line per source at first, then at most one per
// refusal.LogInterval carrying the count since the previous line.
func TestLogRateLimit(t *testing.T) {
	f := newFixture(t, time.Minute)
	send := func(job string, n int) {
		md := pmetric.NewMetrics()
		b := addResource(md, map[string]string{"job": job})
		for range n {
			b.gauge("g", f.now.Add(time.Hour))
		}
		b.gauge("ok", *f.now)
		require.NoError(t, f.proc.ConsumeMetrics(t.Context(), md))
	}
	send("a", 3)
	send("a", 4)
	send("b", 1)
	*f.now = f.now.Add(refusal.LogInterval)
	send("a", 2)
	lines := f.logs.FilterMessage("Metric data stamped too far ahead of the node's clock dropped").All()
	var got []string
	var refused []int64
	for _, l := range lines {
		got = append(got, l.ContextMap()["source"].(string))
		refused = append(refused, l.ContextMap()["refused_data_points"].(int64))
	}
	assert.Equal(t, []string{"a", "b", "a"}, got)
	assert.Equal(t, []int64{3, 1, 6}, refused, "the third line counts the 4 unlogged and 2 new")
	assert.Equal(t, int64(10), f.g.points.Total(reasonTooFarInFuture))
}

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	for id, want := range map[component.ID]*Config{
		component.NewID(component.MustNewType(typeStr)):                  {MaxFutureSkew: 10 * time.Minute},
		component.NewIDWithName(component.MustNewType(typeStr), "tight"): {MaxFutureSkew: 30 * time.Second},
	} {
		t.Run(id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, want, cfg)
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		skew    time.Duration
		wantErr bool
	}{{time.Second, false}, {24 * time.Hour, false}, {0, true}, {999 * time.Millisecond, true}, {25 * time.Hour, true}, {-time.Minute, true}} {
		err := (&Config{MaxFutureSkew: tt.skew}).Validate()
		if !tt.wantErr {
			assert.NoError(t, err, tt.skew)
			continue
		}
		require.Error(t, err, tt.skew)
		assert.Contains(t, err.Error(), "max_future_skew: must be between 1s and 24h0m0s, got "+tt.skew.String())
	}
	err := confmap.NewFromStringMap(map[string]any{"max_futur_skew": "1m"}).Unmarshal(NewFactory().CreateDefaultConfig())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "max_futur_skew")
}

// TestFactory: the factory's processor drops with the real clock.
func TestFactory(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	p, err := NewFactory().CreateMetrics(t.Context(), processortest.NewNopSettings(component.MustNewType(typeStr)), createDefaultConfig(), sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(t.Context(), componenttest.NewNopHost()))
	md := pmetric.NewMetrics()
	b := addResource(md, map[string]string{"job": "j"})
	b.gauge("now", time.Now())
	b.gauge("later", time.Now().Add(time.Hour))
	require.NoError(t, p.ConsumeMetrics(t.Context(), md))
	require.NoError(t, p.Shutdown(t.Context()))
	require.Len(t, sink.AllMetrics(), 1)
	assert.Equal(t, map[string][]string{"j": {"now"}}, contents(sink.AllMetrics()[0]))
}
