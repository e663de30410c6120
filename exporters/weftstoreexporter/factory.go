package weftstoreexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

var (
	componentType = component.MustNewType("weft_store")
	// storeType is the type of the extension the exporter writes into.
	storeType = component.MustNewType("weft_store")
)

// NewFactory returns the factory of the weft_store exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(componentType, createDefaultConfig,
		exporter.WithTraces(createTraces, component.StabilityLevelDevelopment),
		exporter.WithMetrics(createMetrics, component.StabilityLevelDevelopment),
		exporter.WithLogs(createLogs, component.StabilityLevelDevelopment),
	)
}

func createDefaultConfig() component.Config {
	return &Config{Store: component.NewID(storeType)}
}

func options(e *storeExporter) []exporterhelper.Option {
	return []exporterhelper.Option{
		exporterhelper.WithStart(e.store.Find),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
	}
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	e := newExporter(cfg.(*Config))
	return exporterhelper.NewTraces(ctx, set, cfg, e.pushTraces, options(e)...)
}

func createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	e := newExporter(cfg.(*Config))
	return exporterhelper.NewMetrics(ctx, set, cfg, e.pushMetrics, options(e)...)
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	e := newExporter(cfg.(*Config))
	return exporterhelper.NewLogs(ctx, set, cfg, e.pushLogs, options(e)...)
}
