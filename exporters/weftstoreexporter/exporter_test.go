package weftstoreexporter

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
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
	"github.com/weftobs/weft/internal/weftest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		id      string
		want    component.ID
		wantErr string
	}{
		{"weft_store", component.MustNewID("weft_store"), ""},
		{"weft_store/named", component.MustNewIDWithName("weft_store", "node"), ""},
		{"weft_store/bad", component.MustNewID("file_storage"), "store: must name a weft_store extension"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id)
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			assert.Equal(t, tt.want, cfg.(*Config).Store)
			err = confmap.Validate(cfg)
			if tt.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.wantErr)
			}
		})
	}
	require.NoError(t, componenttest.CheckConfigStruct(createDefaultConfig()))
}

type notAStore struct {
	component.StartFunc
	component.ShutdownFunc
}

func TestStartFindsStore(t *testing.T) {
	f := NewFactory()
	set := exportertest.NewNopSettings(componentType)
	ctx := context.Background()

	exp, err := f.CreateTraces(ctx, set, f.CreateDefaultConfig())
	require.NoError(t, err)
	err = exp.Start(ctx, componenttest.NewNopHost())
	require.ErrorContains(t, err, `store: extension "weft_store" is not configured`)
	require.NoError(t, exp.Shutdown(ctx))

	exp, err = f.CreateTraces(ctx, set, f.CreateDefaultConfig())
	require.NoError(t, err)
	err = exp.Start(ctx, weftest.Host{weftstoretest.ID: notAStore{}})
	require.ErrorContains(t, err, "not the weft_store extension")
	require.NoError(t, exp.Shutdown(ctx))

	// Data before Start is refused, not lost silently.
	exp, err = f.CreateTraces(ctx, set, f.CreateDefaultConfig())
	require.NoError(t, err)
	require.ErrorIs(t, exp.ConsumeTraces(ctx, ptrace.NewTraces()), errNoStore)
	require.NoError(t, exp.Shutdown(ctx))
}

func TestExportAllSignals(t *testing.T) {
	st := weftstoretest.Start(t, nil)
	h := weftstoretest.Host(st)
	f := NewFactory()
	set := exportertest.NewNopSettings(componentType)
	ctx := context.Background()
	cfg := f.CreateDefaultConfig()

	te, err := f.CreateTraces(ctx, set, cfg)
	require.NoError(t, err)
	me, err := f.CreateMetrics(ctx, set, cfg)
	require.NoError(t, err)
	le, err := f.CreateLogs(ctx, set, cfg)
	require.NoError(t, err)
	for _, c := range []component.Component{te, me, le} {
		require.NoError(t, c.Start(ctx, h))
		t.Cleanup(func() { require.NoError(t, c.Shutdown(ctx)) })
	}

	tid := pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	now := time.Now()

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "reviews")
	rs.Resource().Attributes().PutStr("k8s.namespace.name", "bookinfo")
	rs.Resource().Attributes().PutStr("k8s.pod.name", "reviews-v2-abc")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(tid)
	sp.SetSpanID(pcommon.SpanID{1})
	sp.SetName("GET /reviews/{id}")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Second)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	sp.Status().SetCode(ptrace.StatusCodeError)
	require.NoError(t, te.ConsumeTraces(ctx, td))

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.namespace.name", "bookinfo")
	rl.Resource().Attributes().PutStr("k8s.pod.name", "reviews-v2-abc")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
	lr.SetTraceID(tid)
	lr.Body().SetStr("upstream connect error")
	require.NoError(t, le.ConsumeLogs(ctx, ld))

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("k8s.namespace.name", "bookinfo")
	rm.Resource().Attributes().PutStr("k8s.pod.name", "reviews-v2-abc")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("requests")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
	dp.SetIntValue(7)
	ex := dp.Exemplars().AppendEmpty()
	ex.SetTraceID(tid)
	ex.SetTimestamp(pcommon.NewTimestampFromTime(now))
	ex.SetIntValue(1)
	require.NoError(t, me.ConsumeMetrics(ctx, md))

	c, err := st.Correlate(ctx, tid)
	require.NoError(t, err)
	require.Len(t, c.Spans, 1)
	require.Len(t, c.Logs, 1)
	require.Len(t, c.Exemplars, 1)
	pod := weftstoreextension.Pod{Namespace: "bookinfo", Name: "reviews-v2-abc"}
	assert.Equal(t, pod, c.Spans[0].Pod)
	assert.Equal(t, pod, c.Logs[0].Pod)
	assert.Equal(t, pod, c.Exemplars[0].Pod)
	assert.Equal(t, "requests_total", c.Exemplars[0].Series.Get("__name__"))
	assert.Equal(t, "upstream connect error", c.Logs[0].Body)
	assert.Equal(t, int64(1), st.Stats().SamplesAppended)
	failing := st.FailingTraces(weftstoreextension.TraceSelector{Pod: pod})
	require.Len(t, failing, 1)
	assert.Equal(t, tid, failing[0].TraceID)
}
