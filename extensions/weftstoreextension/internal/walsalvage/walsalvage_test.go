package walsalvage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The salvage of damaged checkpoints and segments through a real start is
// tested with the store: weftstore's wal_test.go.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestWritePrefix: the salvaged copy holds the good bytes, zero-padded to
// the end of their page, and replaces the file atomically.
func TestWritePrefix(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	data := []byte(strings.Repeat("x", walPageSize+100))
	require.NoError(t, os.WriteFile(src, data, 0o640))
	require.NoError(t, os.WriteFile(dst, []byte("damaged"), 0o640))

	require.NoError(t, writePrefix(src, dst, walPageSize+10))
	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	require.Len(t, got, 2*walPageSize)
	assert.Equal(t, data[:walPageSize+10], got[:walPageSize+10])
	assert.Equal(t, make([]byte, walPageSize-10), got[walPageSize+10:])
	assert.NoFileExists(t, dst+".salvage")
}

// TestDamagedDirMove: files set aside keep their path relative to the
// store directory, all in one damaged-<time>- folder per start.
func TestDamagedDirMove(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"wal/00000003", "wal/checkpoint.00000002/00000000"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o750))
		require.NoError(t, os.WriteFile(filepath.Join(root, p), []byte(p), 0o640))
	}
	d := &damagedDir{root: root, now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	var folders []string
	for _, p := range []string{"wal/00000003", "wal/checkpoint.00000002/00000000"} {
		moved, err := d.move(filepath.Join(root, p))
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(moved, "damaged-20250102T030405Z-"), moved)
		assert.Equal(t, p, filepath.ToSlash(strings.SplitN(moved, string(filepath.Separator), 2)[1]))
		assert.NoFileExists(t, filepath.Join(root, p))
		b, err := os.ReadFile(filepath.Join(root, moved))
		require.NoError(t, err)
		assert.Equal(t, p, string(b))
		folders = append(folders, strings.SplitN(moved, string(filepath.Separator), 2)[0])
	}
	assert.Equal(t, folders[0], folders[1], "one folder per start")
	assert.Equal(t, int64(len("wal/00000003")+len("wal/checkpoint.00000002/00000000")), dirBytes(filepath.Join(root, folders[0])))
}
