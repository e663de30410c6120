package fluentforwardexporter

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	"github.com/tinylib/msgp/msgp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Resource and record attributes the record layout reads.
const (
	attrNamespace = "k8s.namespace.name"
	attrPod       = "k8s.pod.name"
	attrContainer = "k8s.container.name"
	attrPodUID    = "k8s.pod.uid"
	attrIOStream  = "log.iostream"
)

// Record keys written by the exporter; a log attribute with one of these
// names is written as "attr.<name>" so that nothing is overwritten.
const (
	keyLog        = "log"
	keyStream     = "stream"
	keyKubernetes = "kubernetes"
	keyTraceID    = "trace_id"
	keySpanID     = "span_id"
	keySeverity   = "severity"
	collidePrefix = "attr."
)

// message is one Forward-mode message ready for the wire:
// [tag, [[time, record], ...], {"size": n, "chunk": id}].
type message struct {
	tag     string
	chunk   string // empty when acks are not requested
	records int
	data    []byte
}

// resourceMeta is what a resource contributes to its records.
type resourceMeta struct {
	namespace, pod, container, podUID string
}

func resourceMetaOf(res pcommon.Resource) resourceMeta {
	attrs := res.Attributes()
	get := func(k string) string {
		if v, ok := attrs.Get(k); ok {
			return v.AsString()
		}
		return ""
	}
	return resourceMeta{
		namespace: get(attrNamespace),
		pod:       get(attrPod),
		container: get(attrContainer),
		podUID:    get(attrPodUID),
	}
}

// encoder frames plog.Logs as Forward-mode messages, one per tag.
type encoder struct {
	tag        tagTemplate
	requestAck bool
	now        func() time.Time
}

// maxEventSeconds is the last second an EventTime can hold: the forward
// protocol writes seconds as an unsigned 32-bit integer.
const maxEventSeconds = math.MaxUint32

// encodable reports whether the record's time fits an EventTime.
func (e *encoder) encodable(lr plog.LogRecord) bool {
	return e.recordTime(lr).Unix() <= maxEventSeconds
}

// encode returns one message per distinct tag in ld, in order of first
// appearance, and the number of records left out because they cannot be
// encoded (see encodable).
func (e *encoder) encode(ld plog.Logs) ([]message, int, error) {
	type group struct {
		tag   string
		res   []int
		count int
	}
	rls := ld.ResourceLogs()
	metas := make([]resourceMeta, rls.Len())
	var groups []*group
	byTag := make(map[string]*group)
	var tagBuf []byte
	unencodable := 0
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		n := 0
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				if e.encodable(lrs.At(k)) {
					n++
				} else {
					unencodable++
				}
			}
		}
		if n == 0 {
			continue
		}
		m := resourceMetaOf(rl.Resource())
		metas[i] = m
		tagBuf = e.tag.appendTag(tagBuf[:0], m.namespace, m.pod, m.container)
		g, ok := byTag[string(tagBuf)]
		if !ok {
			g = &group{tag: string(tagBuf)}
			byTag[g.tag] = g
			groups = append(groups, g)
		}
		g.res = append(g.res, i)
		g.count += n
	}
	msgs := make([]message, 0, len(groups))
	for _, g := range groups {
		m := message{tag: g.tag, records: g.count}
		if e.requestAck {
			id, err := newChunkID()
			if err != nil {
				return nil, 0, err
			}
			m.chunk = id
		}
		b := make([]byte, 0, 64+g.count*256)
		b = msgp.AppendArrayHeader(b, 3)
		b = msgp.AppendString(b, g.tag)
		b = msgp.AppendArrayHeader(b, uint32(g.count))
		for _, ri := range g.res {
			rl := rls.At(ri)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					if !e.encodable(lr) {
						continue
					}
					var err error
					if b, err = e.appendEntry(b, &metas[ri], lr); err != nil {
						return nil, 0, err
					}
				}
			}
		}
		if m.chunk != "" {
			b = msgp.AppendMapHeader(b, 2)
			b = msgp.AppendString(b, "chunk")
			b = msgp.AppendString(b, m.chunk)
		} else {
			b = msgp.AppendMapHeader(b, 1)
		}
		b = msgp.AppendString(b, "size")
		b = msgp.AppendInt(b, g.count)
		m.data = b
		msgs = append(msgs, m)
	}
	return msgs, unencodable, nil
}

// recordTime is the record's timestamp, else its observed timestamp, else now.
func (e *encoder) recordTime(lr plog.LogRecord) time.Time {
	if ts := lr.Timestamp(); ts != 0 {
		return ts.AsTime()
	}
	if ts := lr.ObservedTimestamp(); ts != 0 {
		return ts.AsTime()
	}
	return e.now()
}

// appendEntry appends [EventTime, record] for one log record.
func (e *encoder) appendEntry(b []byte, meta *resourceMeta, lr plog.LogRecord) ([]byte, error) {
	b = msgp.AppendArrayHeader(b, 2)
	b, err := appendEventTime(b, e.recordTime(lr))
	if err != nil {
		return nil, err
	}

	attrs := lr.Attributes()
	stream, hasStream := attrs.Get(attrIOStream)
	hasK8s := meta.namespace != "" || meta.pod != "" || meta.container != "" || meta.podUID != ""
	traceID, spanID := lr.TraceID(), lr.SpanID()

	n := 1 // log
	if hasStream {
		n++
	}
	if hasK8s {
		n++
	}
	if !traceID.IsEmpty() {
		n++
	}
	if !spanID.IsEmpty() {
		n++
	}
	if lr.SeverityText() != "" {
		n++
	}
	n += attrs.Len()
	if hasStream {
		n-- // written as "stream", not as an attribute
	}
	b = msgp.AppendMapHeader(b, uint32(n))

	b = msgp.AppendString(b, keyLog)
	if body := lr.Body(); body.Type() == pcommon.ValueTypeStr {
		b = msgp.AppendString(b, body.Str())
	} else {
		b = msgp.AppendString(b, body.AsString())
	}
	if hasStream {
		b = msgp.AppendString(b, keyStream)
		b = msgp.AppendString(b, stream.AsString())
	}
	if hasK8s {
		b = appendKubernetes(b, meta)
	}
	if !traceID.IsEmpty() {
		var hx [32]byte
		hex.Encode(hx[:], traceID[:])
		b = msgp.AppendString(b, keyTraceID)
		b = msgp.AppendStringFromBytes(b, hx[:])
	}
	if !spanID.IsEmpty() {
		var hx [16]byte
		hex.Encode(hx[:], spanID[:])
		b = msgp.AppendString(b, keySpanID)
		b = msgp.AppendStringFromBytes(b, hx[:])
	}
	if st := lr.SeverityText(); st != "" {
		b = msgp.AppendString(b, keySeverity)
		b = msgp.AppendString(b, st)
	}
	for k, v := range attrs.All() {
		switch k {
		case attrIOStream:
			continue
		case keyLog, keyStream, keyKubernetes, keyTraceID, keySpanID, keySeverity:
			b = msgp.AppendString(b, collidePrefix+k)
		default:
			b = msgp.AppendString(b, k)
		}
		b = appendValue(b, v)
	}
	return b, nil
}

// appendEventTime writes t as the forward protocol's EventTime: msgpack
// fixext8 of type 0 holding big-endian seconds and nanoseconds. The payload
// comes from the library's EventTime; the framing is written here so that no
// Extension interface value is allocated per record (msgp.AppendExtension).
func appendEventTime(b []byte, t time.Time) ([]byte, error) {
	et := fluent.EventTime(t)
	var raw [8]byte
	if err := et.MarshalBinaryTo(raw[:]); err != nil {
		return nil, fmt.Errorf("encode event time: %w", err)
	}
	b = append(b, 0xd7, byte(et.ExtensionType()))
	return append(b, raw[:]...), nil
}

func appendKubernetes(b []byte, meta *resourceMeta) []byte {
	n := 0
	for _, v := range [...]string{meta.namespace, meta.pod, meta.container, meta.podUID} {
		if v != "" {
			n++
		}
	}
	b = msgp.AppendString(b, keyKubernetes)
	b = msgp.AppendMapHeader(b, uint32(n))
	if meta.namespace != "" {
		b = msgp.AppendString(b, "namespace_name")
		b = msgp.AppendString(b, meta.namespace)
	}
	if meta.pod != "" {
		b = msgp.AppendString(b, "pod_name")
		b = msgp.AppendString(b, meta.pod)
	}
	if meta.container != "" {
		b = msgp.AppendString(b, "container_name")
		b = msgp.AppendString(b, meta.container)
	}
	if meta.podUID != "" {
		b = msgp.AppendString(b, "pod_id")
		b = msgp.AppendString(b, meta.podUID)
	}
	return b
}

// appendValue writes a pcommon.Value as its natural msgpack type.
func appendValue(b []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return msgp.AppendString(b, v.Str())
	case pcommon.ValueTypeInt:
		return msgp.AppendInt64(b, v.Int())
	case pcommon.ValueTypeDouble:
		return msgp.AppendFloat64(b, v.Double())
	case pcommon.ValueTypeBool:
		return msgp.AppendBool(b, v.Bool())
	case pcommon.ValueTypeBytes:
		return msgp.AppendBytes(b, v.Bytes().AsRaw())
	case pcommon.ValueTypeMap:
		m := v.Map()
		b = msgp.AppendMapHeader(b, uint32(m.Len()))
		for k, mv := range m.All() {
			b = msgp.AppendString(b, k)
			b = appendValue(b, mv)
		}
		return b
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		b = msgp.AppendArrayHeader(b, uint32(s.Len()))
		for i := 0; i < s.Len(); i++ {
			b = appendValue(b, s.At(i))
		}
		return b
	default:
		return msgp.AppendNil(b)
	}
}

// newChunkID returns a random, base64-encoded chunk ID for the ack option.
func newChunkID() (string, error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("chunk id: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw[:]), nil
}
