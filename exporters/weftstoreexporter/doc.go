// Package weftstore implements the weft_store exporter: it writes traces,
// metrics and logs into the weft_store extension (extensions/weftstoreextension),
// the node's local store, and keeps nothing itself. It finds the extension
// with weftstoreextension.FromHost at Start; data that arrives before is refused,
// never dropped silently.
package weftstoreexporter
