package backends

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
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

func TestStartAlertmanagerReportsEarlyExit(t *testing.T) {
	dir := t.TempDir()
	_, err := StartAlertmanager(t.Context(), fakeBinary(t), dir, nil)
	require.ErrorContains(t, err, "alertmanager exited before it was ready")
	cfg, err := os.ReadFile(filepath.Join(dir, "alertmanager", "alertmanager.yml"))
	require.NoError(t, err)
	assert.Contains(t, string(cfg), "receiver: none")
}

func TestRunChromiumStaysOnLoopback(t *testing.T) {
	// A stand-in that prints its arguments shows what the browser is told.
	p := filepath.Join(t.TempDir(), "chromium")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n"), 0o755))
	out, err := RunChromium(t.Context(), p, "/tmp/profile", "http://127.0.0.1:1/", "--dump-dom")
	require.NoError(t, err)
	args := strings.Split(strings.TrimSpace(out), "\n")
	assert.Contains(t, args, "--proxy-server=http://127.0.0.1:9")
	assert.Contains(t, args, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
	assert.Contains(t, args, "--user-data-dir=/tmp/profile")
	assert.Equal(t, "http://127.0.0.1:1/", args[len(args)-1], "the target comes last")

	_, err = RunChromium(t.Context(), fakeBinary(t), t.TempDir(), "http://127.0.0.1:1/")
	require.ErrorContains(t, err, "bad config", "the browser's error output is in the error")
}
