package jaegerproc

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
	p, err := Find()
	require.NoError(t, err)
	assert.Equal(t, "/opt/jaeger/bin/jaeger", p)
}

func TestFindExplainsInstall(t *testing.T) {
	t.Setenv("WEFT_JAEGER", "")
	t.Setenv("PATH", t.TempDir())
	_, err := Find()
	require.ErrorContains(t, err, "make tools")
}

func TestStartReportsEarlyExit(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "jaeger")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho 'bad config' >&2\nexit 3\n"), 0o755))
	_, err := Start(t.Context(), fake, dir, nil)
	require.ErrorContains(t, err, "exited before it was ready")

	// The configuration it was given binds loopback ports only.
	cfg, err := os.ReadFile(filepath.Join(dir, "jaeger.yaml"))
	require.NoError(t, err)
	assert.NotContains(t, string(cfg), "0.0.0.0")
	assert.NotContains(t, string(cfg), "{{")
	assert.Regexp(t, `endpoint: 127\.0\.0\.1:\d+`, string(cfg))
}
