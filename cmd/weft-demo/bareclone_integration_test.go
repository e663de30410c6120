//go:build integration

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMakeDemoOnBareClone is a new user's first command: the repository's
// tracked files in an empty directory with nothing beside it, HOME an empty
// directory (no tool cache, no Go settings), `make demo` for 30 s. Only the
// Go module and build caches are passed explicitly, so nothing is
// downloaded (GOPROXY=off) or compiled twice; every backend variable names
// a file that does not exist. The demo must run, print its URLs, and say
// for each backend it skipped why and how to get it.
func TestMakeDemoOnBareClone(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	require.NoError(t, err, "make is needed to run `make demo`")
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)

	top := t.TempDir()
	clone := filepath.Join(top, "weft")
	home := filepath.Join(top, "home")
	require.NoError(t, os.MkdirAll(home, 0o755))
	copyTrackedFiles(t, clone)

	goEnv := func(name string) string {
		out, err := exec.Command(goBin, "env", name).Output()
		require.NoError(t, err)
		return strings.TrimSpace(string(out))
	}
	env := []string{
		"HOME=" + home,
		"GOMODCACHE=" + goEnv("GOMODCACHE"),
		"GOCACHE=" + goEnv("GOCACHE"),
		"GOPROXY=off",
		"GOTOOLCHAIN=local",
		"GOFLAGS=-buildvcs=false",
		"WEFT_PROMETHEUS=" + filepath.Join(top, "missing", "prometheus"),
		"WEFT_ALERTMANAGER=" + filepath.Join(top, "missing", "alertmanager"),
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "GO") || strings.HasPrefix(name, "WEFT_") || strings.HasPrefix(name, "XDG_") ||
			name == "HOME" || name == "TOOLS_DIR" || name == "MAKEFLAGS" || name == "MFLAGS" || name == "MAKELEVEL" {
			continue
		}
		env = append(env, kv)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, makeBin, "demo", `DEMO_FLAGS=--duration 30s`)
	cmd.Dir, cmd.Env = clone, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	started := time.Now()
	err = cmd.Run()
	text := out.String()
	t.Logf("make demo took %s; its skip lines:\n%s", time.Since(started).Round(time.Second),
		strings.Join(regexp.MustCompile(`(?m)^weft demo: \w+ skipped: .*$`).FindAllString(text, -1), "\n"))
	require.NoError(t, err, "make demo on a bare clone failed:\n%s", text)

	assert.Regexp(t, `status page +http://127\.0\.0\.1:\d+/`, text)
	assert.Regexp(t, `agent health +http://127\.0\.0\.1:\d+/`, text)
	assert.Contains(t, text, "Stops after 30s.")
	assert.Contains(t, text, "weft demo: stopped: requests=")
	// The tool cache under the empty HOME has no Jaeger, and jaeger is never
	// on PATH: its skip line is certain. Prometheus and Alertmanager are
	// either found on PATH (make tools installs them) and shown, or skipped
	// with a line.
	skip := func(name string) string {
		return regexp.MustCompile(`(?m)^weft demo: ` + name + ` skipped: .*$`).FindString(text)
	}
	if line := skip("jaeger"); assert.NotEmpty(t, line, "no jaeger skip line in:\n%s", text) {
		assert.Contains(t, line, filepath.Join(home, ".cache", "weft", "tools"), "the line names the missing tool-cache binary")
		assert.Contains(t, line, "make tools")
	}
	for name, shown := range map[string]string{"prometheus": "Prometheus          http://", "alertmanager": "Alertmanager receives it"} {
		line := skip(name)
		if line == "" {
			assert.Contains(t, text, shown, "%s neither skipped nor shown:\n%s", name, text)
			continue
		}
		assert.Contains(t, line, "make tools")
		assert.NotContains(t, text, shown)
	}
	// Nothing was written beside the clone, and nothing outside it was read
	// (there is nothing beside it to read).
	ents, err := os.ReadDir(top)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"weft", "home"}, names)
}

// copyTrackedFiles copies the files git tracks in this repository, as they
// are in the work tree, into dst: what a clone holds.
func copyTrackedFiles(t *testing.T, dst string) {
	t.Helper()
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	require.NoError(t, err, "the test runs inside the weft repository")
	root := strings.TrimSpace(string(top))
	list, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	require.NoError(t, err)
	n := 0
	for _, rel := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		src := filepath.Join(root, rel)
		fi, err := os.Lstat(src)
		if os.IsNotExist(err) {
			continue // deleted in the work tree
		}
		require.NoError(t, err)
		target := filepath.Join(dst, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(target), 0o755))
		if fi.Mode()&os.ModeSymlink != 0 {
			link, err := os.Readlink(src)
			require.NoError(t, err)
			require.NoError(t, os.Symlink(link, target))
			continue
		}
		in, err := os.Open(src)
		require.NoError(t, err)
		o, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
		require.NoError(t, err)
		_, err = io.Copy(o, in)
		require.NoError(t, err)
		require.NoError(t, errors.Join(in.Close(), o.Close()))
		n++
	}
	require.Positive(t, n)
}
