// Package weftstore implements the weft_store exporter: it writes traces,
// metrics and logs into the weft_store extension (extensions/weftstore),
// the node's local store, and keeps nothing itself. It finds the extension
// with weftstore.FromHost at Start; data that arrives before is refused,
// never dropped silently.
package weftstore
