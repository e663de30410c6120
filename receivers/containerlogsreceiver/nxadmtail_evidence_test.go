package containerlogsreceiver

// Evidence for the report: github.com/nxadm/tail v1.4.11 (the pinned version)
// fails acceptance items even when wrapped, so the receiver reads files with
// its own poll-based reader (tailer.go) and does not use the library. Each
// test below asserts the library's faulty behaviour; if an upgrade fixes it,
// the test fails and the decision should be revisited.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nxadm/tail"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func startNxadmTail(t *testing.T, path string) *tail.Tail {
	t.Helper()
	tl, err := tail.TailFile(path, tail.Config{
		Follow: true, ReOpen: false, Poll: true, MustExist: true,
		Logger: tail.DiscardingLogger,
	})
	require.NoError(t, err)
	// Stop only: tl.Cleanup() starts the library's global inotify tracker
	// (even with Poll), a goroutine and an inotify instance that live for
	// the rest of the process (watch/inotify_tracker.go), which goleak flags.
	t.Cleanup(func() { _ = tl.Stop() })
	return tl
}

func recvLine(t *testing.T, tl *tail.Tail, within time.Duration) (string, bool) {
	t.Helper()
	select {
	case l, ok := <-tl.Lines:
		if !ok || l == nil {
			return "", false
		}
		return l.Text, true
	case <-time.After(within):
		return "", false
	}
}

// Acceptance 8 with the library: half a line at EOF is delivered as a line
// of its own (tail.go, tailFileSync: "if tail.Follow && line != \"\" {
// tail.sendLine(line)"), so a slow writer produces fragments.
func TestNxadmTailEvidenceSlowWriterFragments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	line := criLine(time.Now(), "stdout", "F", "the whole line, written slowly")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	tl := startNxadmTail(t, path)
	appendFile(t, path, line[:len(line)/2])
	got, ok := recvLine(t, tl, 3*time.Second)
	require.True(t, ok, "the library delivered nothing")
	assert.Equal(t, strings.TrimSuffix(line[:len(line)/2], "\n"), got, "library delivers the half line as a line")
}

// Acceptance 1/6 with the library: without ReOpen, a file renamed while the
// library waits at EOF is given up at once ("Stopping tail as file no longer
// exists"), and lines appended just before the rename are never read.
func TestNxadmTailEvidenceRenameLosesTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	require.NoError(t, os.WriteFile(path, []byte(seqLines("n", 0, 3)), 0o644))
	tl := startNxadmTail(t, path)
	for range 3 {
		_, ok := recvLine(t, tl, 3*time.Second)
		require.True(t, ok)
	}
	// Let the library reach EOF and wait for changes (the pause positions the
	// race this test is about), then append and rename at once,
	// as a runtime that writes right before the kubelet rotates.
	time.Sleep(100 * time.Millisecond)
	appendFile(t, path, seqLines("n", 3, 5))
	require.NoError(t, os.Rename(path, path+".20240101-000000"))
	var got []string
	for {
		l, ok := recvLine(t, tl, 2*time.Second)
		if !ok {
			break
		}
		got = append(got, l)
	}
	assert.Less(t, len(got), 5, "library lost lines appended before the rename (got %d of 5)", len(got))
}

// Acceptance 3/5 with the library: truncation is detected by size only
// (watch/polling.go, "prevSize > fw.Size"): a file truncated and rewritten
// past the old size between two polls is read on from the old offset, in
// the middle of a line of the new content.
func TestNxadmTailEvidenceTruncationBySizeOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	require.NoError(t, os.WriteFile(path, []byte(seqLines("old", 0, 3)), 0o644))
	tl := startNxadmTail(t, path)
	for range 3 {
		_, ok := recvLine(t, tl, 3*time.Second)
		require.True(t, ok)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	require.NoError(t, err)
	_, err = f.WriteString(seqLines("newer-content", 0, 10))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	first, ok := recvLine(t, tl, 3*time.Second)
	require.True(t, ok)
	var e entry
	assert.Error(t, parseCRI([]byte(first), &e), "library resumed mid-line in the new content: %q", first)
}
