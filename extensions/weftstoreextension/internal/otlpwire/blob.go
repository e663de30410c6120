package otlpwire

import (
	"bytes"

	"google.golang.org/protobuf/encoding/protowire"
)

// Blob holds the serialized resource and scope shared by the records of
// one ScopeX, copied into one buffer: the resource, its schema URL, the
// scope and its schema URL, one after the other (ends holds where each
// ends), so that a Blob moves with its buffer (Clone).
type Blob struct {
	data []byte
	ends [4]int32
}

// Size is the length of the buffer MakeBlob needs for s.
func (s *Scope) Size() int { return len(s.Res) + len(s.ResSchema) + len(s.Scope) + len(s.ScopeSchema) }

// MakeBlob copies the resource and scope of s into buf, which must be at
// least s.Size() long (MakeBlob(s, nil) allocates one).
func MakeBlob(s *Scope, buf []byte) Blob {
	if buf == nil {
		buf = make([]byte, s.Size())
	}
	var b Blob
	n := 0
	for i, p := range [4][]byte{s.Res, s.ResSchema, s.Scope, s.ScopeSchema} {
		n += copy(buf[n:], p)
		b.ends[i] = int32(n)
	}
	b.data = buf[:n:n]
	return b
}

// Clone returns b with a buffer of its own on the heap.
func (b Blob) Clone() Blob {
	b.data = bytes.Clone(b.data)
	if b.data == nil {
		b.data = []byte{}
	}
	return b
}

// Cap is the size of the blob's buffer.
func (b *Blob) Cap() int { return cap(b.data) }

// part returns the i-th part of the blob (non-nil, possibly empty).
func (b *Blob) part(i int) []byte {
	start := int32(0)
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.data[start:b.ends[i]:b.ends[i]]
}

// Wrap serializes an XData holding one resource, one scope and one record
// (rec, the record's bytes).
func (b *Blob) Wrap(rec []byte) []byte {
	scope := appendLevel(nil, b.part(2), rec, b.part(3))
	rs := appendLevel(nil, b.part(0), scope, b.part(1))
	return appendField(nil, 1, rs)
}

// appendLevel appends the fields of a ResourceX or ScopeX message to dst:
// its resource or scope (field 1, left out when nil), one child (field 2)
// and its schema URL (field 3, left out when empty).
func appendLevel(dst, head, child, schema []byte) []byte {
	if head != nil {
		dst = appendField(dst, 1, head)
	}
	dst = appendField(dst, 2, child)
	if len(schema) > 0 {
		dst = appendField(dst, 3, schema)
	}
	return dst
}

// appendField appends the length-delimited field num holding v to b.
func appendField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}
