package tracecontextprocessor

import (
	"context"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// logsProcessor fills in trace context on log records that have none.
type logsProcessor struct {
	ex    *extractor
	body  bool
	attrs []string
}

func newLogsProcessor(cfg *Config) *logsProcessor {
	return &logsProcessor{ex: newExtractor(cfg.Fields), body: cfg.Body, attrs: cfg.Attributes}
}

func (p *logsProcessor) processLogs(_ context.Context, ld plog.Logs) (plog.Logs, error) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				p.apply(lrs.At(k))
			}
		}
	}
	return ld, nil
}

// apply sets the trace ID, and the span ID and flags when known, on a
// record without a trace ID. A record that already has one is left alone.
// It reports whether it set an ID.
func (p *logsProcessor) apply(lr plog.LogRecord) bool {
	if !lr.TraceID().IsEmpty() {
		return false
	}
	var id ids
	found := p.body && p.ex.extractValue(lr.Body(), &id)
	for _, name := range p.attrs {
		if found {
			break
		}
		if v, ok := lr.Attributes().Get(name); ok {
			found = p.ex.extractValue(v, &id)
		}
	}
	if !found {
		return false
	}
	lr.SetTraceID(pcommon.TraceID(id.trace))
	if id.hasSpan {
		lr.SetSpanID(pcommon.SpanID(id.span))
	}
	if id.hasFlags {
		lr.SetFlags(plog.LogRecordFlags(id.flags))
	}
	return true
}
