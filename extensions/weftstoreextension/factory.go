package weftstoreextension

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
)

// componentType is the extension's type name in the collector configuration.
var componentType = component.MustNewType("weft_store")

const (
	defaultMetricsRetention = 30 * time.Minute
	defaultMaxExemplars     = 100_000
	defaultTracesMaxBytes   = 64 << 20
	defaultLogsMaxBytes     = 64 << 20
	// The pinned budgets are a quarter of the normal ones: evidence of a
	// few alerts' traces, not a second copy of the traffic.
	defaultPinnedTracesMaxBytes = defaultTracesMaxBytes / 4
	defaultPinnedLogsMaxBytes   = defaultLogsMaxBytes / 4
	defaultAppendableWindow     = time.Hour
	defaultMaxFutureSkew        = 10 * time.Minute
	// defaultMaxSeries bounds the head for a node: ~5 KiB per series for
	// the whole agent (bench/RESULTS.md, rules run: 300 MiB peak - 55 MiB
	// ready, over 50k series) puts 100k series at ~490 MiB, which with the
	// idle agent (55 MiB), the span and log budgets (2 x 64 MiB) and their
	// pinned budgets (2 x 16 MiB) stays under the DaemonSet's 768 MiB limit
	// (~705 MiB); 3.3x the reference node's 30k.
	defaultMaxSeries = 100_000
	// defaultNewSeriesPerCommit keeps a commit's series record near 1 MB
	// (~200 bytes per mesh sidecar series). One 100k-series commit left
	// the head ~45 MB of encoding buffers (bench/RESULTS.md, store-memory).
	defaultNewSeriesPerCommit = 4096
	// defaultQueryMaxSamples bounds one query near 100 MB (engine and
	// JSON, weft_query README "Query bounds"): two at once fit the
	// DaemonSet's memory. Prometheus's own 50 M would be ~5 GB.
	defaultQueryMaxSamples = 1_000_000
	// defaultQueryTimeout is the longest any reader may take; each
	// reader's own deadline (weft_query timeout 30s) is shorter.
	defaultQueryTimeout       = 2 * time.Minute
	defaultQueryLookbackDelta = 5 * time.Minute
)

// NewFactory returns the factory of the weft_store extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(componentType, createDefaultConfig, createExtension, component.StabilityLevelDevelopment)
}

func createDefaultConfig() component.Config {
	return &Config{
		MetricsRetention:     defaultMetricsRetention,
		MaxExemplars:         defaultMaxExemplars,
		TracesMaxBytes:       defaultTracesMaxBytes,
		LogsMaxBytes:         defaultLogsMaxBytes,
		PinnedTracesMaxBytes: defaultPinnedTracesMaxBytes,
		PinnedLogsMaxBytes:   defaultPinnedLogsMaxBytes,
		AppendableWindow:     defaultAppendableWindow,
		MaxFutureSkew:        defaultMaxFutureSkew,
		MaxSeries:            defaultMaxSeries,
		NewSeriesPerCommit:   defaultNewSeriesPerCommit,
		Query: QueryConfig{
			MaxSamples:    defaultQueryMaxSamples,
			Timeout:       defaultQueryTimeout,
			LookbackDelta: defaultQueryLookbackDelta,
		},
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newStore(set.TelemetrySettings, cfg.(*Config))
}
