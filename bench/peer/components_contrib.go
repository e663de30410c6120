//go:build contrib && !otelcol

package main

import (
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/filelogreceiver"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/fluentforwardreceiver"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/receiver"
)

// extraReceivers are the contrib receivers weft's own receivers are measured
// against: filelog (container operator) for container_logs, prometheus for
// pod_scrape, fluent_forward for the fluent_forward exporter's tests.
func extraReceivers() []receiver.Factory {
	return []receiver.Factory{
		filelogreceiver.NewFactory(),
		fluentforwardreceiver.NewFactory(),
		prometheusreceiver.NewFactory(),
	}
}

// extraExporters: remote write, the path weft's metrics take too.
func extraExporters() []exporter.Factory {
	return []exporter.Factory{
		prometheusremotewriteexporter.NewFactory(),
	}
}

func extraProcessors() []processor.Factory { return nil }

func extraExtensions() []extension.Factory { return nil }

func extraConnectors() []connector.Factory { return nil }

func extraProviders() []confmap.ProviderFactory { return nil }
