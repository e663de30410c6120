package evidencesamplingprocessor

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/weftobs/weft/internal/weftest"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	full := testConfig(func(c *Config) {
		c.Pins = "weft_pins/cluster"
		c.SamplingPercentage = 10
		c.DecisionWait = 30 * time.Second
		c.PinLogSeverity = "WARN"
		c.MaxBufferedSpans = 200000
		c.MaxBufferedSpanBytes = 64 << 20
		c.MaxBufferedLogRecords = 50000
		c.MaxBufferedLogBytes = 16 << 20
	})
	for _, tc := range []struct {
		name    string
		want    *Config
		wantErr []string
	}{
		{name: "evidence_sampling", want: testConfig(nil)},
		{name: "evidence_sampling/full", want: full},
		{name: "evidence_sampling/off", want: testConfig(func(c *Config) { c.Pins = PinsNone })},
		{name: "evidence_sampling/bad", wantErr: []string{
			"pins: want a component ID",
			"sampling_percentage: between 0 and 100, got 101",
			"decision_wait: between 10ms and 10m, got 1ms",
			`pin_log_severity: one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL, NONE, got "LOUD"`,
			"max_buffered_spans: must be positive",
			"max_buffered_span_bytes: must be positive",
			"max_buffered_log_records: must be positive",
			"max_buffered_log_bytes: must be positive",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tc.name)
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tc.wantErr != nil {
				require.Error(t, err)
				for _, w := range tc.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg)
		})
	}
}

// TestFactory: one factory for traces and logs; the processors start and
// stop through the collector's interfaces, shutdown is safe without start
// and twice.
func TestFactory(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, typeStr, f.Type().String())
	cfg := f.CreateDefaultConfig()
	require.NoError(t, componenttest.CheckConfigStruct(cfg))
	ctx := context.Background()
	tp, err := f.CreateTraces(ctx, processortestSettings(), cfg, consumertest.NewNop())
	require.NoError(t, err)
	assert.True(t, tp.Capabilities().MutatesData)
	lp, err := f.CreateLogs(ctx, processortestSettings(), cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, lp.Shutdown(ctx), "without Start")
	require.NoError(t, tp.Start(ctx, weftest.Host{}))
	require.Error(t, tp.Start(ctx, weftest.Host{}), "twice")
	require.NoError(t, tp.Shutdown(ctx))
	require.NoError(t, tp.Shutdown(ctx))
	_, err = f.CreateMetrics(ctx, processortestSettings(), cfg, consumertest.NewNop())
	require.Error(t, err, "no metrics")
}

// TestSelfMetrics: the evidence_sampling.* names and attributes of both
// signals, read from the counters and the buffer.
func TestSelfMetrics(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	host, _ := localHost(t)
	ctx := context.Background()

	set := processortestSettings()
	set.TelemetrySettings = tel.NewTelemetrySettings()
	tp, err := newTracesProcessor(set, testConfig(tenPercent), consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, tp.start(ctx, host))
	defer func() { require.NoError(t, tp.shutdown(ctx)) }()
	lp, err := newLogsProcessor(set, testConfig(tenPercent), consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, lp.start(ctx, host))
	defer func() { require.NoError(t, lp.shutdown(ctx)) }()

	_, _ = tp.process(ctx, traces(span{trace: sampledID(1)}, span{trace: unsampledID(2)}, span{trace: unsampledID(3), http: 500}))
	_, _ = lp.process(ctx, logs(logRecord{trace: unsampledID(4)}, logRecord{severity: 9}, logRecord{trace: unsampledID(5), severity: 17}))

	sums := func(name string) map[string]int64 {
		m, err := tel.GetMetric(name)
		require.NoError(t, err, name)
		out := map[string]int64{}
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			r, _ := dp.Attributes.Value("reason")
			if dp.Value != 0 {
				out[r.AsString()] += dp.Value
			}
		}
		return out
	}
	gauge := func(name string) int64 {
		m, err := tel.GetMetric(name)
		require.NoError(t, err, name)
		return m.Data.(metricdata.Gauge[int64]).DataPoints[0].Value
	}
	assert.Equal(t, map[string]int64{"sampled": 1, "pinned": 1}, sums("evidence_sampling.spans_kept"))
	assert.Equal(t, map[string]int64{"no_trace_id": 1, "pinned": 1}, sums("evidence_sampling.log_records_kept"))
	assert.Equal(t, map[string]int64{"error_span": 1, "error_log": 1}, sums("evidence_sampling.pins"))
	assert.Equal(t, int64(1), gauge("evidence_sampling.buffered_spans"))
	assert.Equal(t, int64(1), gauge("evidence_sampling.buffered_log_records"))
	assert.Positive(t, gauge("evidence_sampling.buffered_span_bytes"))
	assert.Positive(t, gauge("evidence_sampling.buffered_log_bytes"))
	_, err = tel.GetMetric("evidence_sampling.spans_dropped")
	require.NoError(t, err)
	_, err = tel.GetMetric("evidence_sampling.log_records_dropped")
	require.NoError(t, err)
	_, err = tel.GetMetric("evidence_sampling.late_pins")
	require.NoError(t, err)
}
