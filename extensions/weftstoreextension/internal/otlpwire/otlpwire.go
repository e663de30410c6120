// Package otlpwire writes spans and log records in OTLP's wire form
// (Encoder), splits serialized OTLP TracesData and LogsData into the byte
// ranges of their resources, scopes and records, and wraps one record back
// into a message of its own, without decoding to pdata. The span and log
// indexes use it to keep each record's bytes: each record is encoded into
// a reused buffer, and a batch's resources and scopes, marshaled without
// its records, are split here.
//
// TracesData and LogsData share one wire layout:
//
//	XData        { repeated ResourceX resource_x = 1; }
//	ResourceX    { Resource resource = 1; repeated ScopeX scope_x = 2; string schema_url = 3; }
//	ScopeX       { InstrumentationScope scope = 1; repeated Record records = 2; string schema_url = 3; }
package otlpwire

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Scope is one ScopeX of a serialized batch, with the resource it belongs
// to; its slices point into the batch buffer.
type Scope struct {
	Res, ResSchema, Scope, ScopeSchema []byte
	Recs                               [][]byte // each record's message bytes
}

// ErrMalformed is returned by Split for bytes that are not a valid
// protobuf message.
var ErrMalformed = errors.New("malformed OTLP wire data")

// Split appends to dst[:0] one Scope per ScopeX of buf, in order.
func Split(buf []byte, dst []Scope) ([]Scope, error) {
	n := 0
	next := func() *Scope {
		if n < len(dst) {
			w := &dst[n]
			recs := w.Recs[:0]
			*w = Scope{Recs: recs}
		} else {
			dst = append(dst, Scope{})
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
						w.Scope = v
					case 2:
						w.Recs = append(w.Recs, v)
					case 3:
						w.ScopeSchema = v
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
			dst[i].Res, dst[i].ResSchema = res, resSchema
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
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		msg = msg[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, msg)
			if n < 0 {
				return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
			}
			msg = msg[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(msg)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		msg = msg[n:]
		if err := fn(num, v); err != nil {
			return err
		}
	}
	return nil
}
