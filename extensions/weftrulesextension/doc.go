// Package weftrules is the weft_rules extension, the front door of the
// rules engine (package rules): it finds the weft_store extension, builds
// and runs the engine, declares the weft_rules.* self-metrics and serves
// the engine's rules, alerts and health to weft_query (internal/rulesapi).
package weftrulesextension
