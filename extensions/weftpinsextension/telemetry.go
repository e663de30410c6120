package weftpinsextension

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// registerTelemetry declares the extension's self-metrics (weft_pins.*,
// documented in README.md); one callback reads Stats.
func (p *Pins) registerTelemetry() (metric.Registration, error) {
	if p.set.MeterProvider == nil {
		return nil, nil
	}
	m := p.set.MeterProvider.Meter("github.com/weftobs/weft/extensions/weftpinsextension")
	pins, err1 := m.Int64ObservableGauge("weft_pins.pins",
		metric.WithDescription("Trace IDs pinned on this node now."), metric.WithUnit("{pin}"))
	local, err2 := m.Int64ObservableCounter("weft_pins.local",
		metric.WithDescription("Pins set on this node (new or extended), by reason (alert, error_span, error_log)."), metric.WithUnit("{pin}"))
	received, err3 := m.Int64ObservableCounter("weft_pins.received",
		metric.WithDescription("Pins received from peers that were new or extended here."), metric.WithUnit("{pin}"))
	expired, err4 := m.Int64ObservableCounter("weft_pins.expired",
		metric.WithDescription("Pins dropped at their expiry."), metric.WithUnit("{pin}"))
	evicted, err5 := m.Int64ObservableCounter("weft_pins.evicted",
		metric.WithDescription("Pins dropped at max_pins before their expiry, soonest expiry first."), metric.WithUnit("{pin}"))
	clamped, err6 := m.Int64ObservableCounter("weft_pins.clamped",
		metric.WithDescription("Pin expiries cut to max_ttl (local or from peers)."), metric.WithUnit("{pin}"))
	refPins, err7 := m.Int64ObservableCounter("weft_pins.refused_pins",
		metric.WithDescription("Pins from peers refused, by reason (reason, zero_id, expired, rate_limited)."), metric.WithUnit("{pin}"))
	refMsgs, err8 := m.Int64ObservableCounter("weft_pins.refused_messages",
		metric.WithDescription("Gossip messages refused whole, by reason (short, version, kind, length, origin, undecryptable)."), metric.WithUnit("{message}"))
	bytes, err9 := m.Int64ObservableCounter("weft_pins.gossip_bytes",
		metric.WithDescription("Pin payload bytes gossiped (broadcasts and push/pull state, before memberlist's framing and encryption), by direction (sent, received)."), metric.WithUnit("By"))
	dropped, err10 := m.Int64ObservableCounter("weft_pins.broadcasts_dropped",
		metric.WithDescription("Pin broadcasts dropped from a full send queue (their pins still travel in push/pull state)."), metric.WithUnit("{message}"))
	members, err11 := m.Int64ObservableGauge("weft_pins.members",
		metric.WithDescription("Alive members of the gossip cluster, this node included (0 without gossip)."), metric.WithUnit("{member}"))
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7, err8, err9, err10, err11); err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := p.Stats()
		o.ObserveInt64(pins, int64(st.Pins))
		for r, n := range st.Local {
			o.ObserveInt64(local, n, metric.WithAttributes(attribute.String("reason", r)))
		}
		o.ObserveInt64(received, st.Received)
		o.ObserveInt64(expired, st.Expired)
		o.ObserveInt64(evicted, st.Evicted)
		o.ObserveInt64(clamped, st.Clamped)
		for r, n := range st.RefusedPins {
			o.ObserveInt64(refPins, n, metric.WithAttributes(attribute.String("reason", r)))
		}
		for r, n := range st.RefusedMessages {
			o.ObserveInt64(refMsgs, n, metric.WithAttributes(attribute.String("reason", r)))
		}
		o.ObserveInt64(bytes, st.BytesSent, metric.WithAttributes(attribute.String("direction", "sent")))
		o.ObserveInt64(bytes, st.BytesReceived, metric.WithAttributes(attribute.String("direction", "received")))
		o.ObserveInt64(dropped, st.BroadcastsDropped)
		o.ObserveInt64(members, int64(st.Members))
		return nil
	}, pins, local, received, expired, evicted, clamped, refPins, refMsgs, bytes, dropped, members)
}
