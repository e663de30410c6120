package index

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
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

// logEntry is one stored log record: its index fields and its serialized
// form.
type logEntry struct {
	traceID   pcommon.TraceID
	spanID    pcommon.SpanID
	time      int64 // unix ns: the record's timestamp, else its observed timestamp
	severity  plog.SeverityNumber
	pod       *logPodPostings // nil when the resource names no pod
	svc       *namedPostings  // nil when the resource names no service
	container string
	res       *resource
	data      []byte // the serialized LogRecord message
	size      int32
}

type namedPostings struct {
	name string
	seqs seqList
}

type logPodPostings struct {
	pod  Pod
	seqs seqList
}

// logEntryOverhead is what one record costs besides its serialized bytes:
// its ring slot, its sequence number on the trace, pod and service lists,
// and a share of those maps' entries and of allocator rounding; calibrated
// by TestEvictionBounds like spanEntryOverhead.
const logEntryOverhead = 3*8 + 144

// Logs keeps recent log records within a byte budget. Its methods are safe
// for concurrent use.
type Logs struct {
	core[logEntry]
	byPod map[Pod]*logPodPostings
	bySvc map[string]*namedPostings

	marsh plog.ProtoMarshaler
}

// NewLogs returns an empty log index of maxBytes.
func NewLogs(maxBytes int64) *Logs {
	x := &Logs{
		core: newCore(maxBytes, func(e *logEntry) (pcommon.TraceID, *resource, int32) { return e.traceID, e.res, e.size },
			func(e *logEntry) *[]byte { return &e.data }),
		byPod: make(map[Pod]*logPodPostings),
		bySvc: make(map[string]*namedPostings),
	}
	return withArenaCleanup(x, x.arena)
}

// Append stores every record of ld, like Spans.Append.
func (x *Logs) Append(ld plog.Logs) {
	buf, err := x.marsh.MarshalLogs(ld)
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
				x.addScope(recs.Len(), func(k int, res *resource, data []byte) {
					x.insert(recs.At(k), service, pod, container, res, data)
				})
			}
		}
	}, x.unlink)
}

func (x *Logs) insert(lr plog.LogRecord, service string, pod Pod, container string, res *resource, data []byte) {
	seq := x.ring.next()
	e := logEntry{
		traceID: lr.TraceID(), spanID: lr.SpanID(),
		time: int64(lr.Timestamp()), severity: lr.SeverityNumber(),
		container: container, res: res, data: data,
	}
	if e.time == 0 {
		e.time = int64(lr.ObservedTimestamp())
	}
	if !e.traceID.IsEmpty() {
		x.addTrace(e.traceID, seq)
	}
	if pod.Name != "" {
		e.pod = x.byPod[pod]
		if e.pod == nil {
			e.pod = &logPodPostings{pod: pod}
			x.byPod[pod] = e.pod
		}
		e.pod.seqs.push(seq)
	}
	if service != "" {
		e.svc = x.bySvc[service]
		if e.svc == nil {
			e.svc = &namedPostings{name: service}
			x.bySvc[service] = e.svc
		}
		e.svc.seqs.push(seq)
	}
	// The container name is a string of its own per entry (usually shared
	// with the resource attribute it came from, but charged anyway).
	size := len(data) + len(container) + logEntryOverhead
	e.size = int32(size)
	x.charge(res, size)
	x.push(e)
}

// unlink takes the oldest record e, numbered seq, off every list it is on.
func (x *Logs) unlink(e *logEntry, seq uint64) (*resource, int32) {
	if !e.traceID.IsEmpty() {
		x.removeTrace(e.traceID, seq)
	}
	if e.pod != nil && e.pod.seqs.popFront(seq) {
		delete(x.byPod, e.pod.pod)
	}
	if e.svc != nil && e.svc.seqs.popFront(seq) {
		delete(x.bySvc, e.svc.name)
	}
	return e.res, e.size
}

// decodeLog rebuilds the record of e with its resource and scope.
func decodeLog(e *logEntry) (plog.Logs, error) {
	var u plog.ProtoUnmarshaler
	return u.UnmarshalLogs(e.res.Wrap(e.data))
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
	var cands []candidate[logEntry]
	visitEntry := func(e *logEntry, seq uint64) bool {
		if !q.TraceID.IsEmpty() && e.traceID != q.TraceID ||
			q.Pod != "" && (e.pod == nil || e.pod.pod.Name != q.Pod) ||
			q.Namespace != "" && (e.pod == nil || e.pod.pod.Namespace != q.Namespace) ||
			q.Service != "" && (e.svc == nil || e.svc.name != q.Service) ||
			q.Container != "" && e.container != q.Container ||
			e.severity < q.MinSeverity ||
			!q.Since.IsZero() && e.time < q.Since.UnixNano() {
			return true
		}
		cands = append(cands, candidate[logEntry]{t: e.time, seq: seq, e: e})
		return true
	}
	visit := func(seq uint64) bool { return visitEntry(x.ring.get(seq), seq) }
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
		x.pinnedOf(q.TraceID, visitEntry)
	} else {
		x.allPinned(visitEntry)
	}
	sortNewestFirst(cands)
	cands = cands[:min(len(cands), limit)]
	out := make([]R, 0, len(cands))
	for _, c := range cands {
		rec, err := logOf(c.e)
		if err != nil {
			return out, err
		}
		out = append(out, conv(rec))
	}
	return out, nil
}

func logOf(e *logEntry) (Log, error) {
	ld, err := decodeLog(e)
	if err != nil {
		return Log{}, fmt.Errorf("weft_store: decode log record: %w", err)
	}
	rec := Log{
		Time: e.time, TraceID: e.traceID, SpanID: e.spanID,
		Container: e.container, Severity: e.severity, Data: ld,
		Body: ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().AsString(),
	}
	if e.pod != nil {
		rec.Pod = e.pod.pod
	}
	if e.svc != nil {
		rec.Service = e.svc.name
	}
	return rec, nil
}
