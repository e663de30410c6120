// Package weftstore implements the weft_store extension: the node's local
// store of recent metrics (a Prometheus TSDB and a write-ahead log, with
// an exemplar storage of its own), spans and log records (bounded
// in-memory indexes), all joined by trace ID. The weft_store exporter writes it; weft_query,
// weft_rules and alert evidence read it through Store's methods. Other
// components find it with FromHost.
//
// Its parts live under internal/: translate (pdata metrics to Prometheus
// series), index (the span and log indexes), otlpwire (the OTLP wire
// splitter the indexes use), walsalvage (opening the TSDB over a damaged
// WAL) and exemplars (the exemplar ring and its WAL); see README: code
// layout.
package weftstoreextension
