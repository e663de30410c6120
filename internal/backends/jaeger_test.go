package backends

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestFindPrefersEnv(t *testing.T) {
	t.Setenv("WEFT_JAEGER", "/opt/jaeger/bin/jaeger")
	p, err := FindJaeger()
	require.NoError(t, err)
	assert.Equal(t, "/opt/jaeger/bin/jaeger", p)
}

func TestFindExplainsInstall(t *testing.T) {
	t.Setenv("WEFT_PROMETHEUS", "")
	t.Setenv("PATH", t.TempDir())
	_, err := FindPrometheus()
	require.ErrorContains(t, err, "make tools")
	require.ErrorContains(t, err, "WEFT_PROMETHEUS")
}

// fakeBinary writes a program that fails at once, like a backend that
// rejects its configuration.
func fakeBinary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "backend")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\necho 'bad config' >&2\nexit 3\n"), 0o755))
	return p
}

func TestStartJaegerReportsEarlyExit(t *testing.T) {
	dir := t.TempDir()
	_, err := StartJaeger(t.Context(), fakeBinary(t), dir, nil)
	require.ErrorContains(t, err, "jaeger exited before it was ready")

	// The configuration it was given binds loopback ports only.
	cfg, err := os.ReadFile(filepath.Join(dir, "jaeger.yaml"))
	require.NoError(t, err)
	assert.NotContains(t, string(cfg), "0.0.0.0")
	assert.NotContains(t, string(cfg), "{{")
	assert.Regexp(t, `endpoint: 127\.0\.0\.1:\d+`, string(cfg))
}

func TestStartPrometheusReportsEarlyExit(t *testing.T) {
	dir := t.TempDir()
	_, err := StartPrometheus(t.Context(), fakeBinary(t), dir, "", nil)
	require.ErrorContains(t, err, "prometheus exited before it was ready")
	cfg, err := os.ReadFile(filepath.Join(dir, "prometheus.yml"))
	require.NoError(t, err)
	assert.Contains(t, string(cfg), "scrape_interval")
}
