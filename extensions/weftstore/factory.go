package weftstore

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
)

// typeStr is the extension's type name in the collector configuration.
var componentType = component.MustNewType("weft_store")

const (
	defaultMetricsRetention = 30 * time.Minute
	defaultMaxExemplars     = 100_000
	defaultTracesMaxBytes   = 64 << 20
	defaultLogsMaxBytes     = 64 << 20
	defaultAppendableWindow = time.Hour
)

// NewFactory returns the factory of the weft_store extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(componentType, createDefaultConfig, createExtension, component.StabilityLevelDevelopment)
}

func createDefaultConfig() component.Config {
	return &Config{
		MetricsRetention: defaultMetricsRetention,
		MaxExemplars:     defaultMaxExemplars,
		TracesMaxBytes:   defaultTracesMaxBytes,
		LogsMaxBytes:     defaultLogsMaxBytes,
		AppendableWindow: defaultAppendableWindow,
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newStore(set.TelemetrySettings, cfg.(*Config))
}
