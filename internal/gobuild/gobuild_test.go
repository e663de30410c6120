package gobuild

import (
	"debug/elf"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCommand(t *testing.T) {
	cmd := Command(t.Context(), "d", "o", "./p", "a,b", "-ldflags", "-s")
	assert.Equal(t, []string{"go", "build", "-trimpath", "-tags=a,b", "-ldflags", "-s", "-o", "o", "./p"}, cmd.Args)
	assert.Equal(t, "d", cmd.Dir)
	assert.Equal(t, "CGO_ENABLED=0", cmd.Env[len(cmd.Env)-1], "last, so it wins over the caller's environment")
	assert.NotContains(t, Command(t.Context(), "d", "o", "./p", "").Args, "-tags=", "no tags, no flag")
}

// A program that uses the resolver comes out static (no interpreter, no
// shared libraries), as the release build's does, and runs; a package that
// does not compile gives an error that names the command and carries the
// compiler's message.
func TestBuild(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go command is needed on PATH")
	}
	out := filepath.Join(t.TempDir(), "hello")
	require.NoError(t, Build(t.Context(), "testdata/hello", out, ".", ""))
	f, err := elf.Open(out)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "a static binary has no interpreter")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs)
	got, err := exec.Command(out).Output()
	require.NoError(t, err)
	assert.Equal(t, "true true\n", string(got))

	err = Build(t.Context(), "testdata/hello", out, "./missing", "")
	require.Error(t, err)
	assert.ErrorContains(t, err, "CGO_ENABLED=0 go build -trimpath -o "+out+" ./missing")
	assert.ErrorContains(t, err, "missing")
}
