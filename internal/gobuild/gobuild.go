// Package gobuild builds weft's commands and the bench peers for tests and
// benchmark harnesses, all with the compile flags of the release build (the
// Dockerfile's and the Makefile's: CGO_ENABLED=0, -trimpath), which make
// test's own test binaries have too. One set of flags means one compile of
// each package per make test: the build cache keys every package by its
// flags and by those of everything it imports (not by build tags that
// select no other file), so a plain `go build` beside a -trimpath one
// compiled weft and the collector twice (about four minutes each on a cold
// 2-core machine). hack/test-build.sh compiles the same binaries ahead
// with these flags; bench/compare, a module of its own, repeats them
// (goBuild there).
package gobuild

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Env is what a build adds to the go command's environment.
var Env = []string{"CGO_ENABLED=0"}

// Flags are the build flags every build shares; link flags (-ldflags) do
// not change what is compiled and are left to the caller.
var Flags = []string{"-trimpath"}

// Command returns `go build -trimpath [-tags=tags] [extra...] -o out pkg`
// run in dir with Env added.
func Command(ctx context.Context, dir, out, pkg, tags string, extra ...string) *exec.Cmd {
	args := append([]string{"build"}, Flags...)
	if tags != "" {
		args = append(args, "-tags="+tags)
	}
	args = append(args, extra...)
	args = append(args, "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), Env...) // later entries win
	return cmd
}

// Build runs Command and returns an error carrying the command line and
// the go command's output when it fails.
func Build(ctx context.Context, dir, out, pkg, tags string, extra ...string) error {
	cmd := Command(ctx, dir, out, pkg, tags, extra...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s (in %s): %w\n%s", strings.Join(Env, " "), strings.Join(cmd.Args, " "), dir, err, b)
	}
	return nil
}
