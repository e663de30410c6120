package catchup

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProgress(t *testing.T) {
	dir := t.TempDir()
	now := time.UnixMilli(1_700_000_000_000)

	// No file: nothing is known to be sent.
	p, err := LoadProgress(dir, []string{"a", "b"}, now)
	require.NoError(t, err)
	assert.NoError(t, p.Damaged)
	assert.Equal(t, int64(NothingSent), p.Mark("a"))
	p.Advance("a", 100)
	p.Advance("a", 50) // never backwards
	p.Advance("b", 7)
	require.NoError(t, p.Save())

	// Read back; an endpoint added since starts at now.
	p, err = LoadProgress(dir, []string{"a", "b", "c"}, now)
	require.NoError(t, err)
	assert.Equal(t, int64(100), p.Mark("a"))
	assert.Equal(t, int64(7), p.Mark("b"))
	assert.Equal(t, now.UnixMilli(), p.Mark("c"))

	// A damaged file: everything the WAL holds is sent again, and said.
	require.NoError(t, os.WriteFile(filepath.Join(dir, File), []byte(`{"marks": {"a": 1`), 0o600))
	p, err = LoadProgress(dir, []string{"a"}, now)
	require.NoError(t, err)
	require.Error(t, p.Damaged)
	assert.Contains(t, p.Damaged.Error(), File)
	assert.Equal(t, int64(NothingSent), p.Mark("a"))

	// An unreadable file (a directory in its place) fails the start.
	dir2 := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir2, File), 0o700))
	_, err = LoadProgress(dir2, []string{"a"}, now)
	require.ErrorContains(t, err, File)
}
