package index

import (
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/otlpwire"
)

// Log is a stored log record as weftstoreextension.LogRecord (its public form)
// describes it, with its time in unix nanoseconds.
type Log struct {
	Time               int64
	TraceID            pcommon.TraceID
	SpanID             pcommon.SpanID
	Pod                Pod
	Container, Service string
	Severity           plog.SeverityNumber
	Body               string
	Data               plog.Logs
}

// logEntry is one stored log record in the ring: its index fields, the
// location of its serialized form in the arena and handles (no pointers:
// the ring lives outside the heap).
type logEntry struct {
	traceID   pcommon.TraceID
	spanID    pcommon.SpanID
	time      int64 // unix ns: the record's timestamp, else its observed timestamp
	loc       uint64
	n         uint32
	severity  plog.SeverityNumber
	res       handle // core.res
	pod       handle // Logs.pods; 0: the resource names no pod
	svc       handle // Logs.svcs; 0: the resource names no service
	container handle // Logs.names; 0: none
	size      int32
}

// logView is a record with its handles resolved and its bytes (see
// spanView).
type logView struct {
	e         logEntry
	pod       *logPodPostings
	svc       *namedPostings
	container string
	res       *resource
	data      []byte // the serialized LogRecord message
}

type namedPostings struct {
	name string
	h    handle
	seqs seqList
}

// nameRef is a name the ring's entries refer to, with how many do.
type nameRef struct {
	name string
	h    handle
	refs int
}

type logPodPostings struct {
	pod  Pod
	h    handle
	seqs seqList
}

// logEntryOverhead is what one record costs besides its serialized bytes:
// its sequence number on the trace, pod and service lists, and a share of
// those maps' entries and of allocator rounding; calibrated by
// TestEvictionBounds like spanEntryOverhead.
const logEntryOverhead = 3*8 + 144

// Logs keeps recent log records within a byte budget. Its methods are safe
// for concurrent use.
type Logs struct {
	core[logEntry, logView]
	byPod map[Pod]*logPodPostings
	bySvc map[string]*namedPostings
	pods  table[logPodPostings]
	svcs  table[namedPostings]
	// Container names, by name, counted by the entries that use them.
	byName map[string]*nameRef
	names  table[nameRef]

	marsh plog.ProtoMarshaler
}

// NewLogs returns an empty log index of maxBytes.
func NewLogs(maxBytes int64) *Logs {
	x := &Logs{
		byPod:  make(map[Pod]*logPodPostings),
		bySvc:  make(map[string]*namedPostings),
		byName: make(map[string]*nameRef),
	}
	x.core = newCore(maxBytes,
		func(e *logEntry) (pcommon.TraceID, handle, int32) { return e.traceID, e.res, e.size },
		x.view,
		func(v *logView) (pcommon.TraceID, *resource, int32) { return v.e.traceID, v.res, v.e.size },
		func(v *logView) *[]byte { return &v.data })
	return withArenaCleanup(x, x.arena)
}

// view resolves the ring entry e (with the index locked).
func (x *Logs) view(e *logEntry) logView {
	v := logView{e: *e, pod: x.pods.get(e.pod), svc: x.svcs.get(e.svc), res: x.res.get(e.res), data: x.arena.bytes(e.loc, e.n)}
	if c := x.names.get(e.container); c != nil {
		v.container = c.name
	}
	return v
}

// Append stores every record of ld, like Spans.Append.
func (x *Logs) Append(ld plog.Logs) {
	buf, err := x.marsh.MarshalLogs(skeletonLogs(ld))
	x.appendBatch(buf, err, func() {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			attrs := rls.At(i).Resource().Attributes()
			service := attrString(attrs, "service.name")
			pod := podOf(attrs)
			container := attrString(attrs, "k8s.container.name")
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				recs := sls.At(j).LogRecords()
				x.addScope(recs.Len(), func(e *otlpwire.Encoder, k int) []byte {
					return e.LogRecord(recs.At(k))
				}, func(k int, res *resource, loc uint64, n uint32) {
					x.insert(recs.At(k), service, pod, container, res, loc, n)
				})
			}
		}
	}, x.unlink)
}

// named returns the postings of name in m, created (with a handle in t)
// if there is none.
func named(m map[string]*namedPostings, t *table[namedPostings], name string) *namedPostings {
	p := m[name]
	if p == nil {
		p = &namedPostings{name: name}
		p.h = t.add(p)
		m[name] = p
	}
	return p
}

func (x *Logs) insert(lr plog.LogRecord, service string, pod Pod, container string, res *resource, loc uint64, n uint32) {
	seq := x.ring.next()
	e := logEntry{
		traceID: lr.TraceID(), spanID: lr.SpanID(),
		time: int64(lr.Timestamp()), severity: lr.SeverityNumber(),
		res: res.h, loc: loc, n: n,
	}
	if e.time == 0 {
		e.time = int64(lr.ObservedTimestamp())
	}
	if !e.traceID.IsEmpty() {
		x.addTrace(e.traceID, seq)
	}
	if pod.Name != "" {
		pp := x.byPod[pod]
		if pp == nil {
			pp = &logPodPostings{pod: pod}
			pp.h = x.pods.add(pp)
			x.byPod[pod] = pp
		}
		pp.seqs.push(seq)
		e.pod = pp.h
	}
	if service != "" {
		sp := named(x.bySvc, &x.svcs, service)
		sp.seqs.push(seq)
		e.svc = sp.h
	}
	if container != "" {
		cp := x.byName[container]
		if cp == nil {
			cp = &nameRef{name: container}
			cp.h = x.names.add(cp)
			x.byName[container] = cp
		}
		cp.refs++
		e.container = cp.h
	}
	size := int(n) + len(container) + logEntryOverhead
	e.size = int32(size)
	x.charge(res, size)
	x.push(e)
}

// unlink takes the oldest record e, numbered seq, off every list it is on,
// freeing the handles of the lists it leaves empty.
func (x *Logs) unlink(e *logEntry, seq uint64) {
	if !e.traceID.IsEmpty() {
		x.removeTrace(e.traceID, seq)
	}
	if pp := x.pods.get(e.pod); pp != nil && pp.seqs.popFront(seq) {
		delete(x.byPod, pp.pod)
		x.pods.remove(pp.h)
	}
	if sp := x.svcs.get(e.svc); sp != nil && sp.seqs.popFront(seq) {
		delete(x.bySvc, sp.name)
		x.svcs.remove(sp.h)
	}
	if cp := x.names.get(e.container); cp != nil {
		if cp.refs--; cp.refs == 0 {
			delete(x.byName, cp.name)
			x.names.remove(cp.h)
		}
	}
}

// decodeLog rebuilds the record of v with its resource and scope.
func decodeLog(v *logView) (plog.Logs, error) {
	var u plog.ProtoUnmarshaler
	return u.UnmarshalLogs(v.res.Wrap(v.data))
}

// LogQuery selects log records, as weftstoreextension.LogQuery (its public form,
// converted) describes it.
type LogQuery struct {
	Namespace, Pod, Container, Service string
	TraceID                            pcommon.TraceID
	Since                              time.Time
	MinSeverity                        plog.SeverityNumber
	Limit                              int
}

// SearchLogs returns matching records, with Data, newest first by record
// time (ties: latest arrival first), each converted by conv (called with
// the index locked).
func SearchLogs[R any](x *Logs, q LogQuery, conv func(Log) R) ([]R, error) {
	limit := limitOr(q.Limit, 100)
	x.mu.RLock()
	defer x.mu.RUnlock()
	var cands []candidate[logView]
	since := int64(math.MinInt64)
	if !q.Since.IsZero() {
		since = q.Since.UnixNano()
	}
	// cheap: the filters on the entry's own fields.
	cheap := func(e *logEntry) bool {
		return (q.TraceID.IsEmpty() || e.traceID == q.TraceID) && e.severity >= q.MinSeverity && e.time >= since
	}
	visitView := func(v *logView, seq uint64) bool {
		if !cheap(&v.e) ||
			q.Pod != "" && (v.pod == nil || v.pod.pod.Name != q.Pod) ||
			q.Namespace != "" && (v.pod == nil || v.pod.pod.Namespace != q.Namespace) ||
			q.Service != "" && (v.svc == nil || v.svc.name != q.Service) ||
			q.Container != "" && v.container != q.Container {
			return true
		}
		cands = append(cands, candidate[logView]{t: v.e.time, seq: seq, v: *v})
		return true
	}
	visit := func(seq uint64) bool {
		e := x.ring.get(seq)
		if !cheap(e) {
			return true
		}
		v := x.view(e)
		return visitView(&v, seq)
	}
	switch {
	case !q.TraceID.IsEmpty():
		if tl := x.byTrace[q.TraceID]; tl != nil {
			tl.newestFirst(visit)
		}
	case q.Pod != "" && q.Namespace != "":
		if pp := x.byPod[Pod{Namespace: q.Namespace, Name: q.Pod}]; pp != nil {
			pp.seqs.newestFirst(visit)
		}
	case q.Service != "":
		if sp := x.bySvc[q.Service]; sp != nil {
			sp.seqs.newestFirst(visit)
		}
	default:
		x.ring.newestFirst(visit)
	}
	if !q.TraceID.IsEmpty() {
		x.pinnedOf(q.TraceID, visitView)
	} else {
		x.allPinned(visitView)
	}
	sortNewestFirst(cands)
	cands = cands[:min(len(cands), limit)]
	out := make([]R, 0, len(cands))
	for i := range cands {
		rec, err := logOf(&cands[i].v)
		if err != nil {
			return out, err
		}
		out = append(out, conv(rec))
	}
	return out, nil
}

func logOf(v *logView) (Log, error) {
	ld, err := decodeLog(v)
	if err != nil {
		return Log{}, fmt.Errorf("weft_store: decode log record: %w", err)
	}
	rec := Log{
		Time: v.e.time, TraceID: v.e.traceID, SpanID: v.e.spanID,
		Container: v.container, Severity: v.e.severity, Data: ld,
		Body: ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().AsString(),
	}
	if v.pod != nil {
		rec.Pod = v.pod.pod
	}
	if v.svc != nil {
		rec.Service = v.svc.name
	}
	return rec, nil
}
