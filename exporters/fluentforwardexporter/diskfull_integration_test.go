//go:build integration

package fluentforwardexporter

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// mountTmpfs mounts a tmpfs of size bytes at a new directory and unmounts
// it at cleanup. It needs root (mount(2), CAP_SYS_ADMIN): the test fails,
// never skips, without it.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+itoa(size), "tmpfs", dir).CombinedOutput()
	require.NoError(t, err, "mount a %d-byte tmpfs at %s: %s\n"+
		"This test makes the disk really full; run it as root on a machine or VM "+
		"that allows mounting tmpfs (a container needs --privileged or CAP_SYS_ADMIN).", size, dir, out)
	t.Cleanup(func() {
		out, err := exec.Command("umount", dir).CombinedOutput()
		assert.NoError(t, err, "umount %s: %s", dir, out)
	})
	return dir
}

func itoa(n int) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

// fill writes a file of zeros until the file system is full, then frees
// keep bytes; it returns the file's path.
func fill(t *testing.T, dir string, keep int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	require.NoError(t, err)
	buf := make([]byte, 4096)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			break
		}
	}
	require.NoError(t, f.Truncate(max(n-keep, 0)))
	require.NoError(t, f.Close())
	return path
}

// TestDiskFull: on a really full file system (tmpfs), the queue refuses new
// batches with an error to the caller (backpressure: the receivers keep
// their data and retry) and the exporter counts the records it refused,
// exactly; the agent does not crash, restarts while the disk is still
// full, and once space returns and the server is up every record that
// was accepted is delivered, exactly once.
func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, 8<<20)
	queue := filepath.Join(dir, "queue")
	require.NoError(t, os.Mkdir(queue, 0o700))
	addr := closedAddr(t) // the server is down
	tune := func(c map[string]any) {
		c["preallocate"] = 128 << 10
		c["reserve"] = 64 << 10
	}
	a := startAgent(t, addr, queue, tune)
	filler := fill(t, dir, 1<<20) // about 1 MiB left

	const perBatch = 300
	var accepted, refused []int
	for b := 0; len(refused) < 5; b++ {
		require.Less(t, b, 1000, "the disk never filled")
		err := a.exp.ConsumeLogs(t.Context(), seqLogs(b*perBatch, perBatch))
		if err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			require.True(t, errors.Is(err, storage.ErrStorageFull), "%v", err)
			refused = append(refused, b)
			continue
		}
		require.Empty(t, refused, "nothing is accepted again while the disk is full")
		accepted = append(accepted, b)
	}
	require.NotEmpty(t, accepted)
	assert.Equal(t, int64(len(refused)*perBatch), a.sum(t, droppedMetric, reasonNotPersisted),
		"every refused record counted")
	assert.Positive(t, a.sum(t, "weft_file_storage.write_failures", "disk_full"))
	t.Logf("accepted %d batches, refused %d while full", len(accepted), len(refused))

	// Restart while the disk is still full: the queue opens and keeps its items.
	a.stop(t)
	a2 := startAgent(t, addr, queue, tune)
	assert.Zero(t, a2.sum(t, "weft_file_storage.records_lost", ""))

	// Space returns, then the server.
	require.NoError(t, os.Remove(filler))
	srv := newFwdServerAt(t, addr, modeAck)
	defer a2.stop(t)
	want := len(accepted) * perBatch
	require.Eventually(t, func() bool { return ackedSeqs(srv) == want }, 30*time.Second, 10*time.Millisecond)
	require.Never(t, func() bool { return ackedSeqs(srv) > want }, 300*time.Millisecond, 10*time.Millisecond)
	evs, _, _, _ := srv.snapshot()
	seqs := seqsOf(t, evs)
	for _, b := range accepted {
		for i := b * perBatch; i < (b+1)*perBatch; i++ {
			require.Equal(t, 1, seqs[int64(i)], "accepted record %d", i)
		}
	}
	for _, b := range refused {
		assert.Zero(t, seqs[int64(b*perBatch)], "refused batch %d was not sent", b)
	}
	// New batches are accepted again.
	require.NoError(t, a2.exp.ConsumeLogs(t.Context(), seqLogs(1_000_000, 10)))
	require.Eventually(t, func() bool { return ackedSeqs(srv) == want+10 }, 10*time.Second, 10*time.Millisecond)
}
