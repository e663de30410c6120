// Command peer is the comparison point for weft's benchmarks: an OpenTelemetry
// Collector build of the same release as weft, in one of three component sets
// chosen by build tag (the tags are exclusive):
//
//   - no tag: only what the benchmarked paths use. The otlp receiver,
//     memory_limiter and batch processors, otlp_grpc, otlp_http, nop and debug
//     exporters, plus the health_check extension (so that a harness can wait
//     for it exactly as it waits for weft). The strictest peer: it carries no
//     code the path does not run.
//   - `-tags otelcol,grpcnotrace`: the otelcol core distribution's component
//     set (components_otelcol.go says which of its components do not resolve
//     here), built with the release's own tags. This is the binary a platform
//     team deploys when it says "otelcol core".
//   - `-tags contrib`: the minimal set plus the contrib components of issue
//     #10's side-by-side harness (bench/compare): the filelog receiver (with
//     its container operator), the prometheus and fluent_forward receivers and
//     the prometheus_remote_write exporter (components_contrib.go).
//
// It is a separate Go module (bench/peer/go.mod) and never a dependency of
// weft; `go build ./...` at the repository root does not see it.
package main

import (
	"fmt"
	"os"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/nopexporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

func components() (otelcol.Factories, error) {
	var err error
	factories := otelcol.Factories{
		// The collector refuses to start without a telemetry factory.
		Telemetry: otelconftelemetry.NewFactory(),
	}
	factories.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](
		append([]extension.Factory{healthcheckextension.NewFactory()}, extraExtensions()...)...,
	)
	if err != nil {
		return otelcol.Factories{}, err
	}
	factories.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](
		append([]receiver.Factory{otlpreceiver.NewFactory()}, extraReceivers()...)...,
	)
	if err != nil {
		return otelcol.Factories{}, err
	}
	factories.Processors, err = otelcol.MakeFactoryMap[processor.Factory](
		append([]processor.Factory{
			batchprocessor.NewFactory(),
			memorylimiterprocessor.NewFactory(),
		}, extraProcessors()...)...,
	)
	if err != nil {
		return otelcol.Factories{}, err
	}
	factories.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](
		append([]exporter.Factory{
			debugexporter.NewFactory(),
			nopexporter.NewFactory(),
			otlpexporter.NewFactory(),
			otlphttpexporter.NewFactory(),
		}, extraExporters()...)...,
	)
	if err != nil {
		return otelcol.Factories{}, err
	}
	factories.Connectors, err = otelcol.MakeFactoryMap[connector.Factory](extraConnectors()...)
	if err != nil {
		return otelcol.Factories{}, err
	}
	return factories, nil
}

func main() {
	settings := otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "peer",
			Description: "otelcol build (minimal set; -tags otelcol: the otelcol core distribution's set; -tags contrib: the side-by-side set) for weft's benchmarks",
			Version:     "v0.165.0",
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: append([]confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				}, extraProviders()...),
				DefaultScheme: "env",
			},
		},
	}
	if err := otelcol.NewCommand(settings).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
