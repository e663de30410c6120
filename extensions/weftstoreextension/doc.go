// Package weftstore implements the weft_store extension: the node's local
// store of recent metrics (a Prometheus TSDB with exemplar storage and a
// write-ahead log), spans and log records (bounded in-memory indexes), all
// joined by trace ID. The weft_store exporter writes it; weft_query,
// weft_rules and alert evidence read it through Store's methods. Other
// components find it with FromHost.
//
// Its parts live under internal/: translate (pdata metrics to Prometheus
// series), index (the span and log indexes), otlpwire (the OTLP wire
// splitter the indexes use) and walsalvage (opening the TSDB over a
// damaged WAL); see README: code layout.
package weftstoreextension
