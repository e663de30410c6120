package weftstoreprocessor

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
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
	"github.com/weftobs/weft/internal/weftest"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	for id, want := range map[string]string{"weft_store": "", "weft_store/named": "", "weft_store/bad": "store: must name a weft_store extension"} {
		cfg := createDefaultConfig()
		sub, err := cm.Sub(id)
		require.NoError(t, err)
		require.NoError(t, sub.Unmarshal(cfg))
		if err := confmap.Validate(cfg); want == "" {
			require.NoError(t, err, id)
		} else {
			require.ErrorContains(t, err, want, id)
		}
	}
	require.NoError(t, componenttest.CheckConfigStruct(createDefaultConfig()))
}

func TestStartFindsStore(t *testing.T) {
	f := NewFactory()
	set := processortest.NewNopSettings(componentType)
	ctx := context.Background()

	p, err := f.CreateLogs(ctx, set, f.CreateDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	require.ErrorContains(t, p.Start(ctx, componenttest.NewNopHost()), `store: extension "weft_store" is not configured`)
	require.NoError(t, p.Shutdown(ctx))

	// Data before Start is refused and not passed on.
	sink := new(consumertest.TracesSink)
	tp, err := f.CreateTraces(ctx, set, f.CreateDefaultConfig(), sink)
	require.NoError(t, err)
	require.ErrorIs(t, tp.ConsumeTraces(ctx, ptrace.NewTraces()), errNoStore)
	assert.Zero(t, sink.SpanCount())
	require.NoError(t, tp.Shutdown(ctx))
}

// The processor stores each batch and hands the same batch on: the next
// consumer may change it (MutatesData false asks the collector for no
// copy in front of the processor).
func TestStoresAndPassesTheSameBatch(t *testing.T) {
	st := weftstoretest.Start(t, nil)
	f := NewFactory()
	set := processortest.NewNopSettings(componentType)
	ctx := context.Background()
	logSink, spanSink := new(consumertest.LogsSink), new(consumertest.TracesSink)
	lp, err := f.CreateLogs(ctx, set, f.CreateDefaultConfig(), logSink)
	require.NoError(t, err)
	tp, err := f.CreateTraces(ctx, set, f.CreateDefaultConfig(), spanSink)
	require.NoError(t, err)
	for _, c := range []component.Component{lp, tp} {
		require.NoError(t, c.Start(ctx, weftstoretest.Host(st)))
		t.Cleanup(func() { require.NoError(t, c.Shutdown(ctx)) })
	}
	assert.False(t, lp.Capabilities().MutatesData)
	assert.False(t, tp.Capabilities().MutatesData)

	tid := weftest.TraceID(t, "4bf92f3577b34da6a3ce929d0e0e4736")
	ld := logBatch(tid, "upstream connect error")
	require.NoError(t, lp.ConsumeLogs(ctx, ld))
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(tid)
	sp.SetSpanID(pcommon.SpanID{1})
	sp.SetName("GET /reviews/{id}")
	require.NoError(t, tp.ConsumeTraces(ctx, td))

	c, err := st.Correlate(ctx, tid)
	require.NoError(t, err)
	require.Len(t, c.Logs, 1)
	require.Len(t, c.Spans, 1)
	assert.Equal(t, "upstream connect error", c.Logs[0].Body)
	assert.Equal(t, "GET /reviews/{id}", c.Spans[0].Data.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Name())

	require.Len(t, logSink.AllLogs(), 1)
	require.Len(t, spanSink.AllTraces(), 1)
	bodyOf(logSink.AllLogs()[0]).SetStr("changed downstream")
	assert.Equal(t, "changed downstream", bodyOf(ld).Str(), "the next consumer got the batch itself")
	spanSink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetName("renamed")
	assert.Equal(t, "renamed", sp.Name())

	// The store holds its own bytes: what the next consumer did is not seen there.
	c, err = st.Correlate(ctx, tid)
	require.NoError(t, err)
	assert.Equal(t, "upstream connect error", c.Logs[0].Body)
	assert.Equal(t, "GET /reviews/{id}", c.Spans[0].Data.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Name())
}

func logBatch(tid pcommon.TraceID, body string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.namespace.name", "bookinfo")
	rl.Resource().Attributes().PutStr("k8s.pod.name", "reviews-v2-abc")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	lr.SetTraceID(tid)
	lr.Body().SetStr(body)
	return ld
}

func bodyOf(ld plog.Logs) pcommon.Value {
	return ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body()
}
