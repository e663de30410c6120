package containerlogsreceiver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// notifiedCfg is a configuration under which only a change notification
// can bring new data in time: the safety poll is an hour away (at most 1m
// is allowed; the tests wait far less than that).
func notifiedCfg(include ...string) *Config {
	cfg := testCfg(include...)
	cfg.PollInterval = time.Second
	cfg.FallbackPollInterval = time.Minute
	cfg.RescanInterval = time.Second
	return cfg
}

// waitCovered waits until the tailer of path is idle-waiting on
// notifications: followed, and every directory it is registered in is
// watched.
func waitCovered(t *testing.T, run *running, path string) {
	t.Helper()
	require.Eventually(t, func() bool {
		tl := tailerAt(run, path)
		return tl != nil && run.r.watch.covers(tl)
	}, 5*time.Second, 5*time.Millisecond, "%s not covered by a watch", path)
}

// tailerAt returns the tailer of path, nil if none.
func tailerAt(run *running, path string) *tailer {
	run.r.mu.Lock()
	defer run.r.mu.Unlock()
	return run.r.byPath[path]
}

// waitWaiting waits until the tailer of path, its file read to the end,
// waits for a notification (a file just read is read once more
// min_read_interval later first: tailer.run), and returns it.
func waitWaiting(t *testing.T, run *running, path string) *tailer {
	t.Helper()
	tl := tailerAt(run, path)
	require.NotNil(t, tl, "no tailer for %s", path)
	require.Eventually(t, func() bool { return tl.waits.Load() > 0 }, 5*time.Second, 5*time.Millisecond,
		"%s never waited for a notification", path)
	return tl
}

// inotifyWatches counts the watches of each inotify instance of this
// process, by file descriptor.
func inotifyWatches(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for fd, info := range inotifyInfo(t) {
		out[fd] = strings.Count(info, "inotify wd:")
	}
	return out
}

// inotifyInfo is /proc/self/fdinfo of each inotify instance of this
// process, by file descriptor: one "inotify wd:" line per watch.
func inotifyInfo(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	out := map[string]string{}
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err != nil || target != "anon_inode:inotify" {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", e.Name())); err == nil {
			out[e.Name()] = string(b)
		}
	}
	return out
}

// A line appended to an idle file is read at once although neither the
// safety poll (1m) nor poll_interval would read it in time: the change
// notification woke its reader.
func TestNotifiedAppendReadPromptly(t *testing.T) {
	dir := t.TempDir()
	path := podLogPath(t, dir, "ns", "pod", "c")
	appendFile(t, path, seqLines("n", 0, 1))
	s := &sink{}
	run := startReceiver(t, notifiedCfg(filepath.Join(dir, "*", "*", "*.log")), s)
	require.Eventually(t, func() bool { return s.len() == 1 }, 5*time.Second, 5*time.Millisecond)
	waitCovered(t, run, path)
	var worst time.Duration
	for i := 1; i <= 20; i++ {
		written := time.Now()
		appendFile(t, path, seqLines("n", i, 1))
		require.Eventually(t, func() bool { return s.len() == i+1 }, 5*time.Second, time.Millisecond,
			"line %d not read: no notification (the safety poll is a minute away)", i)
		worst = max(worst, time.Since(written))
	}
	t.Logf("slowest of 20 appends read %s after the write (poll_interval %s)", worst, run.r.cfg.PollInterval)
	assert.Less(t, worst, run.r.cfg.PollInterval, "appends were not read before a poll_interval poll could have")
	checkExactlyOnce(t, s.records(), 21, "n")
}

// The kubelet's rotation while the file is idle: lines appended just
// before the rename, the renamed file's rest and the new file's lines all
// arrive once and in order, the renamed file is released, without the
// safety poll.
func TestNotifiedRotationWhileIdle(t *testing.T) {
	dir := t.TempDir()
	path := podLogPath(t, dir, "ns", "pod", "c")
	appendFile(t, path, seqLines("r", 0, 10))
	s := &sink{}
	cfg := notifiedCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.PollInterval = 100 * time.Millisecond // a file that left its path is polled
	run := startReceiver(t, cfg, s)
	require.Eventually(t, func() bool { return s.len() == 10 }, 5*time.Second, 5*time.Millisecond)
	waitCovered(t, run, path)
	for round := range 3 {
		from := 10 + round*30
		appendFile(t, path, seqLines("r", from, 10))
		rotated := fmt.Sprintf("%s.2024010%d-000000", path, round)
		require.NoError(t, os.Rename(path, rotated))
		appendFile(t, rotated, seqLines("r", from+10, 10)) // the runtime still writes to the renamed file
		appendFile(t, path, seqLines("r", from+20, 10))
		require.Eventually(t, func() bool { return s.len() == from+30 }, 5*time.Second, 5*time.Millisecond, "round %d", round)
		require.Eventually(t, func() bool { return len(fdsTo(t, rotated)) == 0 }, 5*time.Second, 5*time.Millisecond,
			"round %d: renamed file not released", round)
		waitCovered(t, run, path)
	}
	checkExactlyOnce(t, s.records(), 100, "r")
	assert.Zero(t, run.counter(t, "container_logs.bytes_lost", ""))
}

// copytruncate while the file is idle: the truncation is noticed by its
// notification and the new content read from its start.
func TestNotifiedCopyTruncateWhileIdle(t *testing.T) {
	dir := t.TempDir()
	path := podLogPath(t, dir, "ns", "pod", "c")
	appendFile(t, path, seqLines("ct", 0, 20))
	s := &sink{}
	run := startReceiver(t, notifiedCfg(filepath.Join(dir, "*", "*", "*.log")), s)
	require.Eventually(t, func() bool { return s.len() == 20 }, 5*time.Second, 5*time.Millisecond)
	for round := range 3 {
		waitCovered(t, run, path)
		copyFile(t, path, fmt.Sprintf("%s.%d", path, round))
		require.NoError(t, os.Truncate(path, 0))
		appendFile(t, path, seqLines("ct", 20+round*20, 20))
		require.Eventually(t, func() bool { return s.len() == 40+round*20 }, 5*time.Second, 5*time.Millisecond, "round %d", round)
	}
	checkExactlyOnce(t, s.records(), 80, "ct")
	assert.Equal(t, int64(3), run.counter(t, "container_logs.truncations", ""))
	assert.Zero(t, run.counter(t, "container_logs.bytes_lost", ""))
}

// A file deleted while idle, written to through a descriptor that outlives
// the path: read to its end and released within two poll_intervals of the
// delete, although the safety poll is a minute away.
func TestNotifiedDeleteWhileIdle(t *testing.T) {
	dir := t.TempDir()
	path := podLogPath(t, dir, "ns", "pod", "c")
	appendFile(t, path, seqLines("d", 0, 10))
	s := &sink{}
	cfg := notifiedCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.PollInterval = 100 * time.Millisecond
	run := startReceiver(t, cfg, s)
	require.Eventually(t, func() bool { return s.len() == 10 }, 5*time.Second, 5*time.Millisecond)
	waitCovered(t, run, path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(seqLines("d", 10, 100))
	require.NoError(t, err)
	require.NoError(t, os.Remove(path))
	_, err = f.WriteString(seqLines("d", 110, 10))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	deleted := time.Now()
	require.Eventually(t, func() bool { return len(fdsTo(t, path)) == 0 }, 5*time.Second, 5*time.Millisecond)
	released := time.Since(deleted)
	t.Logf("descriptor released %s after the delete", released)
	assert.LessOrEqual(t, released, 2*cfg.PollInterval+150*time.Millisecond, "released within two poll_intervals (+ scheduling slack)")
	checkExactlyOnce(t, s.records(), 120, "d")
}

// A file included through a symbolic link (as /var/log/containers links to
// /var/log/pods) is written in its target's directory: the notification
// for the target wakes the reader of the link.
func TestNotifiedThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	target := podLogPath(t, dir, "ns", "pod", "c")
	appendFile(t, target, seqLines("l", 0, 1))
	links := filepath.Join(dir, "containers")
	require.NoError(t, os.Mkdir(links, 0o755))
	link := filepath.Join(links, "pod_ns_c-0123.log")
	require.NoError(t, os.Symlink(target, link))
	s := &sink{}
	run := startReceiver(t, notifiedCfg(filepath.Join(links, "*.log")), s)
	require.Eventually(t, func() bool { return s.len() == 1 }, 5*time.Second, 5*time.Millisecond)
	waitCovered(t, run, link)
	for i := 1; i <= 5; i++ {
		appendFile(t, target, seqLines("l", i, 1))
		require.Eventually(t, func() bool { return s.len() == i+1 }, 5*time.Second, time.Millisecond, "line %d", i)
	}
	checkExactlyOnce(t, s.records(), 6, "l")
}

// Without change notifications, files are polled every poll_interval as
// before: when the inotify watcher cannot be created (max_user_instances
// reached: EMFILE), or a directory cannot be watched (max_user_watches
// reached: ENOSPC; a network filesystem). Each fall back is counted by
// reason and logged once per reason, and every line still arrives.
func TestWatchUnavailableFallsBackToPolling(t *testing.T) {
	tests := []struct {
		name     string
		reason   string
		counted  int64 // watch_fallbacks{reason}
		newFS    func() (*notifier, error)
		addError error // for the container directories (the others are watched)
	}{
		{name: "no inotify instance", reason: watchUnavailable, counted: 1,
			newFS: func() (*notifier, error) {
				return nil, fmt.Errorf("couldn't initialize inotify: %w", syscall.EMFILE)
			}},
		{name: "watch limit", reason: watchLimit, counted: 3, addError: syscall.ENOSPC},
		{name: "network filesystem", reason: watchUnsupported, counted: 3, addError: errUnsupportedFS},
		{name: "other error", reason: watchError, counted: 3, addError: syscall.EACCES},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var paths []string
			for i := range 3 {
				p := podLogPath(t, dir, "ns", fmt.Sprintf("pod%d", i), "c")
				appendFile(t, p, seqLines(fmt.Sprintf("p%d", i), 0, 5))
				paths = append(paths, p)
			}
			core, logs := observer.New(zapcore.WarnLevel)
			before := len(inotifyWatches(t))
			s := &sink{}
			cfg := notifiedCfg(filepath.Join(dir, "*", "*", "*.log"))
			cfg.PollInterval = 50 * time.Millisecond
			run := startReceiver(t, cfg, s, func(r *logsReceiver) {
				r.set.Logger = zap.New(core)
				if tt.newFS != nil {
					r.watch.newFS = tt.newFS
				}
				if tt.addError != nil {
					r.watch.addDir = func(w *notifier, d string) error {
						if filepath.Base(d) == "c" {
							return fmt.Errorf("add watch %q: %w", d, tt.addError)
						}
						return addDirWatch(w, d)
					}
				}
			})
			require.Eventually(t, func() bool { return s.len() == 15 }, 5*time.Second, 5*time.Millisecond)
			for round := 1; round <= 3; round++ {
				for i, p := range paths {
					appendFile(t, p, seqLines(fmt.Sprintf("p%d", i), round*5, 5))
				}
				require.Eventually(t, func() bool { return s.len() == 15*(round+1) }, 5*time.Second, 5*time.Millisecond,
					"polling did not deliver (round %d)", round)
			}
			checkExactlyOnce(t, s.records(), 20, "p0", "p1", "p2")
			for _, p := range paths {
				tl := tailerAt(run, p)
				require.NotNil(t, tl)
				assert.False(t, run.r.watch.covers(tl), "%s counted as watched", p)
			}
			assert.Equal(t, tt.counted, run.counter(t, "container_logs.watch_fallbacks", tt.reason))
			assert.Equal(t, tt.counted, run.counter(t, "container_logs.watch_fallbacks", ""), "other reasons counted")
			assert.Equal(t, 1, logs.FilterMessageSnippet("no change notifications").Len(), "logged once")
			if tt.newFS != nil {
				assert.Len(t, inotifyWatches(t), before, "an inotify instance was opened")
			}
		})
	}
}

// A queue overflow means notifications were lost: every file is woken.
// The directories' watches are faked (added to nothing), so that writes
// bring no notification and the safety poll is a minute away; only the
// overflow, handed to the watcher as the notifier does, can bring the lines.
func TestOverflowWakesEveryFile(t *testing.T) {
	dir := t.TempDir()
	const files = 20
	var paths []string
	var tags []string
	for i := range files {
		tag := fmt.Sprintf("o%02d", i)
		p := podLogPath(t, dir, "ns", tag, "c")
		appendFile(t, p, seqLines(tag, 0, 1))
		paths, tags = append(paths, p), append(tags, tag)
	}
	s := &sink{}
	run := startReceiver(t, notifiedCfg(filepath.Join(dir, "*", "*", "*.log")), s, func(r *logsReceiver) {
		r.watch.addDir = func(*notifier, string) error { return nil } // watched, but nothing is ever notified
		r.watch.setWrites = func(*notifier, string, bool) error { return nil }
	})
	require.Eventually(t, func() bool { return s.len() == files }, 5*time.Second, 5*time.Millisecond)
	for _, p := range paths {
		waitCovered(t, run, p)
	}
	for _, p := range paths {
		waitWaiting(t, run, p)
	}
	for i, p := range paths {
		appendFile(t, p, seqLines(tags[i], 1, 2))
	}
	// The premise: nothing reads the new lines by itself.
	assert.Never(t, func() bool { return s.len() > files }, 300*time.Millisecond, 10*time.Millisecond, "read without a wake")
	run.r.watch.overflow() // as the notifier reports IN_Q_OVERFLOW (TestNotifierOverflow)
	require.Eventually(t, func() bool { return s.len() == 3*files }, 5*time.Second, 5*time.Millisecond, "not every file was woken")
	checkExactlyOnce(t, s.records(), 3, tags...)
	assert.Equal(t, int64(1), run.counter(t, "container_logs.watch_overflows", ""))
}

// 2,000 files in four pod directories cost a handful of watches (one per
// directory listed or holding files: the root, 4 pods, 4 containers), not
// one per file; every file is still woken by its own notification.
func TestManyFilesFewWatches(t *testing.T) {
	dir := t.TempDir()
	const pods, perPod = 4, 500
	var paths, tags []string
	for p := range pods {
		d := filepath.Dir(podLogPath(t, dir, "ns", fmt.Sprintf("pod%d", p), "c"))
		for i := range perPod {
			tag := fmt.Sprintf("m%d-%03d", p, i)
			path := filepath.Join(d, tag+".log")
			appendFile(t, path, seqLines(tag, 0, 1))
			paths, tags = append(paths, path), append(tags, tag)
		}
	}
	before := inotifyWatches(t)
	s := &sink{}
	run := startReceiver(t, notifiedCfg(filepath.Join(dir, "*", "*", "*.log")), s)
	require.Eventually(t, func() bool { return s.len() == pods*perPod }, 30*time.Second, 10*time.Millisecond)
	for _, p := range paths {
		waitCovered(t, run, p)
	}
	watches := 0
	for fd, n := range inotifyWatches(t) {
		if _, ok := before[fd]; !ok {
			watches += n
		}
	}
	t.Logf("%d files, %d inotify watches", len(paths), watches)
	assert.Equal(t, 1+2*pods, watches, "one watch per directory")
	for i, p := range paths {
		appendFile(t, p, seqLines(tags[i], 1, 1))
	}
	require.Eventually(t, func() bool { return s.len() == 2*pods*perPod }, 30*time.Second, 10*time.Millisecond)
	checkExactlyOnce(t, s.records(), 2, tags...)
	assert.Zero(t, run.counter(t, "container_logs.watch_fallbacks", ""))
}

// Shutdown closes the inotify instance (goleak in TestMain checks the
// goroutines).
func TestShutdownClosesWatcher(t *testing.T) {
	dir := t.TempDir()
	path := podLogPath(t, dir, "ns", "pod", "c")
	appendFile(t, path, seqLines("x", 0, 1))
	before := len(inotifyWatches(t))
	s := &sink{}
	run := startReceiver(t, notifiedCfg(filepath.Join(dir, "*", "*", "*.log")), s)
	require.Eventually(t, func() bool { return s.len() == 1 }, 5*time.Second, 5*time.Millisecond)
	assert.Len(t, inotifyWatches(t), before+1)
	run.stop(t)
	assert.Len(t, inotifyWatches(t), before)
}

// Which created names start a rescan at once: a file the include patterns
// match, or a directory new files may appear in; not a rotated file.
func TestCreateNotificationStartsRescan(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Include = []string{"/var/log/pods/*/*/*.log"}
	r, err := newReceiver(receivertestSettings(), cfg, &sink{})
	require.NoError(t, err)
	tests := []struct {
		name string
		op   op
		want bool
	}{
		{"/var/log/pods/ns_pod_uid/c/0.log", opCreate, true},
		{"/var/log/pods/ns_pod_uid/c", opCreate, true},
		{"/var/log/pods/ns_pod_uid", opCreate, true},
		{"/var/log/pods/ns_pod_uid/c/0.log.20240101-000000", opCreate, false},
		{"/var/log/pods/ns_pod_uid/c/0.log", opWrite, false},
		{"/var/log/other/x.log", opCreate, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("op %d %s", tt.op, tt.name), func(t *testing.T) {
			r.watch.event(notification{name: tt.name, op: tt.op})
			select {
			case <-r.rescanNow:
				assert.True(t, tt.want, "rescan requested")
			default:
				assert.False(t, tt.want, "no rescan requested")
			}
		})
	}
}

// TestNotificationsCoalesced: a file written in many small pieces is read
// at most once per min_read_interval however many notifications arrive,
// so its lines arrive in few batches, every line once and in order.
func TestNotificationsCoalesced(t *testing.T) {
	for _, interval := range []time.Duration{100 * time.Millisecond, 250 * time.Millisecond} {
		t.Run(interval.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := podLogPath(t, dir, "ns", "chatty", "app")
			appendFile(t, path, seqLines("w", 0, 1))
			cfg := notifiedCfg(filepath.Join(dir, "*", "*", "*.log"))
			cfg.MinReadInterval = interval
			s := &sink{}
			startReceiver(t, cfg, s)
			require.Eventually(t, func() bool { return s.len() == 1 }, 5*time.Second, 5*time.Millisecond)
			s.mu.Lock()
			before := s.batches
			s.mu.Unlock()

			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			require.NoError(t, err)
			const n = 400
			start := time.Now()
			for i := 1; i <= n; i++ { // one write per line, as a runtime writes them
				_, err := f.WriteString(seqLines("w", i, 1))
				require.NoError(t, err)
				time.Sleep(time.Millisecond)
			}
			require.NoError(t, f.Close())
			require.Eventually(t, func() bool { return s.len() == n+1 }, 10*time.Second, 5*time.Millisecond)
			took := time.Since(start)
			checkExactlyOnce(t, s.records(), n+1, "w")

			s.mu.Lock()
			batches := s.batches - before
			s.mu.Unlock()
			// A read cycle starts at most once per interval and ends in at
			// most one batch (max_batch_records is far above n).
			limit := int(took/interval) + 2
			assert.LessOrEqual(t, batches, limit, "%d batches for %d writes in %s", batches, n, took)
			t.Logf("%d writes in %s: %d batches (at most %d)", n, took, batches, limit)
		})
	}
}

// When the notifier ends by a read error, every file falls back to
// polling: counted (watch_fallbacks{reason=watch_error}), no longer
// counted as watched, and its new lines still arrive.
func TestNotifierErrorFallsBackToPolling(t *testing.T) {
	dir := t.TempDir()
	path := podLogPath(t, dir, "ns", "pod", "c")
	appendFile(t, path, seqLines("e", 0, 1))
	s := &sink{}
	cfg := notifiedCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.PollInterval = 50 * time.Millisecond
	run := startReceiver(t, cfg, s)
	require.Eventually(t, func() bool { return s.len() == 1 }, 5*time.Second, 5*time.Millisecond)
	waitCovered(t, run, path)
	tl := waitWaiting(t, run, path)
	run.r.watch.error(errors.New("read inotify events: input/output error"))
	assert.False(t, run.r.watch.covers(tl), "still counted as watched")
	assert.Equal(t, int64(1), run.counter(t, "container_logs.watch_fallbacks", watchError))
	appendFile(t, path, seqLines("e", 1, 3))
	require.Eventually(t, func() bool { return s.len() == 4 }, 5*time.Second, 5*time.Millisecond, "polling did not deliver")
	checkExactlyOnce(t, s.records(), 4, "e")
}

// alignedRead puts the next read of a file being written on a tick shared
// by all files: a multiple of the interval on the wall clock, between half
// and one and a half intervals after the cycle's start, so that files whose
// cycles began at different moments are read in one wake of the process.
func TestAlignedRead(t *testing.T) {
	base := time.Date(2026, 12, 5, 17, 0, 0, 0, time.UTC)
	for _, every := range []time.Duration{20 * time.Millisecond, 200 * time.Millisecond, time.Second} {
		ticks := map[time.Time]int{}
		for off := time.Duration(0); off < every; off += every / 16 {
			cycle := base.Add(off + 3*time.Microsecond)
			next := alignedRead(cycle, every)
			assert.Zero(t, next.Sub(base)%every, "%s: %s is not on the %s grid", every, next, every)
			d := next.Sub(cycle)
			assert.True(t, d >= every/2 && d < every*3/2, "%s: read %s after the cycle's start", every, d)
			ticks[next]++
		}
		// Cycles spread over one interval meet on at most two ticks, and
		// a file read on a tick stays on the grid.
		assert.LessOrEqual(t, len(ticks), 2, "%s: %d ticks", every, len(ticks))
		on := base.Add(7 * every)
		assert.Equal(t, on.Add(every), alignedRead(on, every), "%s: a read on a tick", every)
		assert.Equal(t, on.Add(every), alignedRead(on.Add(every/4), every), "%s: a late wake", every)
	}
}
