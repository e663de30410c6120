package weftstore

import (
	"errors"
	"fmt"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

// TracesData and LogsData share one wire layout:
//
//	XData        { repeated ResourceX resource_x = 1; }
//	ResourceX    { Resource resource = 1; repeated ScopeX scope_x = 2; string schema_url = 3; }
//	ScopeX       { InstrumentationScope scope = 1; repeated Record records = 2; string schema_url = 3; }
//
// The indexes marshal an incoming batch once, split it here into the byte
// ranges of each resource, scope and record, and copy out each record's
// bytes: no per-record pdata copy or marshal.

// wireScope is one ScopeX of a serialized batch; its slices point into the
// batch buffer.
type wireScope struct {
	res, resSchema, scope, scopeSchema []byte
	recs                               [][]byte
}

var errWire = errors.New("malformed OTLP wire data")

// splitOTLP appends to dst[:0] one wireScope per ScopeX of buf, in order.
func splitOTLP(buf []byte, dst []wireScope) ([]wireScope, error) {
	n := 0
	next := func() *wireScope {
		if n < len(dst) {
			w := &dst[n]
			recs := w.recs[:0]
			*w = wireScope{recs: recs}
		} else {
			dst = append(dst, wireScope{})
		}
		n++
		return &dst[n-1]
	}
	err := eachField(buf, func(num protowire.Number, rs []byte) error {
		if num != 1 {
			return nil
		}
		var res, resSchema []byte
		first := n
		err := eachField(rs, func(num protowire.Number, v []byte) error {
			switch num {
			case 1:
				res = v
			case 3:
				resSchema = v
			case 2:
				w := next()
				return eachField(v, func(num protowire.Number, v []byte) error {
					switch num {
					case 1:
						w.scope = v
					case 2:
						w.recs = append(w.recs, v)
					case 3:
						w.scopeSchema = v
					}
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i := first; i < n; i++ {
			dst[i].res, dst[i].resSchema = res, resSchema
		}
		return nil
	})
	return dst[:n], err
}

// eachField calls fn with the number and the bytes of each length-delimited
// field of msg, skipping other wire types.
func eachField(msg []byte, fn func(protowire.Number, []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return fmt.Errorf("%w: %v", errWire, protowire.ParseError(n))
		}
		msg = msg[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, msg)
			if n < 0 {
				return fmt.Errorf("%w: %v", errWire, protowire.ParseError(n))
			}
			msg = msg[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(msg)
		if n < 0 {
			return fmt.Errorf("%w: %v", errWire, protowire.ParseError(n))
		}
		msg = msg[n:]
		if err := fn(num, v); err != nil {
			return err
		}
	}
	return nil
}

// blob holds the serialized resource and scope shared by the records of
// one ScopeX, in one buffer. Its bytes are charged to the index while at
// least one entry refers to it.
type blob struct {
	data                               []byte
	res, resSchema, scope, scopeSchema []byte // into data
	refs                               int
}

// blobOverhead is the heap cost of a blob besides its bytes.
const blobOverhead = int(unsafe.Sizeof(blob{})) + 16

func newBlob(w *wireScope) *blob {
	data := make([]byte, 0, len(w.res)+len(w.resSchema)+len(w.scope)+len(w.scopeSchema))
	b := &blob{}
	take := func(p []byte) []byte {
		start := len(data)
		data = append(data, p...)
		return data[start:len(data):len(data)]
	}
	b.res, b.resSchema, b.scope, b.scopeSchema = take(w.res), take(w.resSchema), take(w.scope), take(w.scopeSchema)
	b.data = data
	return b
}

// size is what the blob is charged.
func (b *blob) size() int64 { return int64(cap(b.data) + blobOverhead) }

// wrap serializes an XData holding one resource, one scope and one record
// (rec, the record's bytes).
func (b *blob) wrap(rec []byte) []byte {
	var scope []byte
	if b.scope != nil {
		scope = protowire.AppendTag(scope, 1, protowire.BytesType)
		scope = protowire.AppendBytes(scope, b.scope)
	}
	scope = protowire.AppendTag(scope, 2, protowire.BytesType)
	scope = protowire.AppendBytes(scope, rec)
	if len(b.scopeSchema) > 0 {
		scope = protowire.AppendTag(scope, 3, protowire.BytesType)
		scope = protowire.AppendBytes(scope, b.scopeSchema)
	}
	var rs []byte
	if b.res != nil {
		rs = protowire.AppendTag(rs, 1, protowire.BytesType)
		rs = protowire.AppendBytes(rs, b.res)
	}
	rs = protowire.AppendTag(rs, 2, protowire.BytesType)
	rs = protowire.AppendBytes(rs, scope)
	if len(b.resSchema) > 0 {
		rs = protowire.AppendTag(rs, 3, protowire.BytesType)
		rs = protowire.AppendBytes(rs, b.resSchema)
	}
	out := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(out, rs)
}
