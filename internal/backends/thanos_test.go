package backends

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFindThanosExplainsInstall(t *testing.T) {
	t.Setenv("WEFT_THANOS", filepath.Join(t.TempDir(), "thanos-v0.42.4"))
	t.Setenv("PATH", t.TempDir())
	_, err := FindThanos()
	require.ErrorContains(t, err, "make tools")
	require.ErrorContains(t, err, "WEFT_THANOS")
	require.ErrorContains(t, err, "does not exist")
}

func TestStartThanosQueryReportsEarlyExit(t *testing.T) {
	dir := t.TempDir()
	_, err := StartThanosQuery(t.Context(), fakeBinary(t), dir, []string{"127.0.0.1:10901", "127.0.0.1:10902"}, nil, nil)
	require.ErrorContains(t, err, "thanos query exited before it was ready")

	// The endpoints it was given are in its endpoint configuration file.
	cfg, err := os.ReadFile(filepath.Join(dir, "thanos-query-endpoints.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "endpoints:\n  - address: \"127.0.0.1:10901\"\n  - address: \"127.0.0.1:10902\"\n", string(cfg))
}

// The command line binds loopback ports only and carries the extra
// arguments after the launcher's own.
func TestStartThanosQueryStaysOnLoopback(t *testing.T) {
	dir := t.TempDir()
	argsOut := filepath.Join(dir, "args")
	p := filepath.Join(t.TempDir(), "thanos")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > "+argsOut+"\nexit 1\n"), 0o755))
	_, err := StartThanosQuery(t.Context(), p, dir, nil, []string{"--query.partial-response"}, nil)
	require.Error(t, err)
	b, err := os.ReadFile(argsOut)
	require.NoError(t, err)
	args := string(b)
	assert.Regexp(t, `(?m)^query$`, args)
	assert.Regexp(t, `(?m)^--http-address=127\.0\.0\.1:\d+$`, args)
	assert.Regexp(t, `(?m)^--grpc-address=127\.0\.0\.1:\d+$`, args)
	assert.Regexp(t, `(?m)^--query\.partial-response\n?\z`, args, "extra arguments come last")
	cfg, err := os.ReadFile(filepath.Join(dir, "thanos-query-endpoints.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "endpoints: []\n", string(cfg))
}

func TestStartThanosSidecarReportsEarlyExit(t *testing.T) {
	_, err := StartThanosSidecar(t.Context(), fakeBinary(t), "http://127.0.0.1:9", t.TempDir(), "", nil)
	require.ErrorContains(t, err, "thanos sidecar exited before it was ready")
}

// A Go-built Thanos without the slicelabels tag is refused; a program
// without Go build information is not judged.
func TestCheckThanosBuild(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	err = CheckThanosBuild(self) // this test binary: Go, no slicelabels tag
	require.ErrorContains(t, err, "built without the slicelabels tag")

	t.Setenv("WEFT_THANOS", self)
	_, err = FindThanos()
	require.ErrorContains(t, err, "slicelabels")

	require.NoError(t, CheckThanosBuild(fakeBinary(t)), "a shell script has no Go build information")
}
