package evidencesamplingprocessor

import (
	"context"
	"strconv"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
)

// HTTP status attributes: semantic conventions since 1.23, and before.
const (
	attrHTTPResponseStatus = "http.response.status_code"
	attrHTTPStatus         = "http.status_code"
)

// tracesProcessor is the processor of a traces pipeline.
type tracesProcessor struct {
	*core
	next consumer.Traces
}

func newTracesProcessor(set processor.Settings, cfg *Config, next consumer.Traces) (*tracesProcessor, error) {
	p := &tracesProcessor{core: newCore(set, cfg, signalSpans, cfg.MaxBufferedSpans, cfg.MaxBufferedSpanBytes), next: next}
	p.core.send = p.send
	return p, nil
}

// process pins the traces of error spans, then passes on the spans that
// are sampled (th written) or pinned, and moves the others, grouped by
// trace, into the decision buffer. It never blocks on the buffer.
func (p *tracesProcessor) process(_ context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	rss := td.ResourceSpans()
	if p.pins != nil {
		for i := range rss.Len() {
			sss := rss.At(i).ScopeSpans()
			for j := range sss.Len() {
				spans := sss.At(j).Spans()
				for k := range spans.Len() {
					if s := spans.At(k); errorSpan(s) {
						p.pin(s.TraceID())
					}
				}
			}
		}
	}
	now := p.now().UnixNano()
	var keep []chunk
	var sampled, pinned int64
	for i := range rss.Len() {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			ss := sss.At(j)
			var waiting ptrace.SpanSlice
			hasWaiting := false
			ss.Spans().RemoveIf(func(s ptrace.Span) bool {
				id := s.TraceID()
				if p.pinned(id) {
					pinned++ // a conditional keep: th stays as it came
					return false
				}
				ok, ts, rewrite := p.sampler.span(id, s.TraceState().AsRaw())
				if ok {
					if rewrite {
						s.TraceState().FromRaw(ts)
					}
					sampled++
					return false
				}
				if !hasWaiting {
					waiting, hasWaiting = ptrace.NewSpanSlice(), true
				}
				s.MoveTo(waiting.AppendEmpty())
				return true
			})
			if hasWaiting {
				keep = append(keep, p.waitSpans(rs, ss, waiting, now)...)
			}
		}
	}
	p.counts.kept[keptSampled].Add(sampled)
	p.counts.kept[keptPinned].Add(pinned)
	rss.RemoveIf(func(rs ptrace.ResourceSpans) bool {
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool { return ss.Spans().Len() == 0 })
		return rs.ScopeSpans().Len() == 0
	})
	if len(keep) > 0 {
		p.decode(td, keep)
	}
	if rss.Len() == 0 {
		return td, processorhelper.ErrSkipProcessingData
	}
	return td, nil
}

// errorSpan reports whether a span makes its trace evidence: status
// error, or an HTTP status 500 … 599.
func errorSpan(s ptrace.Span) bool {
	if s.Status().Code() == ptrace.StatusCodeError {
		return true
	}
	attrs := s.Attributes()
	for _, k := range [...]string{attrHTTPResponseStatus, attrHTTPStatus} {
		if v, ok := attrs.Get(k); ok {
			code := httpStatus(v)
			return code >= 500 && code <= 599
		}
	}
	return false
}

// httpStatus reads an HTTP status attribute: an int as the conventions
// have it, or a string or double as some instrumentations send it.
func httpStatus(v pcommon.Value) int64 {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeDouble:
		return int64(v.Double())
	case pcommon.ValueTypeStr:
		n, _ := strconv.ParseInt(v.Str(), 10, 64)
		return n
	}
	return 0
}

// waitSpans encodes the waiting spans of one resource and scope: the
// resource and scope once (the header), the spans of each trace apart
// (its chunk), and puts them into the buffer. It returns the chunks of
// traces decided early that are kept.
func (p *tracesProcessor) waitSpans(rs ptrace.ResourceSpans, ss ptrace.ScopeSpans, waiting ptrace.SpanSlice, now int64) []chunk {
	var m ptrace.ProtoMarshaler
	h := ptrace.NewTraces()
	hrs := h.ResourceSpans().AppendEmpty()
	rs.Resource().CopyTo(hrs.Resource())
	hrs.SetSchemaUrl(rs.SchemaUrl())
	hss := hrs.ScopeSpans().AppendEmpty()
	ss.Scope().CopyTo(hss.Scope())
	hss.SetSchemaUrl(ss.SchemaUrl())
	hb, err := m.MarshalTraces(h)
	if err != nil { // not for data that came in as pdata; kept rather than lost
		waiting.MoveAndAppendTo(ss.Spans())
		return nil
	}
	body := ptrace.NewTraces()
	spans := body.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	return chunkByTrace[ptrace.SpanSlice, ptrace.Span](waiting, spans, ss.Spans(),
		func() ([]byte, error) { return m.MarshalTraces(body) }, &header{b: hb},
		func(id pcommon.TraceID, c chunk, n int) []chunk { return p.wait(id, c, n, now) })
}

// decode appends the decoded chunks to td, one resource and scope per
// header.
func (p *tracesProcessor) decode(td ptrace.Traces, chunks []chunk) {
	var u ptrace.ProtoUnmarshaler
	dst := map[*header]ptrace.SpanSlice{}
	for _, c := range chunks {
		spans, ok := dst[c.hdr]
		if !ok {
			h, err := u.UnmarshalTraces(c.hdr.b)
			if err != nil || h.ResourceSpans().Len() != 1 { // our own encoding; cannot happen
				p.set.Logger.Error("evidence_sampling: decode buffered spans")
				continue
			}
			h.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
			rss := td.ResourceSpans()
			spans = rss.At(rss.Len() - 1).ScopeSpans().At(0).Spans()
			dst[c.hdr] = spans
		}
		b, err := u.UnmarshalTraces(c.body)
		if err != nil || b.ResourceSpans().Len() != 1 {
			p.set.Logger.Error("evidence_sampling: decode buffered spans")
			continue
		}
		b.ResourceSpans().At(0).ScopeSpans().At(0).Spans().MoveAndAppendTo(spans)
	}
}

// send passes decided chunks on to the next consumer.
func (p *tracesProcessor) send(ctx context.Context, chunks []chunk) error {
	td := ptrace.NewTraces()
	p.decode(td, chunks)
	return p.next.ConsumeTraces(ctx, td)
}
