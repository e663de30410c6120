//go:build otelcol && !contrib

package main

import (
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/pprofextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/probabilisticsamplerprocessor"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/resourceprocessor"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/jaegerreceiver"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/kafkareceiver"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/zipkinreceiver"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/httpprovider"
	"go.opentelemetry.io/collector/confmap/provider/httpsprovider"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/forwardconnector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/zpagesextension"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/nopreceiver"
)

// The otelcol build is the component set of the "otelcol" (core)
// distribution of opentelemetry-collector-releases
// (distributions/otelcol/manifest.yaml), at the collector release weft
// uses, so that weft is compared with the binary a platform team would
// otherwise deploy. Left out because they do not resolve at v0.165 from
// the module proxy this project can reach (mixing collector releases is
// not supported): the zipkin exporter (not served at v0.165), the
// attributes, span and filter processors (they need an OTTL module that is
// not served at v0.165.1), the hostmetrics receiver and the file exporter
// (they build, but `go mod tidy` needs test-only modules of theirs that are
// not served). The build therefore is a lower bound of that
// distribution's size. Build it with `-tags otelcol,grpcnotrace`, the
// release's own build tags.

func extraReceivers() []receiver.Factory {
	return []receiver.Factory{
		nopreceiver.NewFactory(),
		jaegerreceiver.NewFactory(),
		kafkareceiver.NewFactory(),
		prometheusreceiver.NewFactory(),
		zipkinreceiver.NewFactory(),
	}
}

func extraExporters() []exporter.Factory {
	return []exporter.Factory{
		kafkaexporter.NewFactory(),
		prometheusexporter.NewFactory(),
		prometheusremotewriteexporter.NewFactory(),
	}
}

func extraProcessors() []processor.Factory {
	return []processor.Factory{
		resourceprocessor.NewFactory(),
		probabilisticsamplerprocessor.NewFactory(),
	}
}

func extraExtensions() []extension.Factory {
	return []extension.Factory{
		zpagesextension.NewFactory(),
		pprofextension.NewFactory(),
	}
}

func extraConnectors() []connector.Factory {
	return []connector.Factory{forwardconnector.NewFactory()}
}

func extraProviders() []confmap.ProviderFactory {
	return []confmap.ProviderFactory{httpprovider.NewFactory(), httpsprovider.NewFactory()}
}
