package weftstore

import (
	"bytes"
	"sync"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// spanEntry is one stored span: its index fields and its serialized form.
type spanEntry struct {
	traceID pcommon.TraceID
	spanID  pcommon.SpanID
	start   int64 // unix ns
	end     int64 // unix ns
	svc     *svcPostings
	op      *opPostings
	pod     *podPostings // nil when the resource names no pod
	res     *blob
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
// growth stays within ~10% of the charged bytes.
//
// The ring's slots (unsafe.Sizeof of an entry each) are charged when the
// ring grows, for its whole capacity, and never released: the ring does not
// shrink.
const spanEntryOverhead = 6*8 + 160

// spanIndex keeps recent spans within maxBytes.
type spanIndex struct {
	mu       sync.RWMutex
	maxBytes int64
	bytes    int64
	ring     ring[spanEntry]
	byTrace  map[pcommon.TraceID]*seqList
	bySvc    map[string]*svcPostings
	byPod    map[Pod]*podPostings
	errs     seqList // every failing span

	evicted      int64
	evictedBytes int64
	unencodable  int64 // records that failed to serialize (never expected for valid pdata)

	marsh ptrace.ProtoMarshaler
}

func newSpanIndex(maxBytes int64) *spanIndex {
	x := &spanIndex{
		maxBytes: maxBytes,
		byTrace:  make(map[pcommon.TraceID]*seqList),
		bySvc:    make(map[string]*svcPostings),
		byPod:    make(map[Pod]*podPostings),
	}
	return x
}

// append stores every span of td. td is marshaled once and split into
// each span's bytes (see splitOTLP). A span that cannot be serialized is
// counted as unencodable (not expected for valid pdata).
func (x *spanIndex) append(td ptrace.Traces) {
	buf, err := x.marsh.MarshalTraces(td)
	var ws []wireScope
	if err == nil {
		ws, err = splitOTLP(buf, nil)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		attrs := rs.Resource().Attributes()
		service := attrString(attrs, "service.name")
		if service == "" {
			service = "unknown_service"
		}
		pod := podOf(attrs)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			var w *wireScope
			if err == nil && n < len(ws) && len(ws[n].recs) == spans.Len() {
				w = &ws[n]
			}
			n++
			if spans.Len() == 0 {
				continue
			}
			if w == nil {
				x.unencodable += int64(spans.Len())
				continue
			}
			res := newBlob(w)
			for k := 0; k < spans.Len(); k++ {
				x.insert(spans.At(k), service, pod, res, bytes.Clone(w.recs[k]))
			}
		}
	}
	x.evictOverflow()
}

func (x *spanIndex) insert(sp ptrace.Span, service string, pod Pod, res *blob, data []byte) {
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
	tl := x.byTrace[tid]
	if tl == nil {
		tl = &seqList{}
		x.byTrace[tid] = tl
	}
	tl.push(seq)
	if res.refs == 0 {
		x.bytes += res.size()
	}
	res.refs++
	size := len(data) + spanEntryOverhead
	x.bytes += int64(size)
	x.pushEntry(spanEntry{
		traceID: tid, spanID: sp.SpanID(),
		start: int64(sp.StartTimestamp()), end: int64(sp.EndTimestamp()),
		svc: svc, op: op, pod: pp, res: res, data: data, size: int32(size), isErr: isErr,
	})
}

// evictOverflow removes the oldest spans until the index fits its budget.
func (x *spanIndex) evictOverflow() {
	for x.bytes > x.maxBytes {
		e, seq, ok := x.ring.oldest()
		if !ok {
			return
		}
		if x.byTrace[e.traceID].popFront(seq) {
			delete(x.byTrace, e.traceID)
		}
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
		e.res.refs--
		if e.res.refs == 0 {
			x.bytes -= e.res.size()
		}
		x.bytes -= int64(e.size)
		x.evicted++
		x.evictedBytes += int64(e.size)
		x.ring.pop()
	}
}

// decodeSpan rebuilds the span of e with its resource and scope.
func decodeSpan(e *spanEntry) (ptrace.Traces, error) {
	var u ptrace.ProtoUnmarshaler
	return u.UnmarshalTraces(e.res.wrap(e.data))
}

func (e *spanEntry) summary() Span {
	s := Span{
		TraceID: e.traceID, SpanID: e.spanID,
		Service: e.svc.name, Operation: e.op.name,
		Start: time.Unix(0, e.start).UTC(), End: time.Unix(0, e.end).UTC(),
		Error: e.isErr,
	}
	if e.pod != nil {
		s.Pod = e.pod.pod
	}
	return s
}

// pushEntry adds e to the ring, charging the ring's growth.
func (x *spanIndex) pushEntry(e spanEntry) {
	if _, grown := x.ring.push(e); grown > 0 {
		x.bytes += int64(grown) * int64(unsafe.Sizeof(e))
	}
}
