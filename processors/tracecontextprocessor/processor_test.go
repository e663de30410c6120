package tracecontextprocessor

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/weftobs/weft/internal/weftest"
)

func newTestProcessor(t testing.TB, cfg *Config, next consumer.Logs) processor.Logs {
	t.Helper()
	f := NewFactory()
	p, err := f.CreateLogs(t.Context(), processortest.NewNopSettings(f.Type()), cfg, next)
	require.NoError(t, err)
	require.NoError(t, p.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(t.Context())) })
	return p
}

func traceHex(lr plog.LogRecord) string {
	if lr.TraceID().IsEmpty() {
		return ""
	}
	id := lr.TraceID()
	return hex.EncodeToString(id[:])
}

func spanHex(lr plog.LogRecord) string {
	if lr.SpanID().IsEmpty() {
		return ""
	}
	id := lr.SpanID()
	return hex.EncodeToString(id[:])
}

func TestProcessorConsumeLogs(t *testing.T) {
	type rec struct {
		setup               func(lr plog.LogRecord)
		wantTrace, wantSpan string
		wantFlags           plog.LogRecordFlags
	}
	tests := []struct {
		name string
		cfg  *Config
		recs []rec
	}{
		{"string bodies", &Config{Body: true}, []rec{
			{func(lr plog.LogRecord) { lr.Body().SetStr(`{"trace_id":"` + tid + `","span_id":"` + sid + `"}`) }, tid, sid, 0},
			{func(lr plog.LogRecord) { lr.Body().SetStr(`x traceparent=00-` + tid2 + `-` + sid2 + `-01`) }, tid2, sid2, 1},
			{func(lr plog.LogRecord) { lr.Body().SetStr(`no ids here ` + uuid) }, "", "", 0},
			{func(lr plog.LogRecord) { lr.Body().SetInt(42) }, "", "", 0},
		}},
		{"an existing trace id is kept", &Config{Body: true}, []rec{
			{func(lr plog.LogRecord) {
				lr.SetTraceID(weftest.TraceID(t, tid3))
				lr.SetFlags(2)
				lr.Body().SetStr(`traceparent=00-` + tid + `-` + sid + `-01`)
			}, tid3, "", 2},
		}},
		{"span id without trace id is replaced with the line's pair", &Config{Body: true}, []rec{
			{func(lr plog.LogRecord) {
				lr.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
				lr.Body().SetStr(`b3=` + tid + `-` + sid)
			}, tid, sid, 0},
		}},
		{"flags kept when the source has none", &Config{Body: true}, []rec{
			{func(lr plog.LogRecord) {
				lr.SetFlags(1)
				lr.Body().SetStr(`trace_id=` + tid)
			}, tid, "", 1},
		}},
		{"map body", &Config{Body: true}, []rec{
			{func(lr plog.LogRecord) {
				m := lr.Body().SetEmptyMap()
				m.PutStr("traceId", tid)
				m.PutStr("spanId", sid)
			}, tid, sid, 0},
		}},
		{"attributes after body", &Config{Body: true, Attributes: []string{"missing", "message"}}, []rec{
			{func(lr plog.LogRecord) {
				lr.Body().SetStr("nothing")
				lr.Attributes().PutStr("message", "trace_id="+tid)
			}, tid, "", 0},
			{func(lr plog.LogRecord) {
				lr.Body().SetStr("trace_id=" + tid2)
				lr.Attributes().PutStr("message", "trace_id="+tid)
			}, tid2, "", 0},
		}},
		{"body disabled", &Config{Attributes: []string{"message"}}, []rec{
			{func(lr plog.LogRecord) { lr.Body().SetStr("trace_id=" + tid2) }, "", "", 0},
			{func(lr plog.LogRecord) { lr.Attributes().PutStr("message", "trace_id="+tid) }, tid, "", 0},
		}},
		{"configured fields", &Config{Body: true, Fields: FieldsConfig{TraceID: []string{"corr"}, SpanID: []string{"op"}}}, []rec{
			{func(lr plog.LogRecord) { lr.Body().SetStr(`corr=` + tid + ` op=` + sid) }, tid, sid, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			p := newTestProcessor(t, tt.cfg, sink)
			assert.True(t, p.Capabilities().MutatesData)

			ld := plog.NewLogs()
			// Two resources, to cover the nesting.
			for r := 0; r < 2; r++ {
				lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
				for _, rc := range tt.recs {
					rc.setup(lrs.AppendEmpty())
				}
			}
			require.NoError(t, p.ConsumeLogs(t.Context(), ld))
			require.Len(t, sink.AllLogs(), 1)
			out := sink.AllLogs()[0]
			require.Equal(t, 2*len(tt.recs), out.LogRecordCount())
			for r := 0; r < 2; r++ {
				lrs := out.ResourceLogs().At(r).ScopeLogs().At(0).LogRecords()
				for i, rc := range tt.recs {
					lr := lrs.At(i)
					assert.Equal(t, rc.wantTrace, traceHex(lr), "record %d trace", i)
					assert.Equal(t, rc.wantSpan, spanHex(lr), "record %d span", i)
					assert.Equal(t, rc.wantFlags, lr.Flags(), "record %d flags", i)
				}
			}
		})
	}
}

func TestProcessorShutdown(t *testing.T) {
	f := NewFactory()
	p, err := f.CreateLogs(t.Context(), processortest.NewNopSettings(f.Type()), f.CreateDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	// Safe without Start and twice.
	require.NoError(t, p.Shutdown(t.Context()))
	require.NoError(t, p.Shutdown(t.Context()))
}

func TestFactoryType(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, "trace_context", f.Type().String())
	require.NoError(t, f.CreateDefaultConfig().(*Config).Validate())
	_, err := f.CreateTraces(t.Context(), processortest.NewNopSettings(f.Type()), f.CreateDefaultConfig(), consumertest.NewNop())
	require.Error(t, err, "only logs are supported")
}

// TestApplyNoAllocs: processing a record allocates nothing, with or without
// an ID (the per-batch allocations of processorhelper are not per record).
func TestApplyNoAllocs(t *testing.T) {
	p := newLogsProcessor(&Config{Body: true, Attributes: []string{"message"}})
	lr := plog.NewLogRecord()
	lr.Attributes().PutStr("message", "no id")
	for _, bl := range benchLines {
		lr.Body().SetStr(bl.line)
		allocs := testing.AllocsPerRun(100, func() {
			lr.SetTraceID(pcommon.TraceID{})
			if p.apply(lr) != bl.id {
				t.Fatalf("%s: unexpected result", bl.name)
			}
		})
		assert.Zero(t, allocs, bl.name)
	}
}
