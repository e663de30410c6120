package containerlogsreceiver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// 2,000 files appear in bursts in pod directories (new pods among them)
// while the receiver runs; every file's lines arrive exactly once. 400 of
// them are created by the lister's hook right after a rescan listed their
// directory, and the directory's mtime is set back to the one that listing
// saw, as a filesystem clock would leave it when both changes fall in one
// tick (only while the listing is within racyMargin of that mtime, which is
// when a coarse clock can do this). The last 80 are made after the test's
// own writes ended, so no later change reveals them. With listings reused on
// an unchanged mtime alone, these files are never found: the test fails.
// That is the case without change notifications (notify=unavailable); with
// them, the files' create events make the listings stale.
func TestBurstsOfNewFilesAllRead(t *testing.T) { forNotifyModes(t, testBurstsOfNewFilesAllRead) }

func testBurstsOfNewFilesAllRead(t *testing.T, mode func(*logsReceiver)) {
	dir := t.TempDir()
	const (
		firstPods = 6
		bursts    = 16
		perBurst  = 100 // created by the test, between rescans
		hidden    = 400 // created right after a listing, mtime kept
		last      = 80  // of hidden, made after the test's last write
		lines     = 3
	)
	var (
		mu      sync.Mutex
		tags    []string
		budget  int // hidden files the hook may have created so far
		made    int
		forged  int
		hookErr error
	)
	listed := make(chan struct{}, 1)
	hook := func(d string, mtime, _ time.Time) {
		select {
		case listed <- struct{}{}:
		default:
		}
		if filepath.Dir(filepath.Dir(d)) != dir {
			return // a container directory: <dir>/<pod>/<container>
		}
		mu.Lock()
		defer mu.Unlock()
		if made >= budget || hookErr != nil {
			return
		}
		tag := fmt.Sprintf("h%04d", made)
		made++
		if err := os.WriteFile(filepath.Join(d, tag+".log"), []byte(seqLines(tag, 0, lines)), 0o644); err != nil {
			hookErr = err
			return
		}
		tags = append(tags, tag)
		if time.Since(mtime) < racyMargin { // a clock of racyMargin's tick stamps this create with mtime
			hookErr = os.Chtimes(d, time.Time{}, mtime)
			forged++
		}
	}
	s := &sink{}
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.PollInterval = time.Second     // 2,000 idle files: keep their polls cheap
	cfg.FullRescanInterval = time.Hour // only the racily-clean rule can find the hidden files
	startReceiver(t, cfg, s, mode, func(r *logsReceiver) { r.lister.listed = hook })

	n := 0
	for b := range bursts {
		mu.Lock()
		budget += (hidden - last) / bursts
		mu.Unlock()
		pods := firstPods + b/4 // a new pod every 4 bursts
		for range perBurst {
			tag := fmt.Sprintf("w%04d", n)
			d := filepath.Join(dir, fmt.Sprintf("ns_pod%d_uid%d", n%pods, n%pods), "c")
			require.NoError(t, os.MkdirAll(d, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(d, tag+".log"), []byte(seqLines(tag, 0, lines)), 0o644))
			mu.Lock()
			tags = append(tags, tag)
			mu.Unlock()
			n++
		}
		select { // the next burst after the next listing
		case <-listed:
		case <-time.After(10 * time.Second):
			t.Fatal("no directory listed within 10s")
		}
	}
	// The last hidden files: one more file in each container directory
	// makes a rescan list it, and the hook hides the rest after that.
	mu.Lock()
	budget += last
	mu.Unlock()
	dirs, err := filepath.Glob(filepath.Join(dir, "*", "c"))
	require.NoError(t, err)
	for _, d := range dirs {
		tag := fmt.Sprintf("w%04d", n)
		require.NoError(t, os.WriteFile(filepath.Join(d, tag+".log"), []byte(seqLines(tag, 0, lines)), 0o644))
		mu.Lock()
		tags = append(tags, tag)
		mu.Unlock()
		n++
	}
	total := n + hidden
	ok := assert.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(tags) == total && s.len() == total*lines
	}, 2*time.Minute, 20*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.NoError(t, hookErr)
	if !ok {
		got := map[string]bool{}
		for _, r := range s.records() {
			got[r.body[:strings.LastIndexByte(r.body, '-')]] = true
		}
		var missing []string
		for _, tag := range tags {
			if !got[tag] {
				missing = append(missing, tag)
			}
		}
		t.Fatalf("%d of %d files created, %d of %d records received; files never read: %v",
			len(tags), total, s.len(), total*lines, missing)
	}
	require.Positive(t, forged, "no listing raced a create: the test proved nothing")
	t.Logf("%d files, %d of them hidden by a kept mtime", len(tags), forged)
	checkExactlyOnce(t, s.records(), lines, tags...)
}

// skipCounts is paths_skipped by (path, reason).
func skipCounts(t *testing.T, run *running) map[[2]string]int64 {
	t.Helper()
	out := map[[2]string]int64{}
	m, err := run.tel.GetMetric("container_logs.paths_skipped")
	if err != nil {
		return out
	}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		p, _ := dp.Attributes.Value("log.file.path")
		r, _ := dp.Attributes.Value("reason")
		out[[2]string{p.AsString(), r.AsString()}] += dp.Value
	}
	return out
}

// Each kind of path that include matches but that cannot be read is
// counted once in paths_skipped with its reason and logged once, however
// many rescans find it, while a readable file beside it is read.
// Everything is real except permission and open_error: the tests run as
// root, whom no file refuses, so for those the open is made to fail.
func TestSkippedPathsCountedAndLoggedOnce(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		// make creates the bad path in container directory d and returns it.
		make func(t *testing.T, d string) string
		// open, if set, replaces os.Open for the bad path.
		openErr error
		// vanish removes the bad path right after the first listing with it.
		vanish bool
	}{
		{name: "symlink loop", reason: skipSymlinkLoop, make: func(t *testing.T, d string) string {
			p := filepath.Join(d, "loop.log")
			require.NoError(t, os.Symlink("loop.log", p))
			return p
		}},
		{name: "symlink loop as a directory of the pattern", reason: skipSymlinkLoop, make: func(t *testing.T, d string) string {
			p := filepath.Join(filepath.Dir(d), "looping")
			require.NoError(t, os.Symlink("looping", p))
			return p
		}},
		{name: "dangling symlink", reason: skipDangling, make: func(t *testing.T, d string) string {
			p := filepath.Join(d, "dangling.log")
			require.NoError(t, os.Symlink("/nonexistent-target-of-weft-test", p))
			return p
		}},
		{name: "fifo", reason: skipSpecial, make: func(t *testing.T, d string) string {
			p := filepath.Join(d, "fifo.log")
			require.NoError(t, syscall.Mkfifo(p, 0o644))
			return p
		}},
		{name: "socket", reason: skipSpecial, make: func(t *testing.T, d string) string {
			p := filepath.Join(d, "socket.log")
			require.NoError(t, syscall.Mknod(p, syscall.S_IFSOCK|0o644, 0))
			return p
		}},
		{name: "character device", reason: skipSpecial, make: func(t *testing.T, d string) string {
			p := filepath.Join(d, "null.log")
			err := syscall.Mknod(p, syscall.S_IFCHR|0o644, 1<<8|3) // 1,3: /dev/null
			if errors.Is(err, syscall.EPERM) {
				// Without CAP_MKNOD: the same device reached through a
				// symlink, which the receiver follows as it follows
				// the kubelet's.
				err = os.Symlink("/dev/null", p)
			}
			require.NoError(t, err)
			return p
		}},
		{name: "directory named like a log file", reason: skipDirectory, make: func(t *testing.T, d string) string {
			p := filepath.Join(d, "dir.log")
			require.NoError(t, os.Mkdir(p, 0o755))
			return p
		}},
		{name: "vanished between listing and open", reason: skipVanished, vanish: true, make: func(t *testing.T, d string) string {
			p := filepath.Join(d, "gone.log")
			appendFile(t, p, seqLines("gone", 0, 1))
			return p
		}},
		{name: "permission denied", reason: skipPermission, openErr: syscall.EACCES, make: func(t *testing.T, d string) string {
			p := filepath.Join(d, "denied.log")
			appendFile(t, p, seqLines("denied", 0, 1))
			return p
		}},
		{name: "other open error", reason: skipOpenError, openErr: syscall.EIO, make: func(t *testing.T, d string) string {
			p := filepath.Join(d, "eio.log")
			appendFile(t, p, seqLines("eio", 0, 1))
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			good := podLogPath(t, dir, "ns", "pod", "c")
			appendFile(t, good, seqLines("good", 0, 2))
			bad := tt.make(t, filepath.Dir(good))
			core, logs := observer.New(zapcore.InfoLevel)
			var mu sync.Mutex
			listings, vanished := 0, false
			setup := func(r *logsReceiver) {
				r.set.Logger = zap.New(core)
				if tt.openErr != nil {
					r.open = func(p string) (*os.File, error) {
						if p == bad {
							return nil, &fs.PathError{Op: "open", Path: p, Err: tt.openErr}
						}
						return os.Open(p)
					}
				}
				r.lister.listed = func(d string, _, _ time.Time) {
					if d != filepath.Dir(good) {
						return
					}
					mu.Lock()
					defer mu.Unlock()
					listings++
					if tt.vanish && !vanished {
						vanished = true
						if err := os.Remove(bad); err != nil {
							panic(err)
						}
					}
				}
			}
			s := &sink{}
			cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
			cfg.FullRescanInterval = cfg.RescanInterval // every rescan lists the directory: a listing is a rescan
			run := startReceiver(t, cfg, s, setup)
			require.Eventually(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return listings >= 6 && s.len() == 2
			}, 10*time.Second, 10*time.Millisecond)

			assert.Equal(t, map[[2]string]int64{{bad, tt.reason}: 1}, skipCounts(t, run))
			permission := int64(0)
			if tt.reason == skipPermission {
				permission = 1
			}
			assert.Equal(t, permission, run.counter(t, "container_logs.permission_errors", ""))
			var lines []string
			for _, e := range logs.All() {
				lines = append(lines, fmt.Sprintf("%s %v", e.Message, e.ContextMap()))
			}
			sort.Strings(lines)
			skipLogs := logs.FilterMessage("path matched by include is not read; counted in paths_skipped").All()
			require.Len(t, skipLogs, 1, "log lines: %q", lines)
			assert.Equal(t, bad, skipLogs[0].ContextMap()["path"])
			assert.Equal(t, tt.reason, skipLogs[0].ContextMap()["reason"])
			checkExactlyOnce(t, s.records(), 2, "good")
		})
	}
}

// A path counted as skipped and then readable is read; if it turns bad
// again later it is counted (and logged) again.
func TestSkippedPathCountedAgainAfterRecovery(t *testing.T) {
	dir := t.TempDir()
	good := podLogPath(t, dir, "ns", "pod", "c")
	appendFile(t, good, seqLines("good", 0, 1))
	bad := filepath.Join(filepath.Dir(good), "fifo.log")
	require.NoError(t, syscall.Mkfifo(bad, 0o644))
	core, logs := observer.New(zapcore.WarnLevel)
	var mu sync.Mutex
	listings := 0
	s := &sink{}
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.FullRescanInterval = cfg.RescanInterval
	run := startReceiver(t, cfg, s, func(r *logsReceiver) {
		r.set.Logger = zap.New(core)
		r.lister.listed = func(string, time.Time, time.Time) {
			mu.Lock()
			listings++
			mu.Unlock()
		}
	})
	waitListings := func(n int) {
		t.Helper()
		mu.Lock()
		want := listings + n
		mu.Unlock()
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return listings >= want
		}, 10*time.Second, 10*time.Millisecond)
	}
	waitListings(4)
	assert.Equal(t, map[[2]string]int64{{bad, skipSpecial}: 1}, skipCounts(t, run))

	require.NoError(t, os.Remove(bad)) // replaced by a regular file: read
	appendFile(t, bad, seqLines("fixed", 0, 1))
	require.Eventually(t, func() bool { return s.len() == 2 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, os.Rename(bad, bad+".1")) // the file leaves; a FIFO takes its name
	require.NoError(t, syscall.Mkfifo(bad, 0o644))
	waitListings(4)
	assert.Equal(t, map[[2]string]int64{{bad, skipSpecial}: 2}, skipCounts(t, run))
	assert.Equal(t, 2, logs.FilterMessage("path matched by include is not read; counted in paths_skipped").Len())
	checkExactlyOnce(t, s.records(), 1, "good", "fixed")
}
