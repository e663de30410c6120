package weftremotewriteextension

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
)

// componentType is the extension's type name in the collector configuration.
var componentType = component.MustNewType("weft_remote_write")

const (
	// The agent's own defaults (tsdb/agent.DefaultOptions).
	defaultTruncateFrequency = 2 * time.Hour
	defaultMinWALTime        = 5 * time.Minute
	defaultMaxWALTime        = 4 * time.Hour
	// defaultFlushDeadline is Prometheus's --storage.remote.flush-deadline.
	defaultFlushDeadline = time.Minute
	defaultMaxFutureSkew = 10 * time.Minute
	// maxFutureSkewLimit is the largest max_future_skew, clock_guard's and
	// weft_store's too.
	maxFutureSkewLimit = 24 * time.Hour
)

// NewFactory returns the factory of the weft_remote_write extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(componentType, createDefaultConfig, createExtension, component.StabilityLevelDevelopment)
}

func createDefaultConfig() component.Config {
	return &Config{
		WAL: WALConfig{
			TruncateFrequency: defaultTruncateFrequency,
			MinWALTime:        defaultMinWALTime,
			MaxWALTime:        defaultMaxWALTime,
		},
		FlushDeadline: defaultFlushDeadline,
		MaxFutureSkew: defaultMaxFutureSkew,
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newRemoteWrite(set.TelemetrySettings, cfg.(*Config))
}
