package weftpinsextension

import (
	"encoding/binary"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Wire format, version 1 (README: wire format). All integers big-endian.
//
//	offset  size  field
//	0       1     version (1)
//	1       1     kind: 1 = broadcast batch, 2 = push/pull state
//	2       1     origin length L (0..maxOrigin)
//	3       L     origin: the name of the node that pinned the traces
//	3+L     2     count N (batch: 1..maxBatch; state: 0..maxStateRecords)
//	5+L     21·N  records: trace ID (16), expiry in unix seconds (uint32), reason (1)
//
// A message is exactly 5+L+21·N bytes long; anything else is refused.
const (
	wireVersion = 1

	kindBatch = 1
	kindState = 2

	headerLen       = 5 // without the origin
	recordLen       = 16 + 4 + 1
	maxOrigin       = 64
	maxBatch        = 48 // 48 records + header ≤ 1,078 bytes: fits memberlist's 1,400-byte UDP packets with room for its own headers
	maxStateRecords = 1<<16 - 1
)

// Refusal reasons: of a whole message (weft_pins.refused_messages) and of
// single pins (weft_pins.refused_pins).
const (
	refusedShort         = "short"         // shorter than its header
	refusedVersion       = "version"       // unknown version byte
	refusedKind          = "kind"          // unknown message kind, or a state sent as a broadcast
	refusedLength        = "length"        // length does not match the count, or count out of range
	refusedOrigin        = "origin"        // origin empty or longer than 64 bytes
	refusedUndecryptable = "undecryptable" // memberlist could not decrypt it: a peer without the key

	refusedReason      = "reason"       // unknown reason byte
	refusedZeroID      = "zero_id"      // the all-zero trace ID
	refusedExpired     = "expired"      // expiry already past
	refusedRateLimited = "rate_limited" // over the origin's peer_pins_per_second
)

var (
	messageRefusals = []string{refusedShort, refusedVersion, refusedKind, refusedLength, refusedOrigin, refusedUndecryptable}
	pinRefusals     = []string{refusedReason, refusedZeroID, refusedExpired, refusedRateLimited}
)

// record is one pin on the wire.
type record struct {
	id     pcommon.TraceID
	until  int64 // unix seconds
	reason Reason
}

// message is a decoded message; records are read from the buffer it was
// decoded from, which must outlive it.
type message struct {
	kind   byte
	origin []byte
	n      int
	recs   []byte
}

// record returns the i-th record, unchecked (see check).
func (m *message) record(i int) record {
	b := m.recs[i*recordLen : (i+1)*recordLen]
	var r record
	copy(r.id[:], b[:16])
	r.until = int64(binary.BigEndian.Uint32(b[16:20]))
	r.reason = Reason(b[20])
	return r
}

// decode parses buf without copying. On failure it returns the refusal
// reason. It never panics, whatever buf holds.
func decode(buf []byte) (m message, refused string) {
	if len(buf) < headerLen {
		return m, refusedShort
	}
	if buf[0] != wireVersion {
		return m, refusedVersion
	}
	m.kind = buf[1]
	if m.kind != kindBatch && m.kind != kindState {
		return m, refusedKind
	}
	l := int(buf[2])
	if l == 0 || l > maxOrigin {
		return m, refusedOrigin
	}
	if len(buf) < headerLen+l {
		return m, refusedShort
	}
	m.origin = buf[3 : 3+l]
	m.n = int(binary.BigEndian.Uint16(buf[3+l:]))
	m.recs = buf[headerLen+l:]
	if len(m.recs) != m.n*recordLen || (m.kind == kindBatch && (m.n == 0 || m.n > maxBatch)) {
		return message{}, refusedLength
	}
	return m, ""
}

// check validates a record: its reason and ID. The expiry is checked
// against the clock by the caller.
func (r record) check() string {
	switch {
	case !r.reason.valid():
		return refusedReason
	case r.id.IsEmpty():
		return refusedZeroID
	}
	return ""
}

// appendMessage appends a message of kind with the records to dst. The
// caller keeps len(recs) within the kind's bound and origin within
// maxOrigin.
func appendMessage(dst []byte, kind byte, origin string, recs []record) []byte {
	dst = append(dst, wireVersion, kind, byte(len(origin)))
	dst = append(dst, origin...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(recs)))
	for _, r := range recs {
		dst = append(dst, r.id[:]...)
		dst = binary.BigEndian.AppendUint32(dst, wireUntil(r.until))
		dst = append(dst, byte(r.reason))
	}
	return dst
}

// wireUntil fits an expiry into the wire's uint32 seconds (valid until
// 2106; the max TTL keeps every expiry far below that).
func wireUntil(u int64) uint32 {
	switch {
	case u < 0:
		return 0
	case u > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(u)
}

// messageLen is the encoded length of a message with n records.
func messageLen(origin string, n int) int { return headerLen + len(origin) + n*recordLen }
