package tracecontextprocessor

import (
	"context"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// logsProcessor fills in trace context on log records that have none,
// and the severity of records without one.
type logsProcessor struct {
	ex       *extractor
	body     bool
	attrs    []string
	severity bool
}

func newLogsProcessor(cfg *Config) *logsProcessor {
	return &logsProcessor{ex: newExtractor(cfg.Fields), body: cfg.Body, attrs: cfg.Attributes, severity: cfg.Severity}
}

func (p *logsProcessor) processLogs(_ context.Context, ld plog.Logs) (plog.Logs, error) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				p.apply(lr)
				if p.severity {
					p.applySeverity(lr)
				}
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

// applySeverity sets the severity of a record whose SeverityNumber is
// unset: from its SeverityText if that names a level (the text is kept),
// else from a level key in the body, then in the attributes (number and
// text). A record with a SeverityNumber is left alone. It reports whether
// it set one.
func (p *logsProcessor) applySeverity(lr plog.LogRecord) bool {
	if lr.SeverityNumber() != plog.SeverityNumberUnspecified {
		return false
	}
	if t := lr.SeverityText(); t != "" {
		n, ok := severityOf(t)
		if ok {
			lr.SetSeverityNumber(n)
		}
		return ok
	}
	n, text, found := plog.SeverityNumber(0), "", false
	if p.body {
		n, text, found = severityFromValue(lr.Body())
	}
	for _, name := range p.attrs {
		if found {
			break
		}
		if v, ok := lr.Attributes().Get(name); ok {
			n, text, found = severityFromValue(v)
		}
	}
	if !found {
		return false
	}
	lr.SetSeverityNumber(n)
	lr.SetSeverityText(text)
	return true
}
