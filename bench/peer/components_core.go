//go:build !contrib && !otelcol

package main

import (
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/receiver"
)

// The minimal build adds nothing to the shared set in main.go.

func extraReceivers() []receiver.Factory { return nil }

func extraExporters() []exporter.Factory { return nil }

func extraProcessors() []processor.Factory { return nil }

func extraExtensions() []extension.Factory { return nil }

func extraConnectors() []connector.Factory { return nil }

func extraProviders() []confmap.ProviderFactory { return nil }
