package weftfilestorageextension

import (
	"context"
	"errors"
	"syscall"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// telemetry holds the extension's self-metrics; the "client" attribute is
// the log file's name.
type telemetry struct {
	recordsLostC   metric.Int64Counter
	bytesSkippedC  metric.Int64Counter
	writeFailuresC metric.Int64Counter
}

func newTelemetry(mp metric.MeterProvider) (*telemetry, error) {
	m := mp.Meter("github.com/weftobs/weft/extensions/weftfilestorageextension")
	t := &telemetry{}
	var err error
	mk := func(name, unit, desc string) metric.Int64Counter {
		if err != nil {
			return nil
		}
		var c metric.Int64Counter
		c, err = m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		return c
	}
	t.recordsLostC = mk("weft_file_storage.records_lost", "{record}",
		"Telemetry records (log records, spans, data points) in stored values lost to damage, by reason (corrupt, torn, unreadable).")
	t.bytesSkippedC = mk("weft_file_storage.bytes_skipped", "By", "Bytes of log files skipped as damaged, by reason.")
	t.writeFailuresC = mk("weft_file_storage.write_failures", "{write}", "Writes refused or failed, by reason (disk_full, io).")
	return t, err
}

func (t *telemetry) recordsLost(client, reason string, n int64) {
	if n > 0 {
		t.recordsLostC.Add(context.Background(), n, metric.WithAttributes(attribute.String("client", client), attribute.String("reason", reason)))
	}
}

func (t *telemetry) bytesSkipped(client, reason string, n int64) {
	if n > 0 {
		t.bytesSkippedC.Add(context.Background(), n, metric.WithAttributes(attribute.String("client", client), attribute.String("reason", reason)))
	}
}

func (t *telemetry) writeFailure(client string, err error) {
	reason := "io"
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		reason = "disk_full"
	}
	t.writeFailuresC.Add(context.Background(), 1, metric.WithAttributes(attribute.String("client", client), attribute.String("reason", reason)))
}
