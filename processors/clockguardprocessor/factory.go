// Package clockguard implements the clock_guard processor: it drops metric
// data points and exemplars stamped more than max_future_skew ahead of the
// node's clock, before any exporter sees them, and counts them by source.
//
// One future-stamped sample in a remote-write request makes a Prometheus
// receiver refuse the whole request (out of bounds), and the exporter then
// drops the normal samples sent with it; weft_store refuses such samples
// too. Putting this processor first in every metrics pipeline keeps one
// misbehaving scrape target or OTLP sender from taking other sources'
// samples down with its own.
package clockguardprocessor

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
)

// typeStr is the component type used in configuration files.
const typeStr = "clock_guard"

const defaultMaxFutureSkew = 10 * time.Minute

// NewFactory returns the clock_guard processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		component.MustNewType(typeStr),
		createDefaultConfig,
		processor.WithMetrics(createMetrics, component.StabilityLevelAlpha),
	)
}

func createDefaultConfig() component.Config {
	return &Config{MaxFutureSkew: defaultMaxFutureSkew}
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	g, err := newGuard(set.TelemetrySettings, cfg.(*Config), time.Now)
	if err != nil {
		return nil, err
	}
	return newProcessor(ctx, set, cfg, next, g)
}

func newProcessor(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics, g *guard) (processor.Metrics, error) {
	return processorhelper.NewMetrics(ctx, set, cfg, next, g.processMetrics,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithShutdown(g.shutdown))
}
