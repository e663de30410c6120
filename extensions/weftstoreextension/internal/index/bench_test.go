package index

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

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
