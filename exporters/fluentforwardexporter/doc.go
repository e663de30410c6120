// Package fluentforward implements the fluent_forward exporter: it sends
// logs to Fluentd or Fluent Bit over the forward protocol v1, one
// Forward-mode message per tag with chunk acknowledgements, failing over
// between endpoints, over TCP or TLS, with the optional shared-key
// handshake.
//
// A batch takes one path: exporterhelper's sending queue (in memory, or
// persistent on a storage extension such as weft_file_storage) and batcher,
// then exporterhelper's retry_on_failure and timeout around one send
// attempt. An attempt picks a connection (dialing the endpoints in failover
// order) and waits for each message's ack; a failed attempt returns a
// retryable error with the records not yet acknowledged, a batch that can
// never be sent a permanent one. Every record given up on is counted in
// fluent_forward.records_dropped by reason (telemetry.go).
package fluentforwardexporter
