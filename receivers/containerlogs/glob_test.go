package containerlogs

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// The cached glob finds what filepath.Glob finds, also after entries are
// added, removed and renamed.
func TestDirListerMatchesGlob(t *testing.T) {
	dir := t.TempDir()
	pattern := filepath.Join(dir, "*", "*", "*.log")
	var l dirLister
	check := func() {
		t.Helper()
		want, err := filepath.Glob(pattern)
		require.NoError(t, err)
		got, err := l.glob(pattern)
		require.NoError(t, err)
		sort.Strings(got)
		require.Equal(t, want, got)
	}
	check()
	a := podLogPath(t, dir, "ns", "a", "c")
	appendFile(t, a, "x\n")
	check()
	b := podLogPath(t, dir, "ns", "b", "c")
	appendFile(t, b, "x\n")
	appendFile(t, filepath.Join(filepath.Dir(b), "1.log"), "x\n")
	check()
	require.NoError(t, os.Rename(a, a+".20240101-000000"))
	check()
	appendFile(t, a, "y\n")
	check()
	require.NoError(t, os.RemoveAll(filepath.Dir(filepath.Dir(b))))
	check()
	_, err := l.glob("[")
	require.Error(t, err)
}
