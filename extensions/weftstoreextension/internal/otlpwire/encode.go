package otlpwire

import (
	"encoding/binary"
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Encoder serializes one span or log record at a time into a buffer it
// reuses, byte for byte as pdata's marshaler (v1.71.0) writes the record
// inside a batch (TestEncoderMatchesPdata holds it to that), so that the
// indexes need not marshal a whole batch into a new buffer and split it to
// get each record's bytes.
//
// Like pdata, it writes backward from the end of the buffer: a nested
// message's length is known once its fields are written, with no sizing
// pass. The fields come out in the order pdata's generated code writes
// them; a map's entries, which pcommon.Map offers only front to back, go
// through a stack first so that they can be written last to first.
//
// It knows the fields of OTLP 1.x spans and log records that pdata's
// public API shows. A pdata release that adds one needs it added here too:
// the seeds of FuzzEncoderMatchesPdata will not notice, fuzzing will
// (pdata decodes the new field, the encoder leaves it out).
type Encoder struct {
	b   []byte // the record being written is b[p:]
	p   int
	kvs []kv // map entries of the maps being written, innermost last
}

type kv struct {
	k string
	v pcommon.Value
}

// Tags of the fields written (field number << 3 | wire type).
const (
	tagLen1, tagLen2, tagLen3, tagLen4, tagLen5, tagLen6, tagLen7 = 0x0a, 0x12, 0x1a, 0x22, 0x2a, 0x32, 0x3a
)

// Span returns the wire form of sp, valid until the next call.
func (e *Encoder) Span(sp ptrace.Span) []byte {
	e.reset()
	tid, sid, pid := sp.TraceID(), sp.SpanID(), sp.ParentSpanID()
	e.id(tagLen1, tid[:])
	e.id(tagLen2, sid[:])
	e.str(tagLen3, sp.TraceState().AsRaw())
	e.id(tagLen4, pid[:])
	if f := sp.Flags(); f != 0 {
		e.fixed32(f)
		e.raw(0x85, 0x01) // field 16, fixed32
	}
	e.str(tagLen5, sp.Name())
	e.varintField(0x30, uint64(int64(sp.Kind())))
	e.fixed64Field(0x39, uint64(sp.StartTimestamp()))
	e.fixed64Field(0x41, uint64(sp.EndTimestamp()))
	e.attrs(0x4a, sp.Attributes())
	e.varintField(0x50, uint64(sp.DroppedAttributesCount()))
	evs := sp.Events()
	for i := evs.Len() - 1; i >= 0; i-- {
		ev := evs.At(i)
		start := e.mark()
		e.fixed64Field(0x09, uint64(ev.Timestamp()))
		e.str(tagLen2, ev.Name())
		e.attrs(tagLen3, ev.Attributes())
		e.varintField(0x20, uint64(ev.DroppedAttributesCount()))
		e.closeLen(0x5a, start)
	}
	e.varintField(0x60, uint64(sp.DroppedEventsCount()))
	links := sp.Links()
	for i := links.Len() - 1; i >= 0; i-- {
		l := links.At(i)
		start := e.mark()
		ltid, lsid := l.TraceID(), l.SpanID()
		e.id(tagLen1, ltid[:])
		e.id(tagLen2, lsid[:])
		e.str(tagLen3, l.TraceState().AsRaw())
		e.attrs(tagLen4, l.Attributes())
		e.varintField(0x28, uint64(l.DroppedAttributesCount()))
		if f := l.Flags(); f != 0 {
			e.fixed32(f)
			e.raw(0x35)
		}
		e.closeLen(0x6a, start)
	}
	e.varintField(0x70, uint64(sp.DroppedLinksCount()))
	st := sp.Status()
	start := e.mark()
	e.str(tagLen2, st.Message())
	e.varintField(0x18, uint64(int64(st.Code())))
	e.closeLen(0x7a, start)
	return e.b[e.p:]
}

// LogRecord returns the wire form of lr, valid until the next call.
func (e *Encoder) LogRecord(lr plog.LogRecord) []byte {
	e.reset()
	e.fixed64Field(0x09, uint64(lr.Timestamp()))
	e.fixed64Field(0x59, uint64(lr.ObservedTimestamp()))
	e.varintField(0x10, uint64(int64(lr.SeverityNumber())))
	e.str(tagLen3, lr.SeverityText())
	start := e.mark()
	e.value(lr.Body())
	e.closeLen(tagLen5, start)
	e.attrs(tagLen6, lr.Attributes())
	e.varintField(0x38, uint64(lr.DroppedAttributesCount()))
	if f := uint32(lr.Flags()); f != 0 {
		e.fixed32(f)
		e.raw(0x45)
	}
	tid, sid := lr.TraceID(), lr.SpanID()
	e.id(0x4a, tid[:])
	e.id(0x52, sid[:])
	e.str(0x62, lr.EventName())
	return e.b[e.p:]
}

// attrs writes the entries of m as repeated KeyValue fields tag.
func (e *Encoder) attrs(tag byte, m pcommon.Map) {
	base := len(e.kvs)
	for k, v := range m.All() {
		e.kvs = append(e.kvs, kv{k, v})
	}
	for i := len(e.kvs) - 1; i >= base; i-- {
		start := e.mark()
		e.str(tagLen1, e.kvs[i].k)
		vs := e.mark()
		e.value(e.kvs[i].v)
		e.closeLen(tagLen2, vs)
		e.closeLen(tag, start)
	}
	clear(e.kvs[base:])
	e.kvs = e.kvs[:base]
}

// value writes the fields of an AnyValue.
func (e *Encoder) value(v pcommon.Value) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		e.strAlways(tagLen1, v.Str())
	case pcommon.ValueTypeBool:
		b := byte(0)
		if v.Bool() {
			b = 1
		}
		e.raw(0x10, b)
	case pcommon.ValueTypeInt:
		e.varint(uint64(v.Int()))
		e.raw(0x18)
	case pcommon.ValueTypeDouble:
		e.fixed64(math.Float64bits(v.Double()))
		e.raw(0x21)
	case pcommon.ValueTypeSlice:
		start := e.mark()
		s := v.Slice()
		for i := s.Len() - 1; i >= 0; i-- {
			vs := e.mark()
			e.value(s.At(i))
			e.closeLen(tagLen1, vs)
		}
		e.closeLen(tagLen5, start)
	case pcommon.ValueTypeMap:
		start := e.mark()
		e.attrs(tagLen1, v.Map())
		e.closeLen(tagLen6, start)
	case pcommon.ValueTypeBytes:
		e.bytesAlways(tagLen7, v.Bytes())
	}
}

// The writers below put their bytes in front of what is written.

// encoderKeep is the largest buffer an Encoder keeps between records: a
// record larger than that (rare) gets a buffer of its own.
const encoderKeep = 1 << 20

func (e *Encoder) reset() {
	if e.b == nil || len(e.b) > encoderKeep {
		e.b = make([]byte, 4096)
	}
	e.p = len(e.b)
}

// mark is how many bytes are written; a nested message started at mark m
// is mark()-m long once written.
func (e *Encoder) mark() int { return len(e.b) - e.p }

// need makes room for n more bytes, moving what is written to the end of
// a larger buffer.
func (e *Encoder) need(n int) {
	if e.p >= n {
		return
	}
	used := e.mark()
	nb := make([]byte, max(2*len(e.b), used+n+1024))
	copy(nb[len(nb)-used:], e.b[e.p:])
	e.b, e.p = nb, len(nb)-used
}

func (e *Encoder) raw(bs ...byte) {
	e.need(len(bs))
	e.p -= len(bs)
	copy(e.b[e.p:], bs)
}

func (e *Encoder) varint(v uint64) {
	n := 1
	for x := v; x >= 0x80; x >>= 7 {
		n++
	}
	e.need(n)
	e.p -= n
	i := e.p
	for v >= 0x80 {
		e.b[i] = byte(v) | 0x80
		v >>= 7
		i++
	}
	e.b[i] = byte(v)
}

func (e *Encoder) fixed64(v uint64) {
	e.need(8)
	e.p -= 8
	binary.LittleEndian.PutUint64(e.b[e.p:], v)
}

func (e *Encoder) fixed32(v uint32) {
	e.need(4)
	e.p -= 4
	binary.LittleEndian.PutUint32(e.b[e.p:], v)
}

// closeLen writes the length and tag of the field whose value started at
// mark start.
func (e *Encoder) closeLen(tag byte, start int) {
	e.varint(uint64(e.mark() - start))
	e.raw(tag)
}

// varintField and fixed64Field write a field unless it holds zero.
func (e *Encoder) varintField(tag byte, v uint64) {
	if v != 0 {
		e.varint(v)
		e.raw(tag)
	}
}

func (e *Encoder) fixed64Field(tag byte, v uint64) {
	if v != 0 {
		e.fixed64(v)
		e.raw(tag)
	}
}

// str writes a string field unless it is empty; strAlways and bytesAlways
// write it even then (an AnyValue's value is present when empty).
func (e *Encoder) str(tag byte, s string) {
	if s != "" {
		e.strAlways(tag, s)
	}
}

func (e *Encoder) strAlways(tag byte, s string) {
	e.need(len(s))
	e.p -= len(s)
	copy(e.b[e.p:], s)
	e.varint(uint64(len(s)))
	e.raw(tag)
}

// bytesAlways reads s byte by byte: ByteSlice.AsRaw would copy it.
func (e *Encoder) bytesAlways(tag byte, s pcommon.ByteSlice) {
	n := s.Len()
	e.need(n)
	e.p -= n
	for i := range n {
		e.b[e.p+i] = s.At(i)
	}
	e.varint(uint64(n))
	e.raw(tag)
}

// id writes a trace or span ID field, present (with no bytes) when the ID
// is empty (all zero), as pdata writes it.
func (e *Encoder) id(tag byte, id []byte) {
	start := e.mark()
	for _, c := range id {
		if c != 0 {
			e.need(len(id))
			e.p -= len(id)
			copy(e.b[e.p:], id)
			break
		}
	}
	e.closeLen(tag, start)
}
