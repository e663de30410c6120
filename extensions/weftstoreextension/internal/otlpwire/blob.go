package otlpwire

import "google.golang.org/protobuf/encoding/protowire"

// Blob holds the serialized resource and scope shared by the records of
// one ScopeX, copied into one buffer of its own.
type Blob struct {
	data                               []byte
	res, resSchema, scope, scopeSchema []byte // into data
}

// MakeBlob copies the resource and scope of s.
func MakeBlob(s *Scope) Blob {
	data := make([]byte, 0, len(s.Res)+len(s.ResSchema)+len(s.Scope)+len(s.ScopeSchema))
	take := func(p []byte) []byte {
		start := len(data)
		data = append(data, p...)
		return data[start:len(data):len(data)]
	}
	var b Blob
	b.res, b.resSchema, b.scope, b.scopeSchema = take(s.Res), take(s.ResSchema), take(s.Scope), take(s.ScopeSchema)
	b.data = data
	return b
}

// Cap is the size of the blob's buffer.
func (b *Blob) Cap() int { return cap(b.data) }

// Wrap serializes an XData holding one resource, one scope and one record
// (rec, the record's bytes).
func (b *Blob) Wrap(rec []byte) []byte {
	scope := appendLevel(nil, b.scope, rec, b.scopeSchema)
	rs := appendLevel(nil, b.res, scope, b.resSchema)
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
