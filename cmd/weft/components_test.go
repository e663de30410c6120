package main

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
)

func typeNames[T component.Factory](m map[component.Type]T) []string {
	var out []string
	for typ, f := range m {
		// Deprecated aliases (e.g. "otlp" for otlp_grpc) are in the map too;
		// list only canonical names.
		if f.Type() == typ {
			out = append(out, typ.String())
		}
	}
	slices.Sort(out)
	return out
}

func TestComponents(t *testing.T) {
	f, err := components()
	require.NoError(t, err)
	require.NotNil(t, f.Telemetry, "the collector refuses to start without a telemetry factory")

	assert.Equal(t, []string{"container_logs", "jaeger", "otlp", "pod_scrape", "zipkin"}, typeNames(f.Receivers))
	assert.Equal(t, []string{"batch", "clock_guard", "evidence_sampling", "memory_limiter", "trace_context", "weft_store"}, typeNames(f.Processors))
	assert.Equal(t, []string{"debug", "fluent_forward", "otlp_grpc", "otlp_http", "prometheus", "prometheus_remote_write", "weft_store"}, typeNames(f.Exporters))
	assert.Equal(t, []string{"file_storage", "health_check", "pprof", "weft_file_storage", "weft_pins", "weft_query", "weft_remote_write", "weft_rules", "weft_store", "zpages"}, typeNames(f.Extensions))
	assert.Equal(t, []string{"forward", "span_metrics"}, typeNames(f.Connectors))
}
