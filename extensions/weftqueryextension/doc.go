// Package weftquery implements the weft_query extension: the node's HTTP
// query API over weft_store. It serves a Prometheus-compatible API (for
// Grafana's Prometheus datasource), a Jaeger-compatible trace API (Grafana's
// Jaeger datasource, the Jaeger UI), /api/v1/correlate/{traceID} (a trace
// with its logs and exemplars), /api/v1/logs, the status page and the
// probes, with query bounds (length, size, samples, concurrency, timeouts)
// and authentication (a static bearer token or Kubernetes TokenReview and
// SubjectAccessReview). Its server settings are the collector's confighttp
// (key http). This package is the front door (config, factory, lifecycle,
// the mux, auth and the bounds around every route); each API surface is a
// room under internal/ (README "Layout").
package weftqueryextension
