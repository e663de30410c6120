package evidencesamplingprocessor

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The self-metrics, all in this one place; prefix = the component type.
// The instance of a traces pipeline reports the span names, that of a
// logs pipeline the log record names (see README: self-metrics).
const (
	metricPrefix = typeStr + "."
	metricPins   = metricPrefix + "pins"      // counter, attribute reason: error_span, error_log
	metricLate   = metricPrefix + "late_pins" // counter
)

// Why an item was kept.
const (
	keptSampled   = iota // its trace's randomness passed the threshold
	keptPinned           // its trace is pinned (error span, error log, alert; here or on a peer)
	keptNoTraceID        // a log record without trace ID: not subject to sampling
	numKept
)

// Why an item was dropped.
const (
	droppedUnsampled  = iota // not sampled and no pin arrived within decision_wait
	droppedBufferFull        // not sampled, not pinned, and decided early because the buffer was full
	droppedShutdown          // not sampled, not pinned, decided at shutdown before its wait ended
	droppedRefused           // kept after its wait, but the next consumer refused it (the sender was answered already)
	numDropped
)

var (
	keptReasons    = [numKept]string{"sampled", "pinned", "no_trace_id"}
	droppedReasons = [numDropped]string{"unsampled", "buffer_full", "shutdown", "refused"}
)

// names returns the metric names of one signal.
func (k signalKind) names() (kept, dropped, buffered, bufferedBytes string) {
	return metricPrefix + k.items + "_kept",
		metricPrefix + k.items + "_dropped",
		metricPrefix + "buffered_" + k.items,
		metricPrefix + "buffered_" + k.bytes
}

// registerTelemetry declares the self-metrics, read from the counters and
// the buffer at each collection.
func (c *core) registerTelemetry() (metric.Registration, error) {
	mp := c.set.TelemetrySettings.MeterProvider
	if mp == nil {
		return nil, nil
	}
	m := mp.Meter("github.com/weftobs/weft/processors/evidencesamplingprocessor")
	keptName, droppedName, bufName, bufBytesName := c.kind.names()
	unit := "{" + c.kind.items + "}"
	kept, err1 := m.Int64ObservableCounter(keptName, metric.WithUnit(unit),
		metric.WithDescription("Items passed on, by reason: sampled, pinned, no_trace_id (log records without trace ID)."))
	dropped, err2 := m.Int64ObservableCounter(droppedName, metric.WithUnit(unit),
		metric.WithDescription("Items dropped, by reason: unsampled, buffer_full, shutdown, refused (kept, but the next consumer refused them after the wait)."))
	buffered, err3 := m.Int64ObservableGauge(bufName, metric.WithUnit(unit),
		metric.WithDescription("Items waiting for their trace's decision."))
	bufBytes, err4 := m.Int64ObservableGauge(bufBytesName, metric.WithUnit("By"),
		metric.WithDescription("Bytes of the items waiting (encoded OTLP plus bookkeeping), the quantity the byte bound limits."))
	pins, err5 := m.Int64ObservableCounter(metricPins, metric.WithUnit("{pin}"),
		metric.WithDescription("Pins this processor set in weft_pins (new or extended), by reason: error_span, error_log."))
	late, err6 := m.Int64ObservableCounter(metricLate, metric.WithUnit("{pin}"),
		metric.WithDescription("Pins (any reason, any node) that arrived after this node had dropped the trace's waiting data, among its last 16384 dropped traces: that trace left this node incomplete. Raise decision_wait when it grows."))
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return nil, err
	}
	pinAttr := metric.WithAttributes(attribute.String("reason", c.kind.pinReason.String()))
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for r, name := range keptReasons {
			o.ObserveInt64(kept, c.counts.kept[r].Load(), metric.WithAttributes(attribute.String("reason", name)))
		}
		for r, name := range droppedReasons {
			o.ObserveInt64(dropped, c.counts.dropped[r].Load(), metric.WithAttributes(attribute.String("reason", name)))
		}
		items, bytes := c.buf.size()
		o.ObserveInt64(buffered, int64(items))
		o.ObserveInt64(bufBytes, int64(bytes))
		o.ObserveInt64(pins, c.counts.pins.Load(), pinAttr)
		o.ObserveInt64(late, c.counts.late.Load())
		return nil
	}, kept, dropped, buffered, bufBytes, pins, late)
}
