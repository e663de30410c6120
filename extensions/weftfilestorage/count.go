package weftfilestorage

import (
	"errors"
	"strconv"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	pdatareq "go.opentelemetry.io/collector/pdata/xpdata/request"
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
	case "logs":
		n = func(b []byte) (int64, error) {
			_, ld, err := pdatareq.UnmarshalLogs(b)
			if errors.Is(err, pdatareq.ErrInvalidFormat) {
				ld, err = (&plog.ProtoUnmarshaler{}).UnmarshalLogs(b)
			}
			if err != nil {
				return 0, err
			}
			return int64(ld.LogRecordCount()), nil
		}
	case "traces":
		n = func(b []byte) (int64, error) {
			_, td, err := pdatareq.UnmarshalTraces(b)
			if errors.Is(err, pdatareq.ErrInvalidFormat) {
				td, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(b)
			}
			if err != nil {
				return 0, err
			}
			return int64(td.SpanCount()), nil
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
