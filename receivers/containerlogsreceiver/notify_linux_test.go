//go:build linux

package containerlogsreceiver

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// notified collects what a notifier's run hands over.
type notified struct {
	mu        sync.Mutex
	events    []notification
	overflows int
	failed    []error
	done      chan struct{}
}

func runNotifier(t *testing.T, n *notifier, settle time.Duration) *notified {
	t.Helper()
	got := &notified{done: make(chan struct{})}
	go func() {
		defer close(got.done)
		n.run(settle, func(ev notification) {
			got.mu.Lock()
			got.events = append(got.events, ev)
			got.mu.Unlock()
		}, func() {
			got.mu.Lock()
			got.overflows++
			got.mu.Unlock()
		}, func(err error) {
			got.mu.Lock()
			got.failed = append(got.failed, err)
			got.mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		_ = n.closeNotifier()
		select {
		case <-got.done:
		case <-time.After(5 * time.Second):
			t.Error("run did not return after close")
		}
	})
	return got
}

func (g *notified) has(name string, o op) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, ev := range g.events {
		if ev.name == name && ev.op == o {
			return true
		}
	}
	return false
}

func (g *notified) countOf(name string, o op) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, ev := range g.events {
		if ev.name == name && ev.op == o {
			n++
		}
	}
	return n
}

func (g *notified) count(o op) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, ev := range g.events {
		if ev.op == o {
			n++
		}
	}
	return n
}

// What the kernel reports for a directory's entries and for the directory
// itself arrives as the watcher reads it: the entry's path and what
// happened to it.
func TestNotifierEvents(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "c")
	require.NoError(t, os.Mkdir(dir, 0o755))
	n, err := newNotifier()
	require.NoError(t, err)
	require.NoError(t, n.add(dir))
	got := runNotifier(t, n, time.Millisecond)

	f := filepath.Join(dir, "0.log")
	require.NoError(t, os.WriteFile(f, []byte("a\n"), 0o644))
	appendFile(t, f, "b\n")
	require.NoError(t, os.Chmod(f, 0o600))
	g := filepath.Join(dir, "0.log.20240101-000000")
	require.NoError(t, os.Rename(f, g))
	require.NoError(t, os.Remove(g))
	want := []notification{
		{f, opCreate}, {f, opWrite}, {f, opChmod}, {f, opRename}, {g, opCreate}, {g, opRemove},
	}
	for _, w := range want {
		require.Eventually(t, func() bool { return got.has(w.name, w.op) }, 5*time.Second, time.Millisecond, "no %+v", w)
	}

	// The directory's own removal; its watch is then forgotten, and a
	// directory made again under the path can be watched again.
	require.NoError(t, os.Remove(dir))
	require.Eventually(t, func() bool { return got.has(dir, opRemove) }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return len(n.dirs) == 0 && len(n.wds) == 0
	}, 5*time.Second, time.Millisecond, "the removed directory's watch is still mapped")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, n.add(dir))
	h := filepath.Join(dir, "1.log")
	require.NoError(t, os.WriteFile(h, []byte("c\n"), 0o644))
	require.Eventually(t, func() bool { return got.has(h, opCreate) }, 5*time.Second, time.Millisecond)

	// A directory moved away is reported under its old path and no longer
	// watched: writes under the new path are not reported as the old.
	moved := filepath.Join(root, "moved")
	require.NoError(t, os.Rename(dir, moved))
	require.Eventually(t, func() bool { return got.has(dir, opRename) }, 5*time.Second, time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	got.mu.Lock()
	seen := len(got.events)
	got.mu.Unlock()
	appendFile(t, filepath.Join(moved, "1.log"), "d\n")
	assert.Never(t, func() bool {
		got.mu.Lock()
		defer got.mu.Unlock()
		return len(got.events) > seen
	}, 200*time.Millisecond, 10*time.Millisecond, "a write in the moved directory was reported")

	assert.ErrorIs(t, n.add(filepath.Join(root, "missing")), os.ErrNotExist)
	assert.Error(t, n.add(filepath.Join(moved, "1.log")), "a file, not a directory, was watched")
	got.mu.Lock()
	assert.Empty(t, got.failed)
	assert.Zero(t, got.overflows)
	got.mu.Unlock()
	require.NoError(t, n.closeNotifier())
	assert.ErrorIs(t, n.add(root), errNotifierClosed)
}

// Notifications are read in batches: a thousand writes to ten files cost
// a read per settle at most, and each read reports a file's writes once.
func TestNotifierBatches(t *testing.T) {
	dir := t.TempDir()
	n, err := newNotifier()
	require.NoError(t, err)
	require.NoError(t, n.add(dir))
	var reads atomic.Int64
	const settle = 50 * time.Millisecond
	got := &notified{}
	done := make(chan struct{})
	n.testRead = func() { reads.Add(1) }
	go func() {
		defer close(done)
		n.run(settle, func(ev notification) {
			got.mu.Lock()
			got.events = append(got.events, ev)
			got.mu.Unlock()
		}, func() { t.Error("overflow") }, func(err error) { t.Error(err) })
	}()
	const files, writes = 10, 100
	var paths []string
	for i := range files {
		p := filepath.Join(dir, strconv.Itoa(i)+".log")
		require.NoError(t, os.WriteFile(p, nil, 0o644))
		paths = append(paths, p)
	}
	start := time.Now()
	for w := range writes {
		for _, p := range paths {
			appendFile(t, p, fmt.Sprintf("line %d\n", w))
		}
		time.Sleep(time.Millisecond)
	}
	// Once the writes were read, one more write to each file is reported
	// once each: a read never takes a write for one it saw before.
	time.Sleep(2 * settle)
	before := map[string]int{}
	for _, p := range paths {
		before[p] = got.countOf(p, opWrite)
		require.Positive(t, before[p], "no write reported for %s", p)
	}
	for _, p := range paths {
		appendFile(t, p, "last\n")
	}
	for _, p := range paths {
		require.Eventually(t, func() bool { return got.countOf(p, opWrite) == before[p]+1 }, 5*time.Second, time.Millisecond,
			"the last write to %s was not reported once", p)
	}
	elapsed := time.Since(start)
	_ = n.closeNotifier()
	<-done
	limit := int64(elapsed/settle) + 3
	t.Logf("%d writes read in %d reads over %s (at most %d)", files*writes, reads.Load(), elapsed, limit)
	assert.LessOrEqual(t, reads.Load(), limit, "more reads than one per settle")
	assert.LessOrEqual(t, int64(got.count(opWrite)), files*reads.Load(), "a file's writes reported more than once per read")
}

// A real queue overflow: more notifications than
// fs.inotify.max_queued_events wait unread; the kernel drops the rest and
// says so, and run reports it once.
func TestNotifierOverflow(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	require.NoError(t, err)
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	require.LessOrEqual(t, limit, 1<<20, "max_queued_events too large for this test")
	dir := t.TempDir()
	n, err := newNotifier()
	require.NoError(t, err)
	require.NoError(t, n.add(dir))
	// Nothing reads while the entries are made: each create is queued (no
	// two are alike, so none is merged with the one before).
	for i := range limit + 10 {
		f, err := os.Create(filepath.Join(dir, strconv.Itoa(i)))
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	got := runNotifier(t, n, time.Millisecond)
	require.Eventually(t, func() bool {
		got.mu.Lock()
		defer got.mu.Unlock()
		return got.overflows == 1
	}, 10*time.Second, 5*time.Millisecond, "no overflow reported")
	creates := got.count(opCreate)
	assert.Less(t, creates, limit+10, "every create reported although the queue overflowed")
	assert.Greater(t, creates, limit/2, "the queued creates were not reported")
	got.mu.Lock()
	assert.Empty(t, got.failed)
	got.mu.Unlock()
}

// watchMask is the event mask of this process's inotify watch on dir, as
// the kernel reports it (/proc/self/fdinfo); ok is false without one.
func watchMask(t *testing.T, dir string) (mask uint32, ok bool) {
	t.Helper()
	st, err := os.Stat(dir)
	require.NoError(t, err)
	ino := st.Sys().(*syscall.Stat_t).Ino
	for _, info := range inotifyInfo(t) {
		for _, line := range strings.Split(info, "\n") {
			var wd int
			var i, dev uint64
			var m uint32
			if _, err := fmt.Sscanf(line, "inotify wd:%x ino:%x sdev:%x mask:%x", &wd, &i, &dev, &m); err == nil && i == ino {
				return m, true
			}
		}
	}
	return 0, false
}

// timedSetup makes a pod log file holding one line tagged tag, a
// configuration under which only notifications bring its new lines in
// time, reading files being written every 50ms, and a sink.
func timedSetup(t *testing.T, tag string) (string, *Config, *sink) {
	t.Helper()
	dir := t.TempDir()
	path := podLogPath(t, dir, "ns", "pod", "c")
	appendFile(t, path, seqLines(tag, 0, 1))
	cfg := notifiedCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.MinReadInterval = 50 * time.Millisecond
	return path, cfg, &sink{}
}

// While a file is being written it is read on its own timer, so its
// directory's watch stops reporting writes (no wake of the notifier per
// write batch); once it waits for notifications again, writes are
// reported again and a new line is read at once.
func TestWatchQuietWhileFileRead(t *testing.T) {
	path, cfg, s := timedSetup(t, "q")
	run := startReceiver(t, cfg, s)
	require.Eventually(t, func() bool { return s.len() == 1 }, 5*time.Second, 5*time.Millisecond)
	waitCovered(t, run, path)
	tl := waitWaiting(t, run, path)
	writes := func() bool {
		m, ok := watchMask(t, filepath.Dir(path))
		require.True(t, ok, "no watch on %s", filepath.Dir(path))
		return m&unix.IN_MODIFY != 0
	}
	require.True(t, writes(), "an idle file's directory does not report writes")

	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			done <- 0
			return
		}
		defer f.Close()
		n := 1
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			if _, err := f.WriteString(seqLines("q", n, 1)); err != nil {
				done <- n
				return
			}
			n++
			time.Sleep(2 * time.Millisecond)
		}
	}()
	quiet := assert.Eventually(t, func() bool { return !writes() }, 3*time.Second, 2*time.Millisecond,
		"the watch still reports writes while the file is read on its timer")
	close(stop)
	n := <-done
	require.Greater(t, n, 1, "the writer failed")
	require.Eventually(t, func() bool { return s.len() == n }, 5*time.Second, 5*time.Millisecond)
	waits := tl.waits.Load()
	require.Eventually(t, func() bool { return tl.waits.Load() > waits }, 5*time.Second, 5*time.Millisecond, "never waited again")
	assert.True(t, writes(), "writes not reported again once the file waits for them")
	written := time.Now()
	appendFile(t, path, seqLines("q", n, 1))
	require.Eventually(t, func() bool { return s.len() == n+1 }, 5*time.Second, time.Millisecond,
		"the line after the quiet spell was not read: no notification (the safety poll is a minute away)")
	assert.Less(t, time.Since(written), cfg.PollInterval, "read no sooner than a poll")
	checkExactlyOnce(t, s.records(), n+1, "q")
	t.Logf("%d lines written; watch quiet while read on the timer: %v", n, quiet)
}

// A write made after the file's last read on its timer but before its
// directory's watch reports writes again brings no notification: the
// tailer reads once more after turning them back on, so the line is not
// left for the safety poll.
func TestWatchWritesBackBeforeWait(t *testing.T) {
	path, cfg, s := timedSetup(t, "b")
	var armed, fired atomic.Bool
	var offs atomic.Int64
	run := startReceiver(t, cfg, s, func(r *logsReceiver) {
		r.watch.setWrites = func(n *notifier, d string, on bool) error {
			if !on && armed.Load() {
				offs.Add(1)
			}
			if on && armed.CompareAndSwap(true, false) {
				// The unlucky write: after the last read, before the watch
				// reports writes again.
				appendFile(t, path, seqLines("b", 3, 1))
				fired.Store(true)
			}
			return n.setWrites(d, on)
		}
	})
	require.Eventually(t, func() bool { return s.len() == 1 }, 5*time.Second, 5*time.Millisecond)
	waitCovered(t, run, path)
	waitWaiting(t, run, path)
	armed.Store(true)
	appendFile(t, path, seqLines("b", 1, 2)) // read, then read again on the timer: quiet
	require.Eventually(t, fired.Load, 5*time.Second, 5*time.Millisecond,
		"the watch never reported writes again (went quiet %d times)", offs.Load())
	assert.Equal(t, int64(1), offs.Load(), "the watch did not go quiet once")
	require.Eventually(t, func() bool { return s.len() == 4 }, 800*time.Millisecond, 5*time.Millisecond,
		"the write made while writes were not reported waits for the safety poll")
	checkExactlyOnce(t, s.records(), 4, "b")
}

// When a quiet watch cannot report writes again (inotify_add_watch
// fails), its directory no longer counts as watched: the failure is
// counted and logged like a refused watch, and the file is polled, so its
// new lines still arrive.
func TestWatchWritesBackFailsFallsBackToPolling(t *testing.T) {
	path, cfg, s := timedSetup(t, "f")
	cfg.PollInterval = 100 * time.Millisecond
	var refused atomic.Bool
	run := startReceiver(t, cfg, s, func(r *logsReceiver) {
		r.watch.setWrites = func(n *notifier, d string, on bool) error {
			if on && filepath.Dir(path) == d {
				refused.Store(true)
				return &os.PathError{Op: "inotify_add_watch", Path: d, Err: syscall.EIO}
			}
			return n.setWrites(d, on)
		}
	})
	require.Eventually(t, func() bool { return s.len() == 1 }, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, refused.Load, 5*time.Second, 5*time.Millisecond, "writes never turned back on")
	tl := tailerAt(run, path)
	require.NotNil(t, tl)
	require.Eventually(t, func() bool { return !run.r.watch.covers(tl) }, 5*time.Second, 5*time.Millisecond,
		"still counted as watched")
	assert.Equal(t, int64(1), run.counter(t, "container_logs.watch_fallbacks", watchError))
	appendFile(t, path, seqLines("f", 1, 3))
	require.Eventually(t, func() bool { return s.len() == 4 }, 5*time.Second, 5*time.Millisecond, "polling did not deliver")
	checkExactlyOnce(t, s.records(), 4, "f")
}
