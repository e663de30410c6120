package evidencesamplingprocessor

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
)

// typeStr is the component type used in configuration files.
const typeStr = "evidence_sampling"

var componentType = component.MustNewType(typeStr)

const (
	defaultDecisionWait = 10 * time.Second
	// defaultMaxBuffered: at 5k spans/s a 10 s wait holds 50k spans of
	// unsampled traces; twice that is the bound.
	defaultMaxBuffered = 100_000
	// defaultMaxBufferedBytes: 32 MiB per signal (≈ 500 B per span
	// measured with resource attributes of a Kubernetes pod).
	defaultMaxBufferedBytes = 32 << 20
)

// NewFactory returns the factory of the evidence_sampling processor, for
// traces and logs pipelines.
func NewFactory() processor.Factory {
	return processor.NewFactory(componentType, createDefaultConfig,
		processor.WithTraces(createTraces, component.StabilityLevelDevelopment),
		processor.WithLogs(createLogs, component.StabilityLevelDevelopment))
}

func createDefaultConfig() component.Config {
	return &Config{
		SamplingPercentage:    100,
		DecisionWait:          defaultDecisionWait,
		PinLogSeverity:        "ERROR",
		MaxBufferedSpans:      defaultMaxBuffered,
		MaxBufferedSpanBytes:  defaultMaxBufferedBytes,
		MaxBufferedLogRecords: defaultMaxBuffered,
		MaxBufferedLogBytes:   defaultMaxBufferedBytes,
	}
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	p, err := newTracesProcessor(set, cfg.(*Config), next)
	if err != nil {
		return nil, err
	}
	return wrapTraces(ctx, set, cfg, next, p)
}

// wrapTraces puts the processorhelper front (obsreport, context) on p.
func wrapTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces, p *tracesProcessor) (processor.Traces, error) {
	return processorhelper.NewTraces(ctx, set, cfg, next, p.process,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithStart(p.start), processorhelper.WithShutdown(p.shutdown))
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	p, err := newLogsProcessor(set, cfg.(*Config), next)
	if err != nil {
		return nil, err
	}
	return wrapLogs(ctx, set, cfg, next, p)
}

// wrapLogs puts the processorhelper front (obsreport, context) on p.
func wrapLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs, p *logsProcessor) (processor.Logs, error) {
	return processorhelper.NewLogs(ctx, set, cfg, next, p.process,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithStart(p.start), processorhelper.WithShutdown(p.shutdown))
}
