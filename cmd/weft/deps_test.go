package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBinaryLinksNoDemoRig: the DaemonSet binary holds the product. The
// demo's simulated node and configuration, the launchers of Jaeger,
// Prometheus, Alertmanager and Chromium, and the loopback port picker are
// for cmd/weft-demo, tests and benchmarks; none may be linked into weft.
func TestBinaryLinksNoDemoRig(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".")
	out, err := cmd.Output()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		t.Fatalf("go list -deps: %v\n%s", err, exitErr.Stderr)
	}
	require.NoError(t, err)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/weftobs/weft/cmd/weft", "go list names the package itself")
	for _, rig := range []string{"cmd/weft-demo", "internal/simnode", "internal/democonfig", "internal/backends", "internal/loopback"} {
		assert.NotContains(t, deps, "github.com/weftobs/weft/"+rig, "weft links the demo or test rig")
	}
}
