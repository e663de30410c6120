package backends

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// find uses a candidate only if it is an executable regular file, whether it
// came from the environment or PATH, and falls through in that order.
func TestFindUsesOnlyExecutables(t *testing.T) {
	dir := t.TempDir()
	exe := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"), mode))
		return p
	}
	onPath := t.TempDir()
	pathJaeger := filepath.Join(onPath, "jaeger")
	require.NoError(t, os.WriteFile(pathJaeger, []byte("#!/bin/sh\n"), 0o755))
	good, plain := exe("good", 0o755), exe("plain", 0o644)

	for _, tc := range []struct {
		name, env, path string
		want, wantErr   string
	}{
		{name: "env executable", env: good, path: onPath, want: good},
		{name: "env missing, PATH has it", env: filepath.Join(dir, "nope"), path: onPath, want: pathJaeger},
		{name: "env not executable, PATH has it", env: plain, path: onPath, want: pathJaeger},
		{name: "env a directory, PATH has it", env: dir, path: onPath, want: pathJaeger},
		{name: "env unset, PATH has it", path: onPath, want: pathJaeger},
		{name: "env missing, PATH empty", env: filepath.Join(dir, "nope"), path: t.TempDir(),
			wantErr: "$WEFT_JAEGER=" + filepath.Join(dir, "nope") + ": does not exist; no jaeger on PATH): run `make tools`"},
		{name: "env not executable, PATH empty", env: plain, path: t.TempDir(), wantErr: plain + ": not executable"},
		{name: "nothing", path: t.TempDir(), wantErr: "jaeger binary not found (no jaeger on PATH)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WEFT_JAEGER", tc.env)
			t.Setenv("PATH", tc.path)
			got, err := FindJaeger()
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
