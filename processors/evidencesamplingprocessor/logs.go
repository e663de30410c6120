package evidencesamplingprocessor

import (
	"context"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
)

// logsProcessor is the processor of a logs pipeline.
type logsProcessor struct {
	*core
	next    consumer.Logs
	pinFrom plog.SeverityNumber // Unspecified: no log record pins
}

func newLogsProcessor(set processor.Settings, cfg *Config, next consumer.Logs) (*logsProcessor, error) {
	sev, _ := cfg.pinSeverity()
	p := &logsProcessor{core: newCore(set, cfg, signalLogs, cfg.MaxBufferedLogRecords, cfg.MaxBufferedLogBytes), next: next, pinFrom: sev}
	p.core.send = p.send
	return p, nil
}

// process pins the traces of error log records, then passes on the log
// records without trace ID, those sampled and those pinned, and moves the
// others, grouped by trace, into the decision buffer.
func (p *logsProcessor) process(_ context.Context, ld plog.Logs) (plog.Logs, error) {
	rls := ld.ResourceLogs()
	if p.pins != nil && p.pinFrom != plog.SeverityNumberUnspecified {
		for i := range rls.Len() {
			sls := rls.At(i).ScopeLogs()
			for j := range sls.Len() {
				lrs := sls.At(j).LogRecords()
				for k := range lrs.Len() {
					if lr := lrs.At(k); lr.SeverityNumber() >= p.pinFrom {
						p.pin(lr.TraceID())
					}
				}
			}
		}
	}
	now := p.now().UnixNano()
	var keep []chunk
	var sampled, pinned, noID int64
	for i := range rls.Len() {
		rl := rls.At(i)
		sls := rl.ScopeLogs()
		for j := range sls.Len() {
			sl := sls.At(j)
			var waiting plog.LogRecordSlice
			hasWaiting := false
			sl.LogRecords().RemoveIf(func(lr plog.LogRecord) bool {
				id := lr.TraceID()
				switch {
				case id.IsEmpty():
					noID++
					return false
				case p.pinned(id):
					pinned++
					return false
				case p.sampler.log(id):
					sampled++
					return false
				}
				if !hasWaiting {
					waiting, hasWaiting = plog.NewLogRecordSlice(), true
				}
				lr.MoveTo(waiting.AppendEmpty())
				return true
			})
			if hasWaiting {
				keep = append(keep, p.waitLogs(rl, sl, waiting, now)...)
			}
		}
	}
	p.counts.kept[keptSampled].Add(sampled)
	p.counts.kept[keptPinned].Add(pinned)
	p.counts.kept[keptNoTraceID].Add(noID)
	rls.RemoveIf(func(rl plog.ResourceLogs) bool {
		rl.ScopeLogs().RemoveIf(func(sl plog.ScopeLogs) bool { return sl.LogRecords().Len() == 0 })
		return rl.ScopeLogs().Len() == 0
	})
	if len(keep) > 0 {
		p.decode(ld, keep)
	}
	if rls.Len() == 0 {
		return ld, processorhelper.ErrSkipProcessingData
	}
	return ld, nil
}

// waitLogs encodes the waiting log records of one resource and scope:
// the resource and scope once (the header), the records of each trace
// apart (its chunk), and puts them into the buffer. It returns the chunks
// of traces decided early that are kept.
func (p *logsProcessor) waitLogs(rl plog.ResourceLogs, sl plog.ScopeLogs, waiting plog.LogRecordSlice, now int64) []chunk {
	var m plog.ProtoMarshaler
	h := plog.NewLogs()
	hrl := h.ResourceLogs().AppendEmpty()
	rl.Resource().CopyTo(hrl.Resource())
	hrl.SetSchemaUrl(rl.SchemaUrl())
	hsl := hrl.ScopeLogs().AppendEmpty()
	sl.Scope().CopyTo(hsl.Scope())
	hsl.SetSchemaUrl(sl.SchemaUrl())
	hb, err := m.MarshalLogs(h)
	if err != nil { // not for data that came in as pdata; kept rather than lost
		waiting.MoveAndAppendTo(sl.LogRecords())
		return nil
	}
	body := plog.NewLogs()
	records := body.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	return chunkByTrace[plog.LogRecordSlice, plog.LogRecord](waiting, records, sl.LogRecords(),
		func() ([]byte, error) { return m.MarshalLogs(body) }, &header{b: hb},
		func(id pcommon.TraceID, c chunk, n int) []chunk { return p.wait(id, c, n, now) })
}

// decode appends the decoded chunks to ld, one resource and scope per
// header.
func (p *logsProcessor) decode(ld plog.Logs, chunks []chunk) {
	var u plog.ProtoUnmarshaler
	dst := map[*header]plog.LogRecordSlice{}
	for _, c := range chunks {
		records, ok := dst[c.hdr]
		if !ok {
			h, err := u.UnmarshalLogs(c.hdr.b)
			if err != nil || h.ResourceLogs().Len() != 1 { // our own encoding; cannot happen
				p.set.Logger.Error("evidence_sampling: decode buffered log records")
				continue
			}
			h.ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())
			rls := ld.ResourceLogs()
			records = rls.At(rls.Len() - 1).ScopeLogs().At(0).LogRecords()
			dst[c.hdr] = records
		}
		b, err := u.UnmarshalLogs(c.body)
		if err != nil || b.ResourceLogs().Len() != 1 {
			p.set.Logger.Error("evidence_sampling: decode buffered log records")
			continue
		}
		b.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().MoveAndAppendTo(records)
	}
}

// send passes decided chunks on to the next consumer.
func (p *logsProcessor) send(ctx context.Context, chunks []chunk) error {
	ld := plog.NewLogs()
	p.decode(ld, chunks)
	return p.next.ConsumeLogs(ctx, ld)
}
