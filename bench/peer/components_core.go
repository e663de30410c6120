//go:build !contrib

package main

import (
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/receiver"
)

// The core build adds nothing to the shared set in main.go.

func extraReceivers() []receiver.Factory { return nil }

func extraExporters() []exporter.Factory { return nil }
