//go:build integration

package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestPeerOtelcolComponentSet builds bench/peer with the tags that select the
// otelcol core distribution's component set and checks, through the binary's
// own `components` command, that it holds exactly the set that
// components_otelcol.go documents: RESULTS.md compares weft against this
// build under that name.
func TestPeerOtelcolComponentSet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	root, err := repoRoot()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "otelcol")
	var log strings.Builder
	require.NoError(t, goBuild(ctx, filepath.Join(root, "bench", "peer"), bin, ".", "otelcol,grpcnotrace", &log), log.String())

	out, err := exec.CommandContext(ctx, bin, "components").Output()
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, yaml.Unmarshal(out, &got))
	names := func(kind string) []string {
		var ns []string
		list, _ := got[kind].([]any)
		for _, c := range list {
			m, _ := c.(map[string]any)
			ns = append(ns, m["name"].(string))
		}
		return ns
	}
	assert.ElementsMatch(t, []string{"jaeger", "kafka", "nop", "otlp", "prometheus", "zipkin"}, names("receivers"))
	assert.ElementsMatch(t, []string{"batch", "memory_limiter", "probabilistic_sampler", "resource"}, names("processors"))
	assert.ElementsMatch(t, []string{"debug", "kafka", "nop", "otlp_grpc", "otlp_http", "prometheus", "prometheus_remote_write"}, names("exporters"))
	assert.ElementsMatch(t, []string{"forward"}, names("connectors"))
	assert.ElementsMatch(t, []string{"health_check", "pprof", "zpages"}, names("extensions"))
}
