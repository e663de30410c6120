package weftqueryextension

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/auth"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/limits"
)

// registerTelemetry publishes the query bounds' state and counters as
// self-metrics through the collector's meter provider (README "Telemetry").
func (s *server) registerTelemetry() error {
	if s.tel.MeterProvider == nil {
		return nil
	}
	m := s.tel.MeterProvider.Meter("github.com/weftobs/weft/extensions/weftqueryextension")
	running, err1 := m.Int64ObservableGauge("weft_query.queries_running",
		metric.WithDescription("Data requests holding a query slot (max_concurrent_queries)."), metric.WithUnit("{request}"))
	queued, err2 := m.Int64ObservableGauge("weft_query.queries_queued",
		metric.WithDescription("Data requests waiting for a query slot (max_queued_queries)."), metric.WithUnit("{request}"))
	refused, err3 := m.Int64ObservableCounter("weft_query.refused_requests",
		metric.WithDescription("Requests refused by a query bound, by reason (the config key or queue_full)."), metric.WithUnit("{request}"))
	interrupted, err4 := m.Int64ObservableCounter("weft_query.interrupted_queries",
		metric.WithDescription("Queries ended before their answer, by reason: canceled (the client went away) or timeout."), metric.WithUnit("{request}"))
	authReqs, err5 := m.Int64ObservableCounter("weft_query.auth_requests",
		metric.WithDescription("Requests checked by auth, by result: allowed, unauthenticated (401), forbidden (403), unavailable (503: the API server could not answer)."), metric.WithUnit("{request}"))
	reviews, err6 := m.Int64ObservableCounter("weft_query.auth_reviews",
		metric.WithDescription("Reviews sent to the Kubernetes API server (auth.kubernetes), by kind: tokenreview, subjectaccessreview."), metric.WithUnit("{request}"))
	storeCalls, err7 := m.Int64ObservableCounter("weft_query.store_api.calls",
		metric.WithDescription("Thanos StoreAPI calls finished (store_api), by method (Series, Info, ...) and gRPC status code (OK, ResourceExhausted for a bound or no query slot, InvalidArgument, Unauthenticated, ...)."), metric.WithUnit("{call}"))
	for _, err := range []error{err1, err2, err3, err4, err5, err6, err7} {
		if err != nil {
			return err
		}
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(running, int64(s.gate.Running()))
		o.ObserveInt64(queued, int64(s.gate.Queued()))
		for _, r := range limits.RefusalReasons {
			o.ObserveInt64(refused, s.refused.Get(r), metric.WithAttributes(attribute.String("reason", r)))
		}
		for _, r := range limits.InterruptedReasons {
			o.ObserveInt64(interrupted, s.interrupted.Get(r), metric.WithAttributes(attribute.String("reason", r)))
		}
		for _, r := range auth.Results {
			o.ObserveInt64(authReqs, s.authSeen.Get(r), metric.WithAttributes(attribute.String("result", r)))
		}
		s.mu.Lock()
		api := s.storeAPI
		s.mu.Unlock()
		if api != nil {
			api.Calls(func(method, code string, n int64) {
				o.ObserveInt64(storeCalls, n, metric.WithAttributes(attribute.String("method", method), attribute.String("code", code)))
			})
		}
		if s.kube != nil {
			for _, k := range auth.ReviewKinds {
				o.ObserveInt64(reviews, s.kube.Reviews().Get(k), metric.WithAttributes(attribute.String("kind", k)))
			}
		}
		return nil
	}, running, queued, refused, interrupted, authReqs, reviews, storeCalls)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.telReg = reg
	s.mu.Unlock()
	return nil
}
