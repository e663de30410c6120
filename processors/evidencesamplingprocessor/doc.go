// Package evidencesamplingprocessor implements the evidence_sampling
// processor, for traces and logs pipelines: export sampling that keeps
// whole traces on every node without a second tier of collectors.
//
// Two rules decide, and both give the same answer on every node:
//
//   - Consistent probability sampling on the trace ID (OpenTelemetry's
//     TraceState probability sampling: the trace ID's last 56 bits, or an
//     explicit rv, against the threshold of sampling_percentage).
//   - Pins (the weft_pins extension, spread by gossip): a trace with an
//     error span, an error log record or an alert citing it is kept
//     whatever the sampling says. This processor sets the pins of error
//     spans and error log records itself.
//
// Data of a trace that is neither sampled nor pinned waits in a bounded
// buffer for decision_wait, so that a pin set anywhere in the cluster
// within that time keeps the whole trace; then it is dropped. See
// README.md for the configuration, the decision and the buffer bound.
package evidencesamplingprocessor
