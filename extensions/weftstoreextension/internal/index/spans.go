package index

import (
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/otlpwire"
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

// spanEntry is one stored span in the ring: its index fields, the
// location of its serialized form in the arena and handles (no pointers:
// the ring lives outside the heap).
type spanEntry struct {
	traceID      pcommon.TraceID
	spanID       pcommon.SpanID
	start        int64  // unix ns
	end          int64  // unix ns
	loc          uint64 // its bytes: arena.bytes(loc, n)
	n            uint32
	res          handle // core.res
	svc, op, pod handle // Spans.svcs, ops, pods; pod 0: the resource names no pod
	size         int32  // bytes charged for this entry
	isErr        bool
}

// spanView is a span with its handles resolved and its bytes: what
// queries read, and what the pinned budget keeps (with its own copy of
// the bytes).
type spanView struct {
	e    spanEntry
	svc  *svcPostings
	op   *opPostings
	pod  *podPostings // nil when the resource names no pod
	res  *resource
	data []byte // the serialized Span message
}

type svcPostings struct {
	name string
	h    handle
	all  seqList
	errs seqList
	ops  map[string]*opPostings
}

type opPostings struct {
	name string
	h    handle
	seqs seqList
}

type podPostings struct {
	pod  Pod
	h    handle
	all  seqList
	errs seqList
}

// spanEntryOverhead is what one span costs besides its serialized bytes:
// its sequence number on the trace, service, operation and pod lists (and
// the error lists when it failed), plus a share of the map entries of
// those keys and of allocator rounding. The constant is calibrated by
// TestEvictionBounds, which measures the heap after GC: real growth stays
// within ~10% of the charged bytes. (The ring's slots are charged by
// core.push, for the ring's whole capacity.)
const spanEntryOverhead = 6*8 + 160

// Spans keeps recent spans within a byte budget. Its methods are safe for
// concurrent use.
type Spans struct {
	core[spanEntry, spanView]
	bySvc map[string]*svcPostings
	byPod map[Pod]*podPostings
	errs  seqList // every failing span
	svcs  table[svcPostings]
	ops   table[opPostings]
	pods  table[podPostings]

	marsh ptrace.ProtoMarshaler
}

// NewSpans returns an empty span index of maxBytes.
func NewSpans(maxBytes int64) *Spans {
	x := &Spans{
		bySvc: make(map[string]*svcPostings),
		byPod: make(map[Pod]*podPostings),
	}
	x.core = newCore(maxBytes,
		func(e *spanEntry) (pcommon.TraceID, handle, int32) { return e.traceID, e.res, e.size },
		x.view,
		func(v *spanView) (pcommon.TraceID, *resource, int32) { return v.e.traceID, v.res, v.e.size },
		func(v *spanView) *[]byte { return &v.data })
	return withArenaCleanup(x, x.arena)
}

// view resolves the ring entry e (with the index locked).
func (x *Spans) view(e *spanEntry) spanView {
	return spanView{e: *e, svc: x.svcs.get(e.svc), op: x.ops.get(e.op), pod: x.pods.get(e.pod),
		res: x.res.get(e.res), data: x.arena.bytes(e.loc, e.n)}
}

// Append stores every span of td, evicting the oldest spans beyond the
// budget. Each span is encoded into the arena, its resource and scope
// once per scope (see core); a span whose scope cannot be serialized is
// counted as unencodable (not expected for valid pdata). It does not keep
// td.
func (x *Spans) Append(td ptrace.Traces) {
	buf, err := x.marsh.MarshalTraces(skeletonTraces(td))
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
				x.addScope(spans.Len(), func(e *otlpwire.Encoder, k int) []byte {
					return e.Span(spans.At(k))
				}, func(k int, res *resource, loc uint64, n uint32) {
					x.insert(spans.At(k), service, pod, res, loc, n)
				})
			}
		}
	}, x.unlink)
}

func (x *Spans) insert(sp ptrace.Span, service string, pod Pod, res *resource, loc uint64, n uint32) {
	seq := x.ring.next()
	svc := x.bySvc[service]
	if svc == nil {
		svc = &svcPostings{name: service, ops: make(map[string]*opPostings)}
		svc.h = x.svcs.add(svc)
		x.bySvc[service] = svc
	}
	name := sp.Name()
	op := svc.ops[name]
	if op == nil {
		op = &opPostings{name: name}
		op.h = x.ops.add(op)
		svc.ops[name] = op
	}
	isErr := sp.Status().Code() == ptrace.StatusCodeError
	svc.all.push(seq)
	op.seqs.push(seq)
	if isErr {
		svc.errs.push(seq)
		x.errs.push(seq)
	}
	var ph handle
	if pod.Name != "" {
		pp := x.byPod[pod]
		if pp == nil {
			pp = &podPostings{pod: pod}
			pp.h = x.pods.add(pp)
			x.byPod[pod] = pp
		}
		pp.all.push(seq)
		if isErr {
			pp.errs.push(seq)
		}
		ph = pp.h
	}
	tid := sp.TraceID()
	x.addTrace(tid, seq)
	size := int(n) + spanEntryOverhead
	x.charge(res, size)
	x.push(spanEntry{
		traceID: tid, spanID: sp.SpanID(),
		start: int64(sp.StartTimestamp()), end: int64(sp.EndTimestamp()),
		loc: loc, n: n, res: res.h, svc: svc.h, op: op.h, pod: ph, size: int32(size), isErr: isErr,
	})
}

// unlink takes the oldest span e, numbered seq, off every list it is on,
// freeing the handles of the lists it leaves empty.
func (x *Spans) unlink(e *spanEntry, seq uint64) {
	x.removeTrace(e.traceID, seq)
	svc, op := x.svcs.get(e.svc), x.ops.get(e.op)
	op.seqs.popFront(seq)
	if op.seqs.len() == 0 {
		delete(svc.ops, op.name)
		x.ops.remove(op.h)
	}
	if e.isErr {
		svc.errs.popFront(seq)
		x.errs.popFront(seq)
	}
	if svc.all.popFront(seq) {
		delete(x.bySvc, svc.name)
		x.svcs.remove(svc.h)
	}
	if pp := x.pods.get(e.pod); pp != nil {
		if e.isErr {
			pp.errs.popFront(seq)
		}
		if pp.all.popFront(seq) {
			delete(x.byPod, pp.pod)
			x.pods.remove(pp.h)
		}
	}
}

// decodeSpan rebuilds the span of v with its resource and scope.
func decodeSpan(v *spanView) (ptrace.Traces, error) {
	var u ptrace.ProtoUnmarshaler
	return u.UnmarshalTraces(v.res.Wrap(v.data))
}

func (v *spanView) summary() Span {
	s := Span{
		TraceID: v.e.traceID, SpanID: v.e.spanID,
		Service: v.svc.name, Operation: v.op.name,
		Start: v.e.start, End: v.e.end,
		Error: v.e.isErr,
	}
	if v.pod != nil {
		s.Pod = v.pod.pod
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
	add := func(v *spanView) bool {
		sp := v.summary()
		if sp.Data, err = decodeSpan(v); err != nil {
			err = fmt.Errorf("weft_store: decode span: %w", err)
			return false
		}
		out = append(out, conv(sp))
		return true
	}
	if tl != nil {
		tl.newestFirst(func(seq uint64) bool {
			v := x.view(x.ring.get(seq))
			return add(&v)
		})
	}
	if err == nil {
		// Pinned spans arrived before every span still in the ring.
		x.pinnedOf(traceID, func(v *spanView, _ uint64) bool { return add(v) })
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
	var cands []candidate[spanView]
	list.newestFirst(func(seq uint64) bool {
		e := x.ring.get(seq)
		if (sel.Service == "" || x.svcs.get(e.svc).name == sel.Service) && inWindow(e.end, sel.Start, sel.End) {
			cands = append(cands, candidate[spanView]{t: e.end, seq: seq, v: x.view(e)})
		}
		return true
	})
	x.allPinned(func(v *spanView, seq uint64) bool {
		if v.e.isErr && (sel.Service == "" || v.svc.name == sel.Service) &&
			(sel.Pod.Name == "" || v.pod != nil && v.pod.pod == sel.Pod) && inWindow(v.e.end, sel.Start, sel.End) {
			cands = append(cands, candidate[spanView]{t: v.e.end, seq: seq, v: *v})
		}
		return true
	})
	sortNewestFirst(cands)
	seen := make(map[pcommon.TraceID]struct{})
	var out []F
	for i := range cands {
		v := &cands[i].v
		if _, dup := seen[v.e.traceID]; dup {
			continue
		}
		seen[v.e.traceID] = struct{}{}
		out = append(out, conv(v.summary()))
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
	var cands []candidate[spanView]
	visitView := func(v *spanView, seq uint64) bool {
		if q.Service != "" && v.svc.name != q.Service || q.Operation != "" && v.op.name != q.Operation {
			return true
		}
		if !inWindow(v.e.start, q.Start, q.End) {
			return true
		}
		d := time.Duration(v.e.end - v.e.start)
		if d < q.MinDuration || q.MaxDuration > 0 && d > q.MaxDuration {
			return true
		}
		cands = append(cands, candidate[spanView]{t: v.e.start, seq: seq, v: *v})
		return true
	}
	visit := func(seq uint64) bool {
		v := x.view(x.ring.get(seq))
		return visitView(&v, seq)
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
	x.allPinned(visitView)
	sortNewestFirst(cands)
	seen := make(map[pcommon.TraceID]struct{})
	var out []pcommon.TraceID
	for i := range cands {
		v := &cands[i].v
		if _, dup := seen[v.e.traceID]; dup {
			continue
		}
		if len(q.Tags) > 0 {
			ok, err := tagsMatch(v, q.Tags)
			if err != nil {
				return out, err
			}
			if !ok {
				continue
			}
		}
		seen[v.e.traceID] = struct{}{}
		out = append(out, v.e.traceID)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

func tagsMatch(sv *spanView, tags map[string]string) (bool, error) {
	td, err := decodeSpan(sv)
	if err != nil {
		return false, fmt.Errorf("weft_store: decode span: %w", err)
	}
	rs := td.ResourceSpans().At(0)
	sp := rs.ScopeSpans().At(0).Spans().At(0)
	for k, want := range tags {
		if k == "error" {
			if (want == "true") != sv.e.isErr {
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
	x.allPinned(func(v *spanView, _ uint64) bool {
		if x.bySvc[v.svc.name] == nil {
			out = append(out, v.svc.name)
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
	x.allPinned(func(v *spanView, _ uint64) bool {
		if v.svc.name == service {
			out = append(out, v.op.name)
		}
		return true
	})
	slices.Sort(out)
	return slices.Compact(out)
}
