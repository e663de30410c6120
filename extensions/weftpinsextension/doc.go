// Package weftpinsextension implements the weft_pins extension: the node's
// bounded set of pinned trace IDs — traces that became evidence (an alert
// cites them, a span or a log line of theirs is an error) — shared with
// the other agents of the cluster by gossip (hashicorp/memberlist:
// encrypted broadcasts and push/pull state sync).
//
// Other components find it with FromHost and use four calls: Pin (mark a
// trace as evidence until a time), Pinned (the hot path, for the store's
// eviction and export sampling: no allocation), PinnedUntil, and OnPin (a
// callback for every new or extended pin, local or from a peer, so a
// sampling buffer can keep a trace it still holds). See README.md for the
// configuration, the self-metrics, the wire format and the security model.
package weftpinsextension
