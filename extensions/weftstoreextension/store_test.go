package weftstoreextension

import (
	"context"
	"math"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
	"github.com/weftobs/weft/extensions/weftstoreextension/internal/translate"
)

func TestMain(m *testing.M) {
	// tsdb.Open (v0.315.1) leaks its WAL's writer goroutine when it fails
	// after the head exists (the WAL-repair failure of TestWALUnreadable):
	// its cleanup skips db.Close once donec is closed. An unclosed DB of
	// ours would still show here through its other goroutines.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/prometheus/prometheus/tsdb/wlog.(*WL).run"))
}

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		id   component.ID
		want *Config
	}{
		{component.NewID(componentType), createDefaultConfig().(*Config)},
		{component.NewIDWithName(componentType, "custom"), &Config{
			Directory: "/var/lib/weft/store", MetricsRetention: time.Hour, MaxExemplars: 5000,
			TracesMaxBytes: 1 << 20, LogsMaxBytes: 2 << 20,
			Pins: "weft_pins/cluster", PinnedTracesMaxBytes: 256 << 10, PinnedLogsMaxBytes: 0,
			AppendableWindow: 3 * time.Hour, StartTimestamps: true,
			MaxFutureSkew: 2 * time.Minute, MaxSeries: 0, NewSeriesPerCommit: 0,
			Query: QueryConfig{MaxSamples: 250_000, Timeout: time.Minute, LookbackDelta: 2 * time.Minute},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, tt.want, cfg)
		})
	}
	require.NoError(t, componenttest.CheckConfigStruct(createDefaultConfig()))
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"default", func(*Config) {}, ""},
		{"short retention", func(c *Config) { c.MetricsRetention = time.Second }, "metrics_retention"},
		{"no exemplars", func(c *Config) { c.MaxExemplars = 0 }, "max_exemplars"},
		{"tiny traces", func(c *Config) { c.TracesMaxBytes = 100 }, "traces_max_bytes"},
		{"tiny logs", func(c *Config) { c.LogsMaxBytes = -1 }, "logs_max_bytes"},
		{"short appendable window", func(c *Config) { c.AppendableWindow = time.Second }, "appendable_window"},
		{"no future skew", func(c *Config) { c.MaxFutureSkew = 0 }, "max_future_skew"},
		{"future skew of days", func(c *Config) { c.MaxFutureSkew = 48 * time.Hour }, "max_future_skew"},
		{"negative max series", func(c *Config) { c.MaxSeries = -1 }, "max_series"},
		{"negative new series per commit", func(c *Config) { c.NewSeriesPerCommit = -1 }, "new_series_per_commit: must be 0 (every scrape one transaction) or more, got -1"},
		{"scrapes whole", func(c *Config) { c.NewSeriesPerCommit = 0 }, ""},
		{"pins off", func(c *Config) { c.Pins = "none" }, ""},
		{"pins named", func(c *Config) { c.Pins = "weft_pins/cluster" }, ""},
		{"pins not an ID", func(c *Config) { c.Pins = "weft pins" }, "pins: want a component ID"},
		{"tiny pinned traces", func(c *Config) { c.PinnedTracesMaxBytes = 1000 }, "pinned_traces_max_bytes: must be 0 (no exemption) or at least 65536, got 1000"},
		{"negative pinned logs", func(c *Config) { c.PinnedLogsMaxBytes = -1 }, "pinned_logs_max_bytes: must be 0 (no exemption) or at least 65536, got -1"},
		{"no pinned budgets", func(c *Config) { c.PinnedTracesMaxBytes, c.PinnedLogsMaxBytes = 0, 0 }, ""},
		{"unlimited series", func(c *Config) { c.MaxSeries = 0 }, ""},
		{"zero max samples", func(c *Config) { c.Query.MaxSamples = 0 }, "query::max_samples: must be at least 1, got 0"},
		{"no query timeout", func(c *Config) { c.Query.Timeout = 0 }, "query::timeout: must be at least 1s"},
		{"no lookback", func(c *Config) { c.Query.LookbackDelta = 0 }, "query::lookback_delta: must be at least 1s"},
		{"external labels", func(c *Config) { c.ExternalLabels = map[string]string{"cluster": "c1", "node": "n1"} }, ""},
		{"external label name", func(c *Config) { c.ExternalLabels = map[string]string{"1node": "n1"} }, `external_labels: "1node" is not a Prometheus label name`},
		{"reserved external label", func(c *Config) { c.ExternalLabels = map[string]string{"__name__": "x"} }, `external_labels: "__name__": names starting with "__" are reserved`},
		{"empty external value", func(c *Config) { c.ExternalLabels = map[string]string{"node": ""} }, "external_labels::node: value must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			tt.mod(cfg)
			err := cfg.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestLifecycle(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, componentType, f.Type())
	for _, dir := range []string{"", t.TempDir()} {
		t.Run("directory="+dir, func(t *testing.T) {
			cfg := f.CreateDefaultConfig().(*Config)
			cfg.Directory = dir
			ctx := context.Background()

			// Shutdown without Start, twice.
			ext, err := f.Create(ctx, extensiontest.NewNopSettings(componentType), cfg)
			require.NoError(t, err)
			require.NoError(t, ext.Shutdown(ctx))
			require.NoError(t, ext.Shutdown(ctx))
			require.Error(t, ext.Start(ctx, componenttest.NewNopHost()), "start after shutdown")

			ext, err = f.Create(ctx, extensiontest.NewNopSettings(componentType), cfg)
			require.NoError(t, err)
			st := ext.(*Store)
			_, err = st.Queryable().Querier(0, 1)
			require.ErrorIs(t, err, errNotStarted)
			require.ErrorIs(t, st.AppendMetrics(ctx, pmetric.NewMetrics()), errNotStarted)
			require.NoError(t, ext.Start(ctx, componenttest.NewNopHost()))
			require.Error(t, ext.Start(ctx, componenttest.NewNopHost()), "second start")
			q, err := st.Queryable().Querier(0, 1)
			require.NoError(t, err)
			require.NoError(t, q.Close())
			tsdbDir := st.db.Dir()
			require.DirExists(t, tsdbDir)
			require.NoError(t, ext.Shutdown(ctx))
			if dir == "" {
				assert.NoDirExists(t, tsdbDir, "the scratch directory is removed")
			} else {
				assert.DirExists(t, filepath.Join(dir, "wal"))
			}
			require.NoError(t, ext.Shutdown(ctx))
			_, err = st.ExemplarQueryable().ExemplarQuerier(ctx)
			require.ErrorIs(t, err, errNotStarted)
		})
	}
}

// counter builds a cumulative monotonic sum with one point per value,
// step apart, starting at start.
func counter(name string, start time.Time, step time.Duration, values ...float64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	simtest.Pods[1].Resource(rm.Resource())
	rm.Resource().Attributes().PutStr("service.instance.id", "10.0.0.7:9080")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, v := range values {
		dp := s.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i) * step)))
		dp.SetDoubleValue(v)
		dp.Attributes().PutStr("http.route", "/reviews/{id}")
		dp.Attributes().PutInt("http.response.status_code", 200)
	}
	return md
}

func instant(t *testing.T, q storage.Queryable, expr string, ts time.Time) promql.Vector {
	t.Helper()
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	qry, err := eng.NewInstantQuery(context.Background(), q, nil, expr, ts)
	require.NoError(t, err)
	defer qry.Close()
	res := qry.Exec(context.Background())
	require.NoError(t, res.Err)
	v, err := res.Vector()
	require.NoError(t, err)
	return v
}

func TestMetricsPromQL(t *testing.T) {
	st := newTestStore(t, nil)
	ctx := context.Background()
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	// 10 requests per 15 s.
	vals := make([]float64, 21)
	for i := range vals {
		vals[i] = float64(10 * i)
	}
	require.NoError(t, st.AppendMetrics(ctx, counter("http.server.requests", start, 15*time.Second, vals...)))

	end := start.Add(20 * 15 * time.Second)
	v := instant(t, st.Queryable(), `rate(http_server_requests_total[1m])`, end)
	require.Len(t, v, 1)
	assert.InDelta(t, 10.0/15, v[0].F, 1e-9)
	want := labels.FromStrings("http_route", "/reviews/{id}", "http_response_status_code", "200",
		"instance", "10.0.0.7:9080", "job", "reviews",
		"k8s_container_name", "reviews", "k8s_namespace_name", "bookinfo", "k8s_pod_name", "reviews-v1-5b8b8fcc9c-9kq2m")
	assert.Equal(t, want, v[0].Metric)

	stats := st.Stats()
	assert.Equal(t, int64(21), stats.SamplesAppended)
	assert.Equal(t, int64(1), stats.SeriesCreated)

	// Known series: no new labels built.
	require.NoError(t, st.AppendMetrics(ctx, counter("http.server.requests", end.Add(15*time.Second), 15*time.Second, 210, 220)))
	stats = st.Stats()
	assert.Equal(t, int64(23), stats.SamplesAppended)
	assert.Equal(t, int64(1), stats.SeriesCreated)
	assert.Equal(t, 1, stats.CachedSeries)

	// An old sample is rejected and counted, not dropped silently.
	require.NoError(t, st.AppendMetrics(ctx, counter("http.server.requests", start.Add(time.Second), time.Second, 5)))
	assert.Equal(t, int64(1), st.Stats().RejectedSamples[translate.ReasonOutOfOrder])
}

// TestEngine: the store's PromQL engine is one instance for every caller
// (weft_query and weft_rules share it), created by Start, and is bounded by
// query::max_samples: a query over more samples fails with the engine's
// error, a smaller one passes.
func TestEngine(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Query.MaxSamples = 10
	st, err := newStore(componenttest.NewNopTelemetrySettings(), cfg)
	require.NoError(t, err)
	assert.Nil(t, st.Engine(), "no engine before Start")
	require.NoError(t, st.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, st.Shutdown(context.Background())) })

	eng := st.Engine()
	require.NotNil(t, eng)
	got := make(chan *promql.Engine, 4)
	for range cap(got) {
		go func() { got <- st.Engine() }()
	}
	for range cap(got) {
		assert.Same(t, eng, <-got, "one engine for every caller")
	}

	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	vals := make([]float64, 21) // 21 samples of one series, 15 s apart
	for i := range vals {
		vals[i] = float64(i)
	}
	require.NoError(t, st.AppendMetrics(t.Context(), counter("http.server.requests", start, 15*time.Second, vals...)))
	end := start.Add(20 * 15 * time.Second)
	for _, tt := range []struct {
		expr    string
		wantErr bool
	}{
		{"http_server_requests_total", false},        // 1 sample
		{"http_server_requests_total[1m]", false},    // 4 samples
		{"http_server_requests_total[10m]", true},    // 21 samples > 10
		{"count_over_time(vector(1)[5m:10s])", true}, // 31 samples in the subquery
	} {
		t.Run(tt.expr, func(t *testing.T) {
			qry, err := eng.NewInstantQuery(t.Context(), st.Queryable(), nil, tt.expr, end)
			require.NoError(t, err)
			defer qry.Close()
			res := qry.Exec(t.Context())
			if !tt.wantErr {
				require.NoError(t, res.Err)
				return
			}
			var tms promql.ErrTooManySamples
			require.ErrorAs(t, res.Err, &tms)
			assert.ErrorContains(t, res.Err, "query processing would load too many samples into memory")
		})
	}
}

// TestRejectedWithinBatch: the head drops samples that are out of order
// against an earlier sample of the same transaction at commit, silently;
// the appender counts them itself.
func TestRejectedWithinBatch(t *testing.T) {
	tests := []struct {
		name    string
		offsets []time.Duration
		values  []float64
		stored  int64
		reason  string
	}{
		{"in order", []time.Duration{0, time.Second, 2 * time.Second}, []float64{1, 2, 3}, 3, ""},
		{"out of order", []time.Duration{0, 2 * time.Second, time.Second}, []float64{1, 2, 3}, 2, translate.ReasonOutOfOrder},
		{"duplicate timestamp", []time.Duration{0, time.Second, time.Second}, []float64{1, 2, 3}, 2, translate.ReasonDuplicate},
		{"repeated sample", []time.Duration{0, time.Second, time.Second}, []float64{1, 2, 2}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newTestStore(t, nil)
			start := time.Now().Add(-time.Minute).Truncate(time.Second)
			md := counter("batch.requests", start, 0, tt.values...)
			pts := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints()
			for i, off := range tt.offsets {
				pts.At(i).SetTimestamp(pcommon.NewTimestampFromTime(start.Add(off)))
			}
			require.NoError(t, st.AppendMetrics(context.Background(), md))
			v := instant(t, st.Queryable(), `count_over_time(batch_requests_total[5m])`, start.Add(time.Minute))
			require.Len(t, v, 1)
			assert.Equal(t, float64(tt.stored), v[0].F, "samples in the TSDB")
			s := st.Stats()
			var rejected int64
			for _, n := range s.RejectedSamples {
				rejected += n
			}
			if tt.reason != "" {
				assert.Equal(t, int64(1), s.RejectedSamples[tt.reason])
				assert.Equal(t, int64(1), rejected)
			} else {
				assert.Zero(t, rejected)
			}
		})
	}
}

func TestMetricTypes(t *testing.T) {
	st := newTestStore(t, nil)
	ts := time.Now().Add(-time.Minute).Truncate(time.Second)
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "reviews")
	rm.Resource().Attributes().PutStr("service.namespace", "bookinfo")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()

	g := ms.AppendEmpty()
	g.SetName("process.memory.usage")
	g.SetUnit("By")
	gp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	gp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	gp.SetIntValue(4096)

	ud := ms.AppendEmpty()
	ud.SetName("queue.size")
	us := ud.SetEmptySum()
	us.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	up := us.DataPoints().AppendEmpty()
	up.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	up.SetDoubleValue(-3)

	h := ms.AppendEmpty()
	h.SetName("http.server.request.duration")
	h.SetUnit("s")
	hh := h.SetEmptyHistogram()
	hh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := hh.DataPoints().AppendEmpty()
	hp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	hp.ExplicitBounds().FromRaw([]float64{0.1, 0.5})
	hp.BucketCounts().FromRaw([]uint64{3, 5, 2})
	hp.SetCount(10)
	hp.SetSum(2.5)

	sm := ms.AppendEmpty()
	sm.SetName("rpc.latency")
	sp := sm.SetEmptySummary().DataPoints().AppendEmpty()
	sp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	sp.SetCount(4)
	sp.SetSum(8)
	q := sp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.99)
	q.SetValue(3)

	d := ms.AppendEmpty()
	d.SetName("delta.requests")
	ds := d.SetEmptySum()
	ds.SetIsMonotonic(true)
	ds.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	ds.DataPoints().AppendEmpty().SetIntValue(1)

	e := ms.AppendEmpty()
	e.SetName("exp.hist")
	e.SetUnit("s")
	eh := e.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ep := eh.DataPoints().AppendEmpty()
	ep.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	ep.SetScale(0) // bucket i: (2^i, 2^(i+1)]
	ep.SetZeroCount(1)
	ep.Positive().SetOffset(0)
	ep.Positive().BucketCounts().FromRaw([]uint64{2, 0, 3}) // (1,2]: 2, (4,8]: 3
	ep.SetCount(6)
	ep.SetSum(25)

	fine := ms.AppendEmpty()
	fine.SetName("exp.fine")
	fp := fine.SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
	fp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	fp.SetScale(10) // merged down to scale 8: four buckets of scale 10 per bucket
	fp.Positive().SetOffset(0)
	fp.Positive().BucketCounts().FromRaw([]uint64{1, 1, 1, 1, 1})
	fp.SetCount(5)
	fp.SetSum(5.1)

	coarse := ms.AppendEmpty()
	coarse.SetName("exp.coarse")
	cp := coarse.SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
	cp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	cp.SetScale(-5)

	require.NoError(t, st.AppendMetrics(context.Background(), md))
	at := ts.Add(time.Second)
	tests := []struct {
		expr string
		want float64
	}{
		{`process_memory_usage_bytes{job="bookinfo/reviews"}`, 4096},
		{`queue_size`, -3},
		{`http_server_request_duration_seconds_bucket{le="0.1"}`, 3},
		{`http_server_request_duration_seconds_bucket{le="0.5"}`, 8},
		{`http_server_request_duration_seconds_bucket{le="+Inf"}`, 10},
		{`http_server_request_duration_seconds_sum`, 2.5},
		{`http_server_request_duration_seconds_count`, 10},
		{`rpc_latency{quantile="0.99"}`, 3},
		{`rpc_latency_sum`, 8},
		{`rpc_latency_count`, 4},
		{`histogram_count(exp_hist_seconds)`, 6},
		{`histogram_sum(exp_hist_seconds)`, 25},
		{`histogram_fraction(0, 2, exp_hist_seconds)`, 0.5},
		{`histogram_fraction(0, 8, exp_hist_seconds)`, 1},
		{`histogram_count(exp_fine)`, 5},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			v := instant(t, st.Queryable(), tt.expr, at)
			require.Len(t, v, 1)
			assert.Equal(t, tt.want, v[0].F)
		})
	}
	stats := st.Stats()
	assert.Equal(t, int64(1), stats.RejectedSamples[translate.ReasonDelta])
	assert.Equal(t, int64(1), stats.RejectedSamples[translate.ReasonUnsupported])
	assert.Equal(t, int64(12), stats.SamplesAppended)
}

func TestExemplars(t *testing.T) {
	st := newTestStore(t, nil)
	start := time.Now().Add(-time.Minute)
	reqs, _, _, md := simtest.Simulate(simtest.NewRand(1), 50, start)
	require.NoError(t, st.AppendMetrics(context.Background(), md))
	stats := st.Stats()
	require.Equal(t, int64(100), stats.ExemplarsAppended, "one counter and one histogram exemplar per request: %+v", stats.RejectedExemplars)

	eq, err := st.ExemplarQueryable().ExemplarQuerier(context.Background())
	require.NoError(t, err)
	m := labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, "http_server_requests_total")
	res, err := eq.Select(start.UnixMilli(), time.Now().UnixMilli(), []*labels.Matcher{m})
	require.NoError(t, err)
	got := make(map[string]bool)
	for _, r := range res {
		for _, ex := range r.Exemplars {
			got[ex.Labels.Get("trace_id")] = true
			assert.Equal(t, 1.0, ex.Value)
		}
	}
	for _, r := range reqs {
		assert.True(t, got[r.TraceID.String()], "exemplar of %s", r.TraceID)
	}

	// The histogram exemplar sits on the bucket that holds its value.
	m = labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, "http_server_request_duration_seconds_bucket")
	res, err = eq.Select(start.UnixMilli(), time.Now().UnixMilli(), []*labels.Matcher{m})
	require.NoError(t, err)
	n := 0
	for _, r := range res {
		le := r.SeriesLabels.Get("le")
		for _, ex := range r.Exemplars {
			n++
			if le != "+Inf" {
				bound, err := parseFloat(le)
				require.NoError(t, err)
				assert.LessOrEqual(t, ex.Value, bound)
			}
		}
	}
	assert.Equal(t, 50, n)

	// The exemplar of a rejected sample is counted too.
	md = counter("http.server.requests", start.Add(-time.Hour), time.Second, 1)
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Exemplars().AppendEmpty().SetTraceID(pcommon.TraceID{1})
	require.NoError(t, st.AppendMetrics(context.Background(), md))
	assert.Equal(t, int64(1), st.Stats().RejectedExemplars[translate.ReasonSampleRejected])

	// Without a trace ID an exemplar cannot join anything: counted.
	md = counter("no.trace", time.Now().Add(-time.Second), time.Second, 1)
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Exemplars().AppendEmpty().SetDoubleValue(1)
	require.NoError(t, st.AppendMetrics(context.Background(), md))
	assert.Equal(t, int64(1), st.Stats().RejectedExemplars[translate.ReasonNoTraceID])
}

func TestWALSurvivesReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	start := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	cfg := func(c *Config) { c.Directory = dir }
	st, err := newStore(componenttest.NewNopTelemetrySettings(), withDefaults(cfg))
	require.NoError(t, err)
	require.NoError(t, st.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, st.AppendMetrics(context.Background(), counter("wal.requests", start, 15*time.Second, 1, 2, 3, 4)))
	require.NoError(t, st.Shutdown(context.Background()))
	require.DirExists(t, filepath.Join(dir, "wal"))

	st2 := newTestStore(t, cfg)
	v := instant(t, st2.Queryable(), `wal_requests_total`, start.Add(45*time.Second))
	require.Len(t, v, 1)
	assert.Equal(t, 4.0, v[0].F)
	v = instant(t, st2.Queryable(), `count_over_time(wal_requests_total[1m])`, start.Add(45*time.Second))
	require.Len(t, v, 1)
	assert.Equal(t, 4.0, v[0].F)

	// Without a directory nothing survives.
	st3 := newTestStore(t, nil)
	require.NoError(t, st3.AppendMetrics(context.Background(), counter("mem.requests", start, time.Second, 1)))
	require.NoError(t, st3.Shutdown(context.Background()))
	st4 := newTestStore(t, nil)
	assert.Empty(t, instant(t, st4.Queryable(), `mem_requests_total`, start))
}

func TestRetention(t *testing.T) {
	st := newTestStore(t, func(c *Config) { c.MetricsRetention = 10 * time.Minute })
	now := time.Now().Truncate(time.Second)
	old := now.Add(-9 * time.Minute) // within the retention at Start
	require.NoError(t, st.AppendMetrics(context.Background(), counter("old.requests", old, time.Minute, 1, 2, 3)))
	require.NoError(t, st.AppendMetrics(context.Background(), counter("new.requests", now.Add(-time.Minute), time.Second, 1)))
	require.NotEmpty(t, instant(t, st.Queryable(), `old_requests_total`, old.Add(2*time.Minute)))
	// Five minutes later old.requests is past the retention, new.requests not.
	now = now.Add(5 * time.Minute)
	require.NoError(t, st.retain(now))
	assert.Empty(t, instant(t, st.Queryable(), `old_requests_total`, old.Add(2*time.Minute)))
	assert.NotEmpty(t, instant(t, st.Queryable(), `new_requests_total`, now.Add(-5*time.Minute)))
	// Samples older than the retention are now rejected, counted.
	require.NoError(t, st.AppendMetrics(context.Background(), counter("old.requests", old, time.Minute, 1)))
	assert.Equal(t, int64(1), st.Stats().RejectedSamples[translate.ReasonOutOfBounds])
	// The appender cache keeps series used in the current or the previous
	// retention interval: new.requests was last used before the first
	// retain, old.requests after it.
	assert.Equal(t, 2, st.Stats().CachedSeries)
	require.NoError(t, st.retain(now))
	require.NoError(t, st.retain(now))
	assert.Equal(t, 1, st.Stats().CachedSeries)
	require.NoError(t, st.retain(now))
	assert.Equal(t, 0, st.Stats().CachedSeries)
}

func TestSelfMetrics(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	cfg.TracesMaxBytes = minIndexBytes
	st, err := newStore(tel.NewTelemetrySettings(), cfg)
	require.NoError(t, err)
	require.NoError(t, st.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, st.Shutdown(context.Background())) })
	_, td, _, _ := simtest.Simulate(simtest.NewRand(2), 2000, time.Now())
	require.NoError(t, st.AppendTraces(context.Background(), td))
	evicted := st.Stats().Spans.Evicted
	require.Positive(t, evicted)

	m, err := tel.GetMetric("weft_store.evicted_records")
	require.NoError(t, err)
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "evicted_records is an int64 sum, got %T", m.Data)
	bySignal := make(map[string]int64)
	for _, dp := range sum.DataPoints {
		sig, _ := dp.Attributes.Value("signal")
		bySignal[sig.AsString()] = dp.Value
	}
	assert.Equal(t, map[string]int64{"spans": evicted, "logs": 0}, bySignal)

	// The index's records sit outside the Go heap: reported by signal.
	spans := st.Stats().Spans
	require.Positive(t, spans.OffHeapBytes)
	assert.Equal(t, map[string]int64{"spans": spans.OffHeapBytes, "logs": 0}, gaugeBySignal(t, tel, "weft_store.offheap_bytes"))

	// The exemplar storage: what it holds, and its WAL's failed writes.
	md := counter("span.calls", time.Now().Add(-10*time.Second), time.Second, 3)
	ex := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Exemplars().AppendEmpty()
	ex.SetTraceID(pcommon.TraceID{9, 9, 9})
	ex.SetDoubleValue(1)
	require.NoError(t, st.AppendMetrics(context.Background(), md))
	stats := st.Stats()
	assert.Equal(t, 1, stats.Exemplars)
	assert.Equal(t, 1, stats.ExemplarSeries)
	assert.Equal(t, cfg.MaxExemplars, stats.ExemplarCapacity)
	m, err = tel.GetMetric("weft_store.stored_exemplars")
	require.NoError(t, err)
	gauge, ok := m.Data.(metricdata.Gauge[int64])
	require.True(t, ok, "stored_exemplars is an int64 gauge, got %T", m.Data)
	require.Len(t, gauge.DataPoints, 1)
	assert.Equal(t, int64(1), gauge.DataPoints[0].Value)
	m, err = tel.GetMetric("weft_store.exemplar_wal_failures")
	require.NoError(t, err)
	sum, ok = m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "exemplar_wal_failures is an int64 sum, got %T", m.Data)
	require.Len(t, sum.DataPoints, 1)
	assert.Zero(t, sum.DataPoints[0].Value)
}

// gaugeBySignal reads an int64 gauge of the store by its signal attribute.
func gaugeBySignal(t *testing.T, tel *componenttest.Telemetry, name string) map[string]int64 {
	t.Helper()
	m, err := tel.GetMetric(name)
	require.NoError(t, err)
	g, ok := m.Data.(metricdata.Gauge[int64])
	require.True(t, ok, "%s is an int64 gauge, got %T", name, m.Data)
	out := make(map[string]int64)
	for _, dp := range g.DataPoints {
		sig, _ := dp.Attributes.Value("signal")
		out[sig.AsString()] = dp.Value
	}
	return out
}

func withDefaults(mod func(*Config)) *Config {
	cfg := createDefaultConfig().(*Config)
	mod(cfg)
	return cfg
}

func parseFloat(s string) (float64, error) {
	if s == "+Inf" {
		return math.Inf(1), nil
	}
	return strconv.ParseFloat(s, 64)
}

// TestWALRetentionReopen: samples cut by retention stay gone after a
// reopen (the WAL may still hold them; Start cuts them again) and the
// recent ones are back.
func TestWALRetentionReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := func(c *Config) { c.Directory, c.MetricsRetention = dir, 10*time.Minute }
	now := time.Now().Truncate(time.Second)
	old := now.Add(-50 * time.Minute)
	st, err := newStore(componenttest.NewNopTelemetrySettings(), withDefaults(cfg))
	require.NoError(t, err)
	require.NoError(t, st.Start(context.Background(), componenttest.NewNopHost()))
	for i := range 40 {
		// Old samples, one per second, each in its own transaction so
		// that the WAL has many records.
		require.NoError(t, st.AppendMetrics(context.Background(), counter("old.requests", old.Add(time.Duration(i)*time.Second), 0, float64(i))))
	}
	require.NoError(t, st.AppendMetrics(context.Background(), counter("new.requests", now.Add(-time.Minute), time.Second, 1, 2)))
	require.NoError(t, st.retain(now))
	require.NoError(t, st.Shutdown(context.Background()))

	st2 := newTestStore(t, cfg)
	assert.Empty(t, instant(t, st2.Queryable(), `old_requests_total`, old.Add(time.Minute)))
	v := instant(t, st2.Queryable(), `new_requests_total`, now)
	require.Len(t, v, 1)
	assert.Equal(t, 2.0, v[0].F)
}

// TestAppendable: what the rules manager writes through Appendable is
// queryable; before Start the appender refuses.
func TestAppendable(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	st, err := newStore(componenttest.NewNopTelemetrySettings(), cfg)
	require.NoError(t, err)
	app := st.Appendable().Appender(context.Background())
	_, err = app.Append(0, labels.FromStrings("__name__", "x"), 1, 1)
	require.ErrorIs(t, err, errNotStarted)
	require.ErrorIs(t, app.Commit(), errNotStarted)
	require.NoError(t, st.Shutdown(context.Background()))

	st = newTestStore(t, nil)
	ts := time.Now().Add(-time.Minute)
	app = st.Appendable().Appender(context.Background())
	_, err = app.Append(0, labels.FromStrings("__name__", "job:requests:rate1m", "job", "reviews"), ts.UnixMilli(), 0.5)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	v := instant(t, st.Queryable(), `job:requests:rate1m{job="reviews"}`, ts)
	require.Len(t, v, 1)
	assert.Equal(t, 0.5, v[0].F)
}

// TestExemplarWithoutTimestamp: the span_metrics connector sets no exemplar
// timestamp; such an exemplar takes its data point's time, so it falls in
// the point's time window (and under retention) instead of at 1970.
func TestExemplarWithoutTimestamp(t *testing.T) {
	st := newTestStore(t, nil)
	at := time.Now().Add(-10 * time.Second).Truncate(time.Millisecond)
	md := counter("span.calls", at, time.Second, 3)
	ex := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Exemplars().AppendEmpty()
	ex.SetTraceID(pcommon.TraceID{9, 9, 9})
	ex.SetDoubleValue(1)
	require.NoError(t, st.AppendMetrics(context.Background(), md))

	eq, err := st.ExemplarQueryable().ExemplarQuerier(context.Background())
	require.NoError(t, err)
	m := labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, "span_calls_total")
	res, err := eq.Select(at.Add(-time.Second).UnixMilli(), at.Add(time.Second).UnixMilli(), []*labels.Matcher{m})
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Len(t, res[0].Exemplars, 1)
	assert.Equal(t, at.UnixMilli(), res[0].Exemplars[0].Ts)
}

// TestExemplarsOfOneFlush: the span_metrics connector hands over many
// exemplars of one data point at once, in span order (values unordered, no
// timestamps). The TSDB would keep only those in its order and drop the rest
// at Commit without a word; the store keeps them all.
func TestExemplarsOfOneFlush(t *testing.T) {
	st := newTestStore(t, nil)
	at := time.Now().Add(-10 * time.Second).Truncate(time.Millisecond)
	md := counter("span.calls", at, time.Second, 40)
	exs := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Exemplars()
	want := map[string]bool{}
	for i := range 40 {
		ex := exs.AppendEmpty()
		tid := pcommon.TraceID{7, byte(i + 1)}
		ex.SetTraceID(tid)
		ex.SetDoubleValue(float64(40 - i)) // descending
		want[tid.String()] = true
	}
	// And the same exemplar twice: kept once, counted as duplicate.
	exs.At(0).CopyTo(exs.AppendEmpty())
	require.NoError(t, st.AppendMetrics(context.Background(), md))

	eq, err := st.ExemplarQueryable().ExemplarQuerier(context.Background())
	require.NoError(t, err)
	m := labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, "span_calls_total")
	res, err := eq.Select(at.Add(-time.Second).UnixMilli(), at.Add(time.Second).UnixMilli(), []*labels.Matcher{m})
	require.NoError(t, err)
	require.Len(t, res, 1)
	got := map[string]bool{}
	for _, ex := range res[0].Exemplars {
		got[ex.Labels.Get("trace_id")] = true
	}
	assert.Equal(t, want, got)
	assert.Equal(t, int64(40), st.Stats().ExemplarsAppended)
	assert.Equal(t, int64(1), st.Stats().RejectedExemplars[translate.ReasonDuplicate])
}
