// Command weft-demo runs the weft agent on a simulated node, the way a user
// runs it: it starts the simulated node (internal/simnode: CRI container
// logs of a small Istio mesh app and a Knative function, Envoy and
// application metrics endpoints, OTLP spans, one W3C trace ID across all
// three), the backends it finds (Jaeger, Prometheus, Alertmanager), writes an
// agent configuration for them on free loopback ports and runs the unmodified
// weft binary on it as a child process (`weft --config FILE`). With
// --nodes N it simulates N nodes and runs one agent per node, the agents
// gossiping pins (weft_pins) so that a failing trace is kept on every node
// that holds part of it.
//
// The demo rig lives here, outside the product: the weft binary that runs
// as a DaemonSet links neither the simulator nor the process launchers.
// `make demo` builds both binaries and runs this one.
package main

import "os"

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
