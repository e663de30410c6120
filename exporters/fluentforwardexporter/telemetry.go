package fluentforwardexporter

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// The exporter's self-metrics, all declared in this file, named
// <component type>.<metric> and listed in README's "Self-metrics" table.
// exporterhelper adds the otelcol_exporter_* metrics (sent, send failed,
// queue size) for the same exporter.
const (
	// metricRecordsDropped counts records given up or refused, by reason.
	metricRecordsDropped = "fluent_forward.records_dropped"
)

// Drop reasons (the "reason" attribute of metricRecordsDropped).
const (
	// reasonUnencodable: the record's time does not fit the protocol's
	// EventTime (unsigned 32-bit seconds: after 2106-02-07), or the batch
	// could not be encoded at all (a permanent error).
	reasonUnencodable = "unencodable"
	// reasonQueueFull: the sending queue was full and block_on_overflow is
	// off (or the caller gave up waiting), or the batch is larger than the
	// whole memory queue; the caller got the error.
	reasonQueueFull = "queue_full"
	// reasonNotPersisted: the persistent queue could not store the batch
	// (storage error such as a full disk); the caller got the error.
	reasonNotPersisted = "not_persisted"
	// reasonRetriesExhausted: exporterhelper's retry gave up before the
	// server acknowledged: retry_on_failure is disabled (one attempt) or
	// its max_elapsed_time passed.
	reasonRetriesExhausted = "retries_exhausted"
	// reasonShutdown: Shutdown interrupted the batch's retry and there is
	// no persistent queue to keep it.
	reasonShutdown = "shutdown"
)

// dropLogEvery is the least time between two drop log lines of one reason.
const dropLogEvery = 10 * time.Second

// telemetry holds the exporter's self-metrics. Every record the exporter
// gives up on is counted here with its reason, and logged rate-limited.
type telemetry struct {
	logger  *zap.Logger
	dropped metric.Int64Counter

	mu     sync.Mutex
	logged map[string]*dropLogState
}

type dropLogState struct {
	last    time.Time
	pending int64 // records dropped since the last log line
}

func newTelemetry(mp metric.MeterProvider, logger *zap.Logger) (*telemetry, error) {
	m := mp.Meter("github.com/weftobs/weft/exporters/fluentforwardexporter")
	dropped, err := m.Int64Counter(metricRecordsDropped,
		metric.WithUnit("{record}"),
		metric.WithDescription("Log records the exporter did not accept or gave up on, by reason. "+
			"For queue_full and not_persisted the caller got the error and may send the records again."))
	if err != nil {
		return nil, err
	}
	return &telemetry{logger: logger, dropped: dropped, logged: make(map[string]*dropLogState)}, nil
}

// drop counts n records dropped for reason and logs at most once per
// dropLogEvery and reason, with the records dropped since the last line.
func (t *telemetry) drop(n int, reason string, cause error) {
	if n <= 0 {
		return
	}
	t.dropped.Add(context.Background(), int64(n), metric.WithAttributes(attribute.String("reason", reason)))
	now := time.Now()
	t.mu.Lock()
	st := t.logged[reason]
	if st == nil {
		st = &dropLogState{}
		t.logged[reason] = st
	}
	st.pending += int64(n)
	if !st.last.IsZero() && now.Sub(st.last) < dropLogEvery {
		t.mu.Unlock()
		return
	}
	pending := st.pending
	st.pending, st.last = 0, now
	t.mu.Unlock()
	t.logger.Warn("Dropped log records", zap.String("reason", reason), zap.Int64("records", pending), zap.Error(cause))
}
