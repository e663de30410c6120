package index

import (
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Span is a stored span as weftstoreextension.Span (its public form) describes it,
// with its times in unix nanoseconds; Data is set where a function says so.
type Span struct {
	TraceID            pcommon.TraceID
	SpanID             pcommon.SpanID
	Service, Operation string
	Pod                Pod
	Start, End         int64
	Error              bool
	Data               ptrace.Traces
}

// spanEntry is one stored span: its index fields and its serialized form.
type spanEntry struct {
	traceID pcommon.TraceID
	spanID  pcommon.SpanID
	start   int64 // unix ns
	end     int64 // unix ns
	svc     *svcPostings
	op      *opPostings
	pod     *podPostings // nil when the resource names no pod
	res     *resource
	data    []byte // the serialized Span message
	size    int32  // bytes charged for this entry
	isErr   bool
}

type svcPostings struct {
	name string
	all  seqList
	errs seqList
	ops  map[string]*opPostings
}

type opPostings struct {
	name string
	seqs seqList
}

type podPostings struct {
	pod  Pod
	all  seqList
	errs seqList
}

// spanEntryOverhead is what one span costs besides its serialized bytes:
// its ring slot and its sequence number on the trace, service, operation and
// pod lists (and the error lists when it failed), plus a share of the map
// entries of those keys and of allocator rounding. The constant is
// calibrated by TestEvictionBounds, which measures the heap after GC: real
// growth stays within ~10% of the charged bytes. (The ring's slots
// themselves are charged by core.push, for the ring's whole capacity.)
const spanEntryOverhead = 6*8 + 160

// Spans keeps recent spans within a byte budget. Its methods are safe for
// concurrent use.
type Spans struct {
	core[spanEntry]
	bySvc map[string]*svcPostings
	byPod map[Pod]*podPostings
	errs  seqList // every failing span

	marsh ptrace.ProtoMarshaler
}

// NewSpans returns an empty span index of maxBytes.
func NewSpans(maxBytes int64) *Spans {
	x := &Spans{
		core: newCore(maxBytes, func(e *spanEntry) (pcommon.TraceID, *resource, int32) { return e.traceID, e.res, e.size },
			func(e *spanEntry) *[]byte { return &e.data }),
		bySvc: make(map[string]*svcPostings),
		byPod: make(map[Pod]*podPostings),
	}
	return withArenaCleanup(x, x.arena)
}

// Append stores every span of td, evicting the oldest spans beyond the
// budget. td is marshaled once and split into each span's bytes; a span
// that cannot be serialized is counted as unencodable (not expected for
// valid pdata). It does not keep td.
func (x *Spans) Append(td ptrace.Traces) {
	buf, err := x.marsh.MarshalTraces(td)
	x.appendBatch(buf, err, func() {
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			attrs := rss.At(i).Resource().Attributes()
			service := attrString(attrs, "service.name")
			if service == "" {
				service = "unknown_service"
			}
			pod := podOf(attrs)
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				spans := sss.At(j).Spans()
				x.addScope(spans.Len(), func(k int, res *resource, data []byte) {
					x.insert(spans.At(k), service, pod, res, data)
				})
			}
		}
	}, x.unlink)
}

func (x *Spans) insert(sp ptrace.Span, service string, pod Pod, res *resource, data []byte) {
	seq := x.ring.next()
	svc := x.bySvc[service]
	if svc == nil {
		svc = &svcPostings{name: service, ops: make(map[string]*opPostings)}
		x.bySvc[service] = svc
	}
	name := sp.Name()
	op := svc.ops[name]
	if op == nil {
		op = &opPostings{name: name}
		svc.ops[name] = op
	}
	isErr := sp.Status().Code() == ptrace.StatusCodeError
	svc.all.push(seq)
	op.seqs.push(seq)
	if isErr {
		svc.errs.push(seq)
		x.errs.push(seq)
	}
	var pp *podPostings
	if pod.Name != "" {
		pp = x.byPod[pod]
		if pp == nil {
			pp = &podPostings{pod: pod}
			x.byPod[pod] = pp
		}
		pp.all.push(seq)
		if isErr {
			pp.errs.push(seq)
		}
	}
	tid := sp.TraceID()
	x.addTrace(tid, seq)
	size := len(data) + spanEntryOverhead
	x.charge(res, size)
	x.push(spanEntry{
		traceID: tid, spanID: sp.SpanID(),
		start: int64(sp.StartTimestamp()), end: int64(sp.EndTimestamp()),
		svc: svc, op: op, pod: pp, res: res, data: data, size: int32(size), isErr: isErr,
	})
}

// unlink takes the oldest span e, numbered seq, off every list it is on.
func (x *Spans) unlink(e *spanEntry, seq uint64) (*resource, int32) {
	x.removeTrace(e.traceID, seq)
	e.op.seqs.popFront(seq)
	if e.op.seqs.len() == 0 {
		delete(e.svc.ops, e.op.name)
	}
	if e.isErr {
		e.svc.errs.popFront(seq)
		x.errs.popFront(seq)
	}
	if e.svc.all.popFront(seq) {
		delete(x.bySvc, e.svc.name)
	}
	if e.pod != nil {
		if e.isErr {
			e.pod.errs.popFront(seq)
		}
		if e.pod.all.popFront(seq) {
			delete(x.byPod, e.pod.pod)
		}
	}
	return e.res, e.size
}

// decodeSpan rebuilds the span of e with its resource and scope.
func decodeSpan(e *spanEntry) (ptrace.Traces, error) {
	var u ptrace.ProtoUnmarshaler
	return u.UnmarshalTraces(e.res.Wrap(e.data))
}

func (e *spanEntry) summary() Span {
	s := Span{
		TraceID: e.traceID, SpanID: e.spanID,
		Service: e.svc.name, Operation: e.op.name,
		Start: e.start, End: e.end,
		Error: e.isErr,
	}
	if e.pod != nil {
		s.Pod = e.pod.pod
	}
	return s
}

// Trace returns the stored spans of a trace, with Data, newest first by
// arrival, each converted by conv (called with the index locked).
func Trace[S any](x *Spans, traceID pcommon.TraceID, conv func(Span) S) ([]S, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	tl := x.byTrace[traceID]
	var out []S
	if tl != nil {
		out = make([]S, 0, tl.len())
	}
	var err error
	add := func(e *spanEntry) bool {
		sp := e.summary()
		if sp.Data, err = decodeSpan(e); err != nil {
			err = fmt.Errorf("weft_store: decode span: %w", err)
			return false
		}
		out = append(out, conv(sp))
		return true
	}
	if tl != nil {
		tl.newestFirst(func(seq uint64) bool { return add(x.ring.get(seq)) })
	}
	if err == nil {
		// Pinned spans arrived before every span still in the ring.
		x.pinnedOf(traceID, func(e *spanEntry, _ uint64) bool { return add(e) })
	}
	return out, err
}

// TraceSelector selects failing traces, as weftstoreextension.TraceSelector (its
// public form) describes it.
type TraceSelector struct {
	Service    string
	Pod        Pod
	Start, End time.Time
	Limit      int
}

// FailingTraces returns the most recent failing traces of sel, newest
// first by the end of their newest failing span, each trace once, as that
// span's summary (no Data) converted by conv (called with the index
// locked). A failing span counts when it matches the selector and its end
// lies in [Start, End].
func FailingTraces[F any](x *Spans, sel TraceSelector, conv func(Span) F) []F {
	limit := limitOr(sel.Limit, 20)
	x.mu.RLock()
	defer x.mu.RUnlock()
	list := &x.errs
	switch {
	case sel.Pod.Name != "":
		list = &seqList{} // none in the ring; pinned spans may still match
		if pp := x.byPod[sel.Pod]; pp != nil {
			list = &pp.errs
		}
	case sel.Service != "":
		list = &seqList{}
		if svc := x.bySvc[sel.Service]; svc != nil {
			list = &svc.errs
		}
	}
	var cands []candidate[spanEntry]
	list.newestFirst(func(seq uint64) bool {
		e := x.ring.get(seq)
		if (sel.Service == "" || e.svc.name == sel.Service) && inWindow(e.end, sel.Start, sel.End) {
			cands = append(cands, candidate[spanEntry]{t: e.end, seq: seq, e: e})
		}
		return true
	})
	x.allPinned(func(e *spanEntry, seq uint64) bool {
		if e.isErr && (sel.Service == "" || e.svc.name == sel.Service) &&
			(sel.Pod.Name == "" || e.pod != nil && e.pod.pod == sel.Pod) && inWindow(e.end, sel.Start, sel.End) {
			cands = append(cands, candidate[spanEntry]{t: e.end, seq: seq, e: e})
		}
		return true
	})
	sortNewestFirst(cands)
	seen := make(map[pcommon.TraceID]struct{})
	var out []F
	for _, c := range cands {
		e := c.e
		if _, dup := seen[e.traceID]; dup {
			continue
		}
		seen[e.traceID] = struct{}{}
		out = append(out, conv(e.summary()))
		if len(out) == limit {
			break
		}
	}
	return out
}

// SpanQuery is a Jaeger-style trace search, as weftstoreextension.SpanQuery (its
// public form, converted) describes it.
type SpanQuery struct {
	Service, Operation       string
	Tags                     map[string]string
	MinDuration, MaxDuration time.Duration
	Start, End               time.Time
	Limit                    int
}

// FindTraces returns the IDs of traces with at least one span matching q,
// newest first by the start of their newest matching span. Cheap filters
// run over the chosen index list; tags are checked (decoding the span) in
// that order only until Limit traces are found.
func (x *Spans) FindTraces(q SpanQuery) ([]pcommon.TraceID, error) {
	limit := limitOr(q.Limit, 20)
	x.mu.RLock()
	defer x.mu.RUnlock()
	var cands []candidate[spanEntry]
	var visitEntry func(e *spanEntry, seq uint64) bool
	visit := func(seq uint64) bool { return visitEntry(x.ring.get(seq), seq) }
	visitEntry = func(e *spanEntry, seq uint64) bool {
		if q.Service != "" && e.svc.name != q.Service || q.Operation != "" && e.op.name != q.Operation {
			return true
		}
		if !inWindow(e.start, q.Start, q.End) {
			return true
		}
		d := time.Duration(e.end - e.start)
		if d < q.MinDuration || q.MaxDuration > 0 && d > q.MaxDuration {
			return true
		}
		cands = append(cands, candidate[spanEntry]{t: e.start, seq: seq, e: e})
		return true
	}
	switch {
	case q.Service != "" && q.Operation != "":
		if svc := x.bySvc[q.Service]; svc != nil {
			if op := svc.ops[q.Operation]; op != nil {
				op.seqs.newestFirst(visit)
			}
		}
	case q.Service != "":
		if svc := x.bySvc[q.Service]; svc != nil {
			svc.all.newestFirst(visit)
		}
	default:
		x.ring.newestFirst(visit)
	}
	x.allPinned(visitEntry)
	sortNewestFirst(cands)
	seen := make(map[pcommon.TraceID]struct{})
	var out []pcommon.TraceID
	for _, c := range cands {
		e := c.e
		if _, dup := seen[e.traceID]; dup {
			continue
		}
		if len(q.Tags) > 0 {
			ok, err := tagsMatch(e, q.Tags)
			if err != nil {
				return out, err
			}
			if !ok {
				continue
			}
		}
		seen[e.traceID] = struct{}{}
		out = append(out, e.traceID)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

func tagsMatch(e *spanEntry, tags map[string]string) (bool, error) {
	td, err := decodeSpan(e)
	if err != nil {
		return false, fmt.Errorf("weft_store: decode span: %w", err)
	}
	rs := td.ResourceSpans().At(0)
	sp := rs.ScopeSpans().At(0).Spans().At(0)
	for k, want := range tags {
		if k == "error" {
			if (want == "true") != e.isErr {
				return false, nil
			}
			continue
		}
		v, ok := sp.Attributes().Get(k)
		if !ok {
			v, ok = rs.Resource().Attributes().Get(k)
		}
		if !ok || v.AsString() != want {
			return false, nil
		}
	}
	return true, nil
}

// Services returns the services that have stored spans, sorted.
func (x *Spans) Services() []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]string, 0, len(x.bySvc))
	for name := range x.bySvc {
		out = append(out, name)
	}
	x.allPinned(func(e *spanEntry, _ uint64) bool {
		if x.bySvc[e.svc.name] == nil {
			out = append(out, e.svc.name)
		}
		return true
	})
	slices.Sort(out)
	return slices.Compact(out)
}

// Operations returns the span names of a service's stored spans, sorted.
func (x *Spans) Operations(service string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []string
	if svc := x.bySvc[service]; svc != nil {
		out = make([]string, 0, len(svc.ops))
		for name := range svc.ops {
			out = append(out, name)
		}
	}
	x.allPinned(func(e *spanEntry, _ uint64) bool {
		if e.svc.name == service {
			out = append(out, e.op.name)
		}
		return true
	})
	slices.Sort(out)
	return slices.Compact(out)
}
