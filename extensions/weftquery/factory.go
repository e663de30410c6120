package weftquery

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
)

// componentType is the extension's type name in the collector configuration.
var componentType = component.MustNewType("weft_query")

const (
	defaultEndpoint        = "localhost:8686"
	defaultMaxRequestBytes = 1 << 20
	defaultTimeout         = 30 * time.Second
)

// NewFactory returns the factory of the weft_query extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(componentType, createDefaultConfig, createExtension, component.StabilityLevelDevelopment)
}

func createDefaultConfig() component.Config {
	return &Config{
		Endpoint:        defaultEndpoint,
		Store:           component.MustNewID("weft_store"),
		MaxRequestBytes: defaultMaxRequestBytes,
		Timeout:         defaultTimeout,
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newServer(set.TelemetrySettings, cfg.(*Config)), nil
}
