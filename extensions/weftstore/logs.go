package weftstore

import (
	"bytes"
	"sync"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

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
	res       *blob
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
//
// The ring's slots (unsafe.Sizeof of an entry each) are charged when the
// ring grows, for its whole capacity, and never released: the ring does not
// shrink.
const logEntryOverhead = 3*8 + 144

// logIndex keeps recent log records within maxBytes.
type logIndex struct {
	mu       sync.RWMutex
	maxBytes int64
	bytes    int64
	ring     ring[logEntry]
	byTrace  map[pcommon.TraceID]*seqList
	byPod    map[Pod]*logPodPostings
	bySvc    map[string]*namedPostings

	evicted      int64
	evictedBytes int64
	unencodable  int64 // records that failed to serialize (never expected for valid pdata)

	marsh plog.ProtoMarshaler
}

func newLogIndex(maxBytes int64) *logIndex {
	x := &logIndex{
		maxBytes: maxBytes,
		byTrace:  make(map[pcommon.TraceID]*seqList),
		byPod:    make(map[Pod]*logPodPostings),
		bySvc:    make(map[string]*namedPostings),
	}
	return x
}

// append stores every record of ld, like spanIndex.append.
func (x *logIndex) append(ld plog.Logs) {
	buf, err := x.marsh.MarshalLogs(ld)
	var ws []wireScope
	if err == nil {
		ws, err = splitOTLP(buf, nil)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		attrs := rl.Resource().Attributes()
		service := attrString(attrs, "service.name")
		pod := podOf(attrs)
		container := attrString(attrs, "k8s.container.name")
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			recs := sls.At(j).LogRecords()
			var w *wireScope
			if err == nil && n < len(ws) && len(ws[n].recs) == recs.Len() {
				w = &ws[n]
			}
			n++
			if recs.Len() == 0 {
				continue
			}
			if w == nil {
				x.unencodable += int64(recs.Len())
				continue
			}
			res := newBlob(w)
			for k := 0; k < recs.Len(); k++ {
				x.insert(recs.At(k), service, pod, container, res, bytes.Clone(w.recs[k]))
			}
		}
	}
	x.evictOverflow()
}

func (x *logIndex) insert(lr plog.LogRecord, service string, pod Pod, container string, res *blob, data []byte) {
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
		tl := x.byTrace[e.traceID]
		if tl == nil {
			tl = &seqList{}
			x.byTrace[e.traceID] = tl
		}
		tl.push(seq)
	}
	if pod.Name != "" {
		pp := x.byPod[pod]
		if pp == nil {
			pp = &logPodPostings{pod: pod}
			x.byPod[pod] = pp
		}
		pp.seqs.push(seq)
		e.pod = pp
	}
	if service != "" {
		sp := x.bySvc[service]
		if sp == nil {
			sp = &namedPostings{name: service}
			x.bySvc[service] = sp
		}
		sp.seqs.push(seq)
		e.svc = sp
	}
	if res.refs == 0 {
		x.bytes += res.size()
	}
	res.refs++
	// The container name is a string of its own per entry (usually shared
	// with the resource attribute it came from, but charged anyway).
	size := len(data) + len(container) + logEntryOverhead
	e.size = int32(size)
	x.bytes += int64(size)
	x.pushEntry(e)
}

func (x *logIndex) evictOverflow() {
	for x.bytes > x.maxBytes {
		e, seq, ok := x.ring.oldest()
		if !ok {
			return
		}
		if !e.traceID.IsEmpty() && x.byTrace[e.traceID].popFront(seq) {
			delete(x.byTrace, e.traceID)
		}
		if e.pod != nil && e.pod.seqs.popFront(seq) {
			delete(x.byPod, e.pod.pod)
		}
		if e.svc != nil && e.svc.seqs.popFront(seq) {
			delete(x.bySvc, e.svc.name)
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

// decodeLog rebuilds the record of e with its resource and scope.
func decodeLog(e *logEntry) (plog.Logs, error) {
	var u plog.ProtoUnmarshaler
	return u.UnmarshalLogs(e.res.wrap(e.data))
}

// pushEntry adds e to the ring, charging the ring's growth.
func (x *logIndex) pushEntry(e logEntry) {
	if _, grown := x.ring.push(e); grown > 0 {
		x.bytes += int64(grown) * int64(unsafe.Sizeof(e))
	}
}
