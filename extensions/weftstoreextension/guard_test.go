package weftstoreextension

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/translate"
)

// Two senders: a scrape target (pod_scrape sets job and instance) and an
// OTLP sender (service attributes).
var (
	scrapeSource = map[string]string{"job": "envoy-stats", "instance": "10.0.0.7:15090", "service.name": "reviews"}
	otlpSource   = map[string]string{"service.name": "ratings", "service.namespace": "bookinfo", "service.instance.id": "ratings-v1-0"}
)

const (
	scrapeSourceID = "envoy-stats@10.0.0.7:15090"
	otlpSourceID   = "bookinfo/ratings@ratings-v1-0"
)

// gaugeAt builds one gauge called name from the resource res with one
// point at `at` per series name (attribute "series").
func gaugeAt(res map[string]string, name string, at time.Time, v float64, series ...string) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	for k, val := range res {
		rm.Resource().Attributes().PutStr(k, val)
	}
	g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName(name)
	pts := g.SetEmptyGauge().DataPoints()
	for _, s := range series {
		p := pts.AppendEmpty()
		p.SetTimestamp(pcommon.NewTimestampFromTime(at))
		p.SetDoubleValue(v)
		p.Attributes().PutStr("series", s)
	}
	return md
}

// valueAt returns the value of the one series called name at ts.
func valueAt(t *testing.T, st *Store, name string, ts time.Time) float64 {
	t.Helper()
	v := instant(t, st.Queryable(), name, ts)
	require.Len(t, v, 1, "%s at %s", name, ts)
	return v[0].F
}

// TestFutureSampleRefused: a sample stamped an hour ahead from source A is
// refused and counted with A's identity; B's samples keep being accepted;
// a sample within the skew is accepted and does not move the appendable
// window: B's samples 58 minutes behind the clock are still accepted.
func TestFutureSampleRefused(t *testing.T) {
	st := newTestStore(t, func(c *Config) { c.MetricsRetention = 3 * time.Hour })
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)

	require.NoError(t, st.AppendMetrics(ctx, gaugeAt(scrapeSource, "skewed", now.Add(time.Hour), 1, "a")))
	s := st.Stats()
	assert.Equal(t, int64(1), s.RejectedSamples[translate.ReasonTooFarInFuture])
	assert.Equal(t, map[string]int64{scrapeSourceID: 1}, s.RejectedSamplesBySource[translate.ReasonTooFarInFuture])
	assert.Empty(t, instant(t, st.Queryable(), "skewed", now.Add(time.Hour)))

	require.NoError(t, st.AppendMetrics(ctx, gaugeAt(otlpSource, "on_time", now.Add(-time.Second), 2, "b")))
	assert.Equal(t, 2.0, valueAt(t, st, "on_time", now))

	// Within the skew: accepted.
	require.NoError(t, st.AppendMetrics(ctx, gaugeAt(scrapeSource, "ahead", now.Add(5*time.Minute), 3, "a")))
	assert.Equal(t, 3.0, valueAt(t, st, "ahead", now.Add(5*time.Minute)))

	// B's later samples: a batch delayed by 58 minutes (the TSDB alone
	// would refuse it: newest sample now+5m minus the 1h window) and an
	// on-time one.
	require.NoError(t, st.AppendMetrics(ctx, gaugeAt(otlpSource, "delayed", now.Add(-58*time.Minute), 4, "b")))
	require.NoError(t, st.AppendMetrics(ctx, gaugeAt(otlpSource, "on_time", now.Add(time.Second), 5, "b")))
	assert.Equal(t, 4.0, valueAt(t, st, "delayed", now.Add(-58*time.Minute)))
	assert.Equal(t, 5.0, valueAt(t, st, "on_time", now.Add(time.Second)))
	s = st.Stats()
	assert.Zero(t, s.RejectedSamples[translate.ReasonOutOfBounds])
	assert.Equal(t, int64(1), s.RejectedSamples[translate.ReasonTooFarInFuture])

	// The window is anchored on the clock: 61 minutes behind is out.
	require.NoError(t, st.AppendMetrics(ctx, gaugeAt(otlpSource, "too_late", now.Add(-61*time.Minute), 6, "b")))
	assert.Equal(t, int64(1), st.Stats().RejectedSamples[translate.ReasonOutOfBounds])
	assert.Empty(t, instant(t, st.Queryable(), "too_late", now.Add(-61*time.Minute)))
}

// TestFutureExemplarRefused: an exemplar stamped an hour ahead is refused
// (it would hide every later exemplar of its series); its sample, on time,
// is stored.
func TestFutureExemplarRefused(t *testing.T) {
	st := newTestStore(t, nil)
	now := time.Now().Truncate(time.Millisecond)
	md := counter("exemplar.ahead", now.Add(-time.Second), time.Second, 7)
	ex := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Exemplars().AppendEmpty()
	ex.SetTraceID(pcommon.TraceID{4, 2})
	ex.SetDoubleValue(1)
	ex.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Hour)))
	require.NoError(t, st.AppendMetrics(context.Background(), md))
	s := st.Stats()
	assert.Equal(t, int64(1), s.RejectedExemplars[translate.ReasonTooFarInFuture])
	assert.Zero(t, s.ExemplarsAppended)
	assert.Equal(t, 7.0, valueAt(t, st, "exemplar_ahead_total", now))
}

// TestFutureSampleRefusedAppendable: the same bounds hold for writers of
// Appendable and AppendableV2 (the rules manager), counted under the
// source "appendable".
func TestFutureSampleRefusedAppendable(t *testing.T) {
	st := newTestStore(t, func(c *Config) { c.MetricsRetention = 3 * time.Hour })
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)

	app := st.Appendable().Appender(ctx)
	_, err := app.Append(0, labels.FromStrings("__name__", "rule:skewed"), now.Add(time.Hour).UnixMilli(), 1)
	require.ErrorIs(t, err, ErrTooFarInFuture)
	_, err = app.Append(0, labels.FromStrings("__name__", "rule:ahead"), now.Add(5*time.Minute).UnixMilli(), 2)
	require.NoError(t, err)
	require.NoError(t, app.Commit())

	appV2 := st.AppendableV2().AppenderV2(ctx)
	_, err = appV2.Append(0, labels.FromStrings("__name__", "rule:skewed"), 0, now.Add(time.Hour).UnixMilli(), 1, nil, nil, storage.AOptions{})
	require.ErrorIs(t, err, ErrTooFarInFuture)
	_, err = appV2.Append(0, labels.FromStrings("__name__", "rule:delayed"), 0, now.Add(-58*time.Minute).UnixMilli(), 3, nil, nil, storage.AOptions{})
	require.NoError(t, err)
	require.NoError(t, appV2.Commit())

	assert.Equal(t, map[string]int64{appendableSource: 2}, st.Stats().RejectedSamplesBySource[translate.ReasonTooFarInFuture])
	assert.Equal(t, 2.0, valueAt(t, st, "rule:ahead", now.Add(5*time.Minute)))
	assert.Equal(t, 3.0, valueAt(t, st, "rule:delayed", now.Add(-58*time.Minute)))
	assert.Empty(t, instant(t, st.Queryable(), "rule:skewed", now.Add(time.Hour)))
}

// TestFutureSampleInWAL: a WAL written before this check (or by a clock
// that has since stepped back) holds a sample two hours ahead; replayed,
// it does not shift the window: on-time and 58-minute-old samples are
// accepted.
func TestFutureSampleInWAL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	now := time.Now().Truncate(time.Millisecond)
	db, err := tsdb.Open(dir, nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	app := db.Appender(context.Background())
	_, err = app.Append(0, labels.FromStrings("__name__", "from_the_future"), now.Add(2*time.Hour).UnixMilli(), 1)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	require.NoError(t, db.Close())

	st := newTestStore(t, func(c *Config) { c.Directory, c.MetricsRetention = dir, 3*time.Hour })
	ctx := context.Background()
	require.NoError(t, st.AppendMetrics(ctx, gaugeAt(otlpSource, "on_time", now, 1, "b")))
	require.NoError(t, st.AppendMetrics(ctx, gaugeAt(otlpSource, "delayed", now.Add(-58*time.Minute), 2, "b")))
	assert.Equal(t, 1.0, valueAt(t, st, "on_time", now))
	assert.Equal(t, 2.0, valueAt(t, st, "delayed", now.Add(-58*time.Minute)))
	assert.Zero(t, st.Stats().RejectedSamples[translate.ReasonOutOfBounds])
}

// TestFutureRefusalLog: refusals are logged at most once per source per
// interval, naming the source, the sample time and the skew, and show in
// the self-metric by source.
func TestFutureRefusalLog(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	st, err := newStore(set, createDefaultConfig().(*Config))
	require.NoError(t, err)
	base := time.Now().Truncate(time.Millisecond)
	var offset time.Duration
	st.now = func() time.Time { return base.Add(offset) }
	require.NoError(t, st.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, st.Shutdown(context.Background())) })
	ctx := context.Background()
	future := func(src map[string]string) {
		t.Helper()
		require.NoError(t, st.AppendMetrics(ctx, gaugeAt(src, "skewed", base.Add(offset+time.Hour), 1, "a", "b")))
	}
	lines := func() []observer.LoggedEntry {
		return logs.FilterMessage("Samples too far ahead of the node's clock refused").All()
	}

	future(scrapeSource)
	future(scrapeSource)
	future(otlpSource)
	require.Len(t, lines(), 2, "one line per source")
	first := lines()[0].ContextMap()
	assert.Equal(t, scrapeSourceID, first["source"])
	assert.Equal(t, "envoy-stats", first["job"])
	assert.Equal(t, "10.0.0.7:15090", first["instance"])
	assert.Equal(t, base.Add(time.Hour), first["sample_time"])
	assert.Equal(t, time.Hour, first["skew"])
	assert.Equal(t, int64(1), first["refused"], "the first refusal is logged at once")
	assert.Equal(t, otlpSourceID, lines()[1].ContextMap()["source"])

	offset = refusalLogInterval
	future(scrapeSource)
	require.Len(t, lines(), 3, "a new line after the interval")
	assert.Equal(t, int64(4), lines()[2].ContextMap()["refused"], "refused since the previous line")

	m, err := tel.GetMetric("weft_store.rejected_samples")
	require.NoError(t, err)
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "rejected_samples is an int64 sum, got %T", m.Data)
	bySource := make(map[string]int64)
	for _, dp := range sum.DataPoints {
		if r, _ := dp.Attributes.Value("reason"); r.AsString() == translate.ReasonTooFarInFuture {
			src, _ := dp.Attributes.Value("source")
			bySource[src.AsString()] = dp.Value
		}
	}
	assert.Equal(t, map[string]int64{scrapeSourceID: 6, otlpSourceID: 2}, bySource)
}

// TestMaxSeries: new series beyond max_series are refused and counted by
// source; samples of existing series are still accepted, also once the
// series-ref cache has forgotten them, and through Appendable.
func TestMaxSeries(t *testing.T) {
	st := newTestStore(t, func(c *Config) { c.MaxSeries = 3 })
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	at := func(i int) time.Time { return now.Add(time.Duration(i-10) * time.Second) }

	require.NoError(t, st.AppendMetrics(ctx, gaugeAt(otlpSource, "limited", at(0), 1, "s1", "s2", "s3")))
	require.NoError(t, st.AppendMetrics(ctx, gaugeAt(otlpSource, "limited", at(1), 2, "s1", "s2", "s3", "s4", "s5")))
	s := st.Stats()
	assert.Equal(t, int64(6), s.SamplesAppended)
	assert.Equal(t, map[string]int64{otlpSourceID: 2}, s.RejectedSamplesBySource[translate.ReasonSeriesLimit])
	assert.Equal(t, int64(2), s.RejectedSamples[translate.ReasonSeriesLimit])
	assert.Equal(t, 3, s.CachedSeries, "refused series are not cached")
	v := instant(t, st.Queryable(), "limited", at(1))
	require.Len(t, v, 3)
	for _, smp := range v {
		assert.Equal(t, 2.0, smp.F, smp.Metric.String())
	}

	// The cache forgets the series; the head still has them.
	for range 3 {
		require.NoError(t, st.retain(now))
	}
	require.Zero(t, st.Stats().CachedSeries)
	require.NoError(t, st.AppendMetrics(ctx, gaugeAt(otlpSource, "limited", at(2), 3, "s1", "s2", "s3", "s6")))
	s = st.Stats()
	assert.Equal(t, int64(9), s.SamplesAppended)
	assert.Equal(t, int64(3), s.RejectedSamples[translate.ReasonSeriesLimit])
	assert.Len(t, instant(t, st.Queryable(), "limited", at(2)), 3)

	// Appendable: an existing series by labels, a new one refused.
	existing := v[0].Metric
	app := st.Appendable().Appender(ctx)
	_, err := app.Append(0, existing, at(3).UnixMilli(), 4)
	require.NoError(t, err)
	_, err = app.Append(0, labels.FromStrings("__name__", "rule:new"), at(3).UnixMilli(), 1)
	require.ErrorIs(t, err, ErrSeriesLimit)
	require.NoError(t, app.Commit())
	assert.Equal(t, map[string]int64{otlpSourceID: 3, appendableSource: 1}, st.Stats().RejectedSamplesBySource[translate.ReasonSeriesLimit])
	assert.Empty(t, instant(t, st.Queryable(), "rule:new", at(3)))
}

// TestMaxSeriesUnlimited: max_series 0 sets no cap.
func TestMaxSeriesUnlimited(t *testing.T) {
	st := newTestStore(t, func(c *Config) { c.MaxSeries = 0 })
	now := time.Now().Truncate(time.Millisecond)
	require.NoError(t, st.AppendMetrics(context.Background(), gaugeAt(otlpSource, "unlimited", now, 1, "s1", "s2", "s3", "s4", "s5")))
	assert.Len(t, instant(t, st.Queryable(), "unlimited", now), 5)
	assert.Zero(t, st.Stats().RejectedSamples[translate.ReasonSeriesLimit])
}
