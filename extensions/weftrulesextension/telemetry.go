package weftrulesextension

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// registerTelemetry declares the extension's self-metrics (weft_rules.*,
// documented in README.md); they observe the engine once it runs.
func (e *Extension) registerTelemetry() error {
	if e.set.MeterProvider == nil {
		return nil
	}
	m := e.set.MeterProvider.Meter("github.com/weftobs/weft/extensions/weftrulesextension")
	reloads, err1 := m.Int64Counter("weft_rules.reloads",
		metric.WithDescription("Rule set reload attempts, by result (success; partial: applied without invalid Kubernetes objects; failure: the previous set kept running)."), metric.WithUnit("{reload}"))
	ok, err2 := m.Int64ObservableGauge("weft_rules.last_reload_successful",
		metric.WithDescription("1 when the last rule reload was applied, 0 when it was rejected."))
	rulesN, err3 := m.Int64ObservableGauge("weft_rules.rules",
		metric.WithDescription("Rules of the running set, node and cluster scope (partials of cluster rules not counted)."), metric.WithUnit("{rule}"))
	webhook, err4 := m.Int64ObservableCounter("weft_rules.webhook_notifications",
		metric.WithDescription("Webhook posts, by result (sent, failed, dropped: queue full)."), metric.WithUnit("{notification}"))
	evTimeouts, err5 := m.Int64ObservableCounter("weft_rules.evidence_timeouts",
		metric.WithDescription("Notifications sent before their evidence lookup finished."), metric.WithUnit("{notification}"))
	rejected, err6 := m.Int64ObservableGauge("weft_rules.rejected_sources",
		metric.WithDescription("Invalid Kubernetes PrometheusRule objects, or a Kubernetes source never listed, left out of the running set (an object's last valid version may run)."), metric.WithUnit("{source}"))
	kubeReq, err7 := m.Int64ObservableCounter("weft_rules.kubernetes_requests",
		metric.WithDescription("Kubernetes API requests of the PrometheusRule source, by kind (list, watch; gone: watches answered 410, followed by a list; failed: lists and watches that failed)."), metric.WithUnit("{request}"))
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7); err != nil {
		return err
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		eng := e.running()
		if eng == nil {
			return nil
		}
		s := eng.Status()
		v := int64(0)
		if s.LastReloadSuccess {
			v = 1
		}
		o.ObserveInt64(ok, v)
		o.ObserveInt64(rulesN, int64(s.Rules))
		o.ObserveInt64(rejected, int64(len(s.Rejected)))
		st := eng.Stats()
		if st.Kubernetes {
			k := st.KubernetesRequests
			for kind, n := range map[string]int64{"list": k.Lists, "watch": k.Watches, "gone": k.Gone, "failed": k.Failures} {
				o.ObserveInt64(kubeReq, n, metric.WithAttributes(attribute.String("kind", kind)))
			}
		}
		if len(e.cfg.Webhooks) > 0 {
			o.ObserveInt64(webhook, st.WebhookSent, metric.WithAttributes(attribute.String("result", "sent")))
			o.ObserveInt64(webhook, st.WebhookFailed, metric.WithAttributes(attribute.String("result", "failed")))
			o.ObserveInt64(webhook, st.WebhookDropped, metric.WithAttributes(attribute.String("result", "dropped")))
		}
		o.ObserveInt64(evTimeouts, st.EvidenceTimeouts)
		return nil
	}, ok, rulesN, webhook, evTimeouts, rejected, kubeReq)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.telReg, e.reloadCount = reg, reloads
	e.mu.Unlock()
	return nil
}

// countReload is the engine's OnReload: one weft_rules.reloads per attempt.
func (e *Extension) countReload(result string) {
	e.mu.Lock()
	c := e.reloadCount
	e.mu.Unlock()
	if c != nil {
		c.Add(context.Background(), 1, metric.WithAttributes(attribute.String("result", result)))
	}
}
