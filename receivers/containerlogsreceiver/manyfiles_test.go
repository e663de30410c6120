package containerlogsreceiver

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// inotifyFDs counts this process's inotify instances.
func inotifyFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

// Acceptance 9: 500 files without inotify. When no inotify instance can be
// created (max_user_instances or the descriptor limit reached) the receiver
// polls every file, so exhausted inotify limits cannot stop it nor make it
// exit (nxadm/tail exits the process there: nxadmwatch_evidence_test.go).
// The test makes the watcher's creation fail and checks that no inotify
// instance is opened, that the fall back is counted, and that every line of
// 500 growing files arrives exactly once.
func TestFiveHundredFilesPollOnly(t *testing.T) {
	dir := t.TempDir()
	const files, per = 500, 20
	paths := make([]string, files)
	tags := make([]string, files)
	for i := range files {
		tags[i] = fmt.Sprintf("f%03d", i)
		paths[i] = podLogPath(t, dir, "ns", tags[i], "c")
		appendFile(t, paths[i], seqLines(tags[i], 0, per))
	}
	before := inotifyFDs(t)
	s := &sink{}
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.PollInterval = 200 * time.Millisecond
	run := startReceiver(t, cfg, s, withoutNotifications)
	require.Eventually(t, func() bool { return s.len() == files*per }, 20*time.Second, 20*time.Millisecond)
	for i := range files {
		appendFile(t, paths[i], seqLines(tags[i], per, per))
	}
	require.Eventually(t, func() bool { return s.len() == 2*files*per }, 20*time.Second, 20*time.Millisecond)
	assert.Equal(t, before, inotifyFDs(t), "the receiver opened an inotify instance")
	assert.Equal(t, int64(1), run.counter(t, "container_logs.watch_fallbacks", watchUnavailable))
	time.Sleep(2 * cfg.PollInterval)
	checkExactlyOnce(t, s.records(), 2*per, tags...)
}
