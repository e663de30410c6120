package weftstoreprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/weftobs/weft/exporters/weftstoreexporter"
	"github.com/weftobs/weft/extensions/weftstoreextension"
)

var componentType = component.MustNewType("weft_store")

// Config is the weft_store exporter's: `store` names the weft_store
// extension to write into (default "weft_store").
type Config = weftstoreexporter.Config

// NewFactory returns the factory of the weft_store processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(componentType, createDefaultConfig,
		processor.WithTraces(createTraces, component.StabilityLevelDevelopment),
		processor.WithLogs(createLogs, component.StabilityLevelDevelopment),
	)
}

func createDefaultConfig() component.Config {
	return &Config{Store: component.NewID(componentType)}
}

func options(p *storeProcessor) []processorhelper.Option {
	return []processorhelper.Option{
		processorhelper.WithStart(p.store.Find),
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
	}
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	p := &storeProcessor{store: weftstoreextension.NewHandle(cfg.(*Config).Store)}
	return processorhelper.NewTraces(ctx, set, cfg, next, p.processTraces, options(p)...)
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	p := &storeProcessor{store: weftstoreextension.NewHandle(cfg.(*Config).Store)}
	return processorhelper.NewLogs(ctx, set, cfg, next, p.processLogs, options(p)...)
}
