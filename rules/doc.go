// Package rules is weft's rules engine and the weft_rules extension: it
// loads Prometheus rule files and PrometheusRule manifests, evaluates
// alerting and recording rules on the node over weft_store's TSDB with
// Prometheus's own rule manager, attaches evidence (failing trace IDs, their
// spans and log lines) to firing alerts, and notifies Alertmanager and
// webhooks.
package rules
