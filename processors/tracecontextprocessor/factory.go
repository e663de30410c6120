// Package tracecontext implements the trace_context processor: it sets a log
// record's trace ID, span ID and trace flags from IDs written in the record
// itself (JSON and logfmt fields, W3C traceparent, B3 headers, Istio/Envoy
// access logs).
package tracecontextprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
)

// typeStr is the component type used in configuration files.
const typeStr = "trace_context"

// NewFactory returns the trace_context processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		component.MustNewType(typeStr),
		createDefaultConfig,
		processor.WithLogs(createLogs, component.StabilityLevelAlpha),
	)
}

func createDefaultConfig() component.Config {
	return &Config{Body: true, Severity: true}
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	p := newLogsProcessor(cfg.(*Config))
	return processorhelper.NewLogs(ctx, set, cfg, next, p.processLogs,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}))
}
