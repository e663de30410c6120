package containerlogsreceiver

// Evidence for the report: the change notifications of
// github.com/nxadm/tail/watch (v1.4.11, the package the issue planned to
// use) fail acceptance items, so the receiver uses
// github.com/fsnotify/fsnotify directly (watch.go). Each test below
// asserts the library's faulty behaviour; if an upgrade fixes it, the test
// fails and the decision should be revisited.
//
// The library keeps process-wide state that nothing can stop (one tracker
// goroutine and inotify instance, started on first use), so each test runs
// its body in a child process of this test binary (TestMain leaves goleak
// out there) and the parent checks the child's result.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/nxadm/tail/watch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// nxadmWatchChildEnv marks a child process of an nxadm/tail/watch evidence
// test.
const nxadmWatchChildEnv = "WEFT_NXADM_WATCH_CHILD"

func inNxadmWatchChild() bool { return os.Getenv(nxadmWatchChildEnv) != "" }

// runNxadmWatchChild runs the calling test again in a child process and
// returns its output (stdout and stderr) and exit code.
func runNxadmWatchChild(t *testing.T) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), nxadmWatchChildEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	default:
		require.NoError(t, err, out.String())
		return "", -1
	}
}

// childPassed runs the test's body in a child and requires it passed.
func childPassed(t *testing.T) {
	t.Helper()
	out, code := runNxadmWatchChild(t)
	require.Zero(t, code, "child:\n%s", out)
	require.Contains(t, out, "--- PASS: "+t.Name(), "child:\n%s", out)
}

// The tracker (watch/inotify_tracker.go: a package-level "shared" started
// by once.Do) has no way to be stopped: after every watch was removed its
// goroutine and inotify instance live on for the rest of the process, so a
// receiver could never shut down cleanly (goleak fails).
func TestNxadmWatchEvidenceTrackerOutlivesWatches(t *testing.T) {
	if !inNxadmWatchChild() {
		childPassed(t)
		return
	}
	before := inotifyFDs(t)
	path := filepath.Join(t.TempDir(), "0.log")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	require.NoError(t, watch.Watch(path))
	require.NoError(t, watch.RemoveWatch(path))
	err := goleak.Find()
	require.Error(t, err, "no goroutine left behind")
	assert.Contains(t, err.Error(), "github.com/nxadm/tail/watch.(*InotifyTracker).run")
	assert.Equal(t, before+1, inotifyFDs(t), "inotify instance left open")
}

// One inotify watch per file (Watch adds the file itself): 300 files in one
// directory take 300 of the user's fs.inotify.max_user_watches, where a
// directory watch takes one.
func TestNxadmWatchEvidenceOneWatchPerFile(t *testing.T) {
	if !inNxadmWatchChild() {
		childPassed(t)
		return
	}
	dir := t.TempDir()
	const files = 300
	for i := range files {
		p := filepath.Join(dir, strconv.Itoa(i)+".log")
		require.NoError(t, os.WriteFile(p, nil, 0o644))
		require.NoError(t, watch.Watch(p))
	}
	total := 0
	for _, n := range inotifyWatches(t) {
		total += n
	}
	assert.Equal(t, files, total, "inotify watches for %d files in one directory", files)
}

// When no inotify instance can be created (fs.inotify.max_user_instances or
// the descriptor limit reached), the tracker calls util.Fatal: the whole
// process exits instead of the caller getting an error to fall back to
// polling. The child lowers its descriptor limit so that inotify_init1
// fails with EMFILE.
func TestNxadmWatchEvidenceExitsWithoutInotify(t *testing.T) {
	if !inNxadmWatchChild() {
		out, code := runNxadmWatchChild(t)
		assert.Equal(t, 1, code, "the library did not exit the process:\n%s", out)
		assert.Contains(t, out, "FATAL -- failed to create Watcher", "child:\n%s", out)
		return
	}
	path := filepath.Join(t.TempDir(), "0.log")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	lim.Cur = lowestFreeFD(t)
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
	err := watch.Watch(path) // exits the process when the library has the fault
	t.Logf("Watch returned %v: the library no longer exits", err)
}

// lowestFreeFD is the descriptor number the next open gets; with it as the
// limit, the next open fails with EMFILE.
func lowestFreeFD(t *testing.T) uint64 {
	t.Helper()
	f, err := os.Open(os.DevNull)
	require.NoError(t, err)
	n := f.Fd()
	require.NoError(t, f.Close())
	return uint64(n)
}

// The tracker hands each event to the file's channel and waits until it is
// taken: while one reader does not take its event, no other file's event
// is delivered (watch/inotify_tracker.go, sendEvent).
func TestNxadmWatchEvidenceSlowReaderStallsAll(t *testing.T) {
	if !inNxadmWatchChild() {
		childPassed(t)
		return
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	for _, p := range []string{a, b} {
		require.NoError(t, os.WriteFile(p, nil, 0o644))
		require.NoError(t, watch.Watch(p))
	}
	aEvents, bEvents := watch.Events(a), watch.Events(b)
	appendFile(t, a, "x\n") // nobody reads a's events yet
	appendFile(t, b, "x\n")
	got := func() bool {
		select {
		case <-bEvents:
			return true
		default:
			return false
		}
	}
	assert.Never(t, got, time.Second, 10*time.Millisecond, "b's event delivered while a's was not taken")
	<-aEvents
	assert.Eventually(t, got, 5*time.Second, 10*time.Millisecond, "b's event never delivered")
}

// On a queue overflow (events lost) the tracker only prints the error to
// its own logger (stderr): no reader is told, so none can know that its
// file may have changed. Here the overflow follows a stall (see above):
// b's write, made once the queue is full, is never notified to b's reader,
// and the only trace is the library's log line.
func TestNxadmWatchEvidenceOverflowOnlyLogged(t *testing.T) {
	if !inNxadmWatchChild() {
		out, code := runNxadmWatchChild(t)
		require.Zero(t, code, "child:\n%s", out)
		require.Contains(t, out, "--- PASS: "+t.Name(), "child:\n%s", out)
		assert.Contains(t, out, "Error in Watcher Error channel: "+fsnotify.ErrEventOverflow.Error(), "the library did not log the overflow")
		return
	}
	maxQueued := 16384
	if b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			maxQueued = n
		}
	}
	dir := t.TempDir()
	names := []string{"a", "b", "c", "d"}
	ch := map[string]<-chan fsnotify.Event{}
	paths := map[string]string{}
	for _, n := range names {
		p := filepath.Join(dir, n+".log")
		require.NoError(t, os.WriteFile(p, nil, 0o644))
		require.NoError(t, watch.Watch(p))
		paths[n], ch[n] = p, watch.Events(p)
	}
	appendFile(t, paths["a"], "x\n") // not taken: the tracker stalls on it
	// Fill the kernel's queue with events that cannot be merged (two files
	// in turn), beyond what fsnotify holds in its read buffer (4096).
	fc, err := os.OpenFile(paths["c"], os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	fd, err := os.OpenFile(paths["d"], os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	for range maxQueued/2 + 4096 {
		_, err = fc.WriteString("c\n")
		require.NoError(t, err)
		_, err = fd.WriteString("d\n")
		require.NoError(t, err)
	}
	require.NoError(t, fc.Close())
	require.NoError(t, fd.Close())
	appendFile(t, paths["b"], "late\n") // the queue is full: this event is lost
	for _, n := range []string{"a", "c", "d"} {
		go func() {
			for range ch[n] { //nolint:revive // draining
			}
		}()
	}
	bNotified := func() bool {
		select {
		case <-ch["b"]:
			return true
		default:
			return false
		}
	}
	assert.Never(t, bNotified, 2*time.Second, 10*time.Millisecond, "b's reader was notified: nothing was lost")
	appendFile(t, paths["b"], "again\n") // the queue drained: b's reader works
	assert.Eventually(t, bNotified, 5*time.Second, 10*time.Millisecond, "b's reader is not notified at all")
}
