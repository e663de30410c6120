package weftfilestorageextension

import (
	"encoding/binary"
	"errors"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pmetric"
	pdatareq "go.opentelemetry.io/collector/pdata/xpdata/request"
	"google.golang.org/protobuf/encoding/protowire"
)

// recordCounter tells how many telemetry records a stored value holds, so
// that a value lost to damage is counted in records, not only in bytes.
type recordCounter func(key string, value []byte) int64

func noCount(string, []byte) int64 { return 0 }

// counterFor returns the counter for a client. The exporters' persistent
// queues (storage name = signal) keep each request under a decimal key, in
// exporterhelper's request encoding (with a fallback to plain OTLP);
// everything else counts 0.
func counterFor(storageName string) recordCounter {
	var n func([]byte) (int64, error)
	switch storageName {
	case "logs", "traces":
		// LogsData/TracesData → resource_* (1) → scope_* (2) → log_records/spans (2),
		// inside the request's field 3 when in the request format.
		n = func(b []byte) (int64, error) {
			if isRequestV1(b) {
				return countNested(b, 3, 1, 2, 2)
			}
			return countNested(b, 1, 2, 2)
		}
	case "metrics":
		n = func(b []byte) (int64, error) {
			_, md, err := pdatareq.UnmarshalMetrics(b)
			if errors.Is(err, pdatareq.ErrInvalidFormat) {
				md, err = (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(b)
			}
			if err != nil {
				return 0, err
			}
			return int64(md.DataPointCount()), nil
		}
	default:
		return noCount
	}
	return func(key string, value []byte) int64 {
		if _, err := strconv.ParseUint(key, 10, 64); err != nil || len(value) == 0 {
			return 0
		}
		c, err := n(value)
		if err != nil {
			return 0 // not a request: nothing to count
		}
		return c
	}
}

// isRequestV1 recognizes exporterhelper's request format: field 1 (fixed32)
// holding format version 1 first.
func isRequestV1(b []byte) bool {
	return len(b) >= 5 && b[0] == byte(protowire.EncodeTag(1, protowire.Fixed32Type)) && binary.LittleEndian.Uint32(b[1:5]) == 1
}

var errMalformed = errors.New("malformed protobuf")

// countNested counts the occurrences of the last field of path inside the
// nested messages named by the fields before it, without decoding them.
func countNested(b []byte, path ...protowire.Number) (int64, error) {
	var n int64
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return 0, errMalformed
		}
		b = b[l:]
		if num == path[0] && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return 0, errMalformed
			}
			b = b[l:]
			if len(path) == 1 {
				n++
				continue
			}
			c, err := countNested(v, path[1:]...)
			if err != nil {
				return 0, err
			}
			n += c
			continue
		}
		l = protowire.ConsumeFieldValue(num, typ, b)
		if l < 0 {
			return 0, errMalformed
		}
		b = b[l:]
	}
	return n, nil
}
