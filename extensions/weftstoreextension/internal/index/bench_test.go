package index

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extensions/weftpinsextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
)

// BenchmarkAppendSpans measures the span index insert cost: one op is a
// batch of 100 simnode-like spans of one pod (serialize, index, evict).
func BenchmarkAppendSpans(b *testing.B) {
	x := NewSpans(defaultMaxBytes)
	var seq uint64
	td := simtest.SpanBatch(&seq, simtest.Batch)
	var m ptrace.ProtoMarshaler
	b.SetBytes(int64(m.TracesSize(td)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		x.Append(td)
	}
	simtest.PerItem(b, "span")
}

// BenchmarkAppendLogs measures the log index insert cost: one op is a batch
// of 100 JSON log records of one pod.
func BenchmarkAppendLogs(b *testing.B) {
	x := NewLogs(defaultMaxBytes)
	var seq uint64
	ld := simtest.LogBatch(&seq, simtest.Batch)
	var m plog.ProtoMarshaler
	b.SetBytes(int64(m.LogsSize(ld)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		x.Append(ld)
	}
	simtest.PerItem(b, "record")
}

// pinsForBench returns a started weft_pins extension (no gossip) that
// pins every pinEvery-th of ids (none when pinEvery is 0).
func pinsForBench(b *testing.B, ids []pcommon.TraceID, pinEvery int) *weftpinsextension.Pins {
	b.Helper()
	f := weftpinsextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*weftpinsextension.Config)
	cfg.Gossip.Enabled = false
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(b, err)
	require.NoError(b, ext.Start(context.Background(), componenttest.NewNopHost()))
	b.Cleanup(func() { require.NoError(b, ext.Shutdown(context.Background())) })
	p := ext.(*weftpinsextension.Pins)
	for i := 0; pinEvery > 0 && i < len(ids); i += pinEvery {
		p.Pin(ids[i], time.Now().Add(time.Hour), weftpinsextension.ReasonAlert)
	}
	return p
}

// BenchmarkAppendSpansPins is BenchmarkAppendSpans with a weft_pins
// extension asked at every eviction: none pinned (the cost of the
// question), and 1 % of the spans pinned (moved into the pinned budget,
// which, full, evicts them again).
func BenchmarkAppendSpansPins(b *testing.B) {
	for _, bc := range []struct {
		name     string
		pinEvery int
	}{{"none_pinned", 0}, {"1pct_pinned", 100}} {
		b.Run(bc.name, func(b *testing.B) {
			x := NewSpans(defaultMaxBytes)
			var seq uint64
			td := simtest.SpanBatch(&seq, simtest.Batch)
			pins := pinsForBench(b, traceIDsOf(td), bc.pinEvery)
			x.SetPins(pins, defaultMaxBytes/4, time.Now)
			var m ptrace.ProtoMarshaler
			b.SetBytes(int64(m.TracesSize(td)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				x.Append(td)
			}
			simtest.PerItem(b, "span")
		})
	}
}

// BenchmarkAppendLogsPins is the same for log records.
func BenchmarkAppendLogsPins(b *testing.B) {
	for _, bc := range []struct {
		name     string
		pinEvery int
	}{{"none_pinned", 0}, {"1pct_pinned", 100}} {
		b.Run(bc.name, func(b *testing.B) {
			x := NewLogs(defaultMaxBytes)
			var seq uint64
			ld := simtest.LogBatch(&seq, simtest.Batch)
			recs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
			ids := make([]pcommon.TraceID, recs.Len())
			for i := range ids {
				ids[i] = recs.At(i).TraceID()
			}
			pins := pinsForBench(b, ids, bc.pinEvery)
			x.SetPins(pins, defaultMaxBytes/4, time.Now)
			var m plog.ProtoMarshaler
			b.SetBytes(int64(m.LogsSize(ld)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				x.Append(ld)
			}
			simtest.PerItem(b, "record")
		})
	}
}
