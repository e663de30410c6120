// Command weft is the weft node agent: a custom OpenTelemetry Collector
// distribution for Kubernetes nodes with service-mesh sidecars and functions.
package main

import "os"

func main() {
	applyTimerSlack()
	setGCPercent(os.LookupEnv)
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
