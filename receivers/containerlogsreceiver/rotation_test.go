package containerlogsreceiver

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kubeletWriter writes CRI lines "<tag>-<seq>" and rotates like the kubelet:
// rename 0.log to 0.log.<timestamp> and start a new 0.log.
type kubeletWriter struct {
	t       *testing.T
	path    string
	tag     string
	seq     int
	f       *os.File
	size    int64
	rotated []string
}

func newKubeletWriter(t *testing.T, path, tag string) *kubeletWriter {
	w := &kubeletWriter{t: t, path: path, tag: tag}
	w.open()
	return w
}

func (w *kubeletWriter) open() {
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(w.t, err)
	w.f, w.size = f, 0
}

func (w *kubeletWriter) write(n int) {
	buf := make([]byte, 0, n*120)
	now := time.Now().UTC()
	for range n {
		buf = now.AppendFormat(buf, time.RFC3339Nano)
		buf = fmt.Appendf(buf, " stdout F %s-%d padding-to-make-the-line-about-a-hundred-bytes-long\n", w.tag, w.seq)
		w.seq++
	}
	_, err := w.f.Write(buf)
	require.NoError(w.t, err)
	w.size += int64(len(buf))
}

func (w *kubeletWriter) rotate() string {
	require.NoError(w.t, w.f.Close())
	name := fmt.Sprintf("%s.%s-%03d", w.path, time.Now().UTC().Format("20060102-150405"), len(w.rotated))
	require.NoError(w.t, os.Rename(w.path, name))
	w.rotated = append(w.rotated, name)
	w.open()
	return name
}

func (w *kubeletWriter) close() { require.NoError(w.t, w.f.Close()) }

// checkTagOnce verifies each "<tag>-<seq>" arrived exactly once, in order
// (the padding after the sequence number is ignored).
func checkTagOnce(t *testing.T, recs []rec, n int, tags ...string) {
	t.Helper()
	trimmed := make([]rec, 0, len(recs))
	for _, r := range recs {
		var tag string
		var seq int
		_, err := fmt.Sscanf(r.body, "%s", &tag)
		require.NoError(t, err)
		r.body = tag
		_ = seq
		trimmed = append(trimmed, r)
	}
	checkExactlyOnce(t, trimmed, n, tags...)
}

// Acceptance 1: 3 files x 20k lines at >= 5k lines/s, renamed every 256 KiB
// with a burst just before each rotation: every line exactly once, in order.
func TestRenameRotationRace(t *testing.T) { forNotifyModes(t, testRenameRotationRace) }

func testRenameRotationRace(t *testing.T, mode func(*logsReceiver)) {
	dir := t.TempDir()
	s := &sink{}
	run := startReceiver(t, testCfg(filepath.Join(dir, "*", "*", "*.log")), s, mode)
	const lines = 20000
	var wg sync.WaitGroup
	tags := []string{"alpha", "beta", "gamma"}
	start := time.Now()
	for _, tag := range tags {
		w := newKubeletWriter(t, podLogPath(t, dir, "ns", tag, "c"), tag)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.close()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for w.seq < lines {
				<-tick.C
				w.write(min(30, lines-w.seq)) // 30 lines / 5 ms = 6k lines/s per file
				if w.size >= 256*1024-8*1024 {
					w.write(min(80, lines-w.seq)) // burst just before the rotation
					w.rotate()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	rate := float64(3*lines) / elapsed.Seconds()
	t.Logf("wrote %d lines in %s (%.0f lines/s over 3 files)", 3*lines, elapsed, rate)
	require.GreaterOrEqual(t, rate, 5000.0)
	require.Eventually(t, func() bool { return s.len() >= 3*lines }, 20*time.Second, 20*time.Millisecond, "records")
	time.Sleep(3 * run.r.cfg.PollInterval) // nothing more may arrive (duplicates)
	checkTagOnce(t, s.records(), lines, tags...)
	assert.Zero(t, run.counter(t, "container_logs.bytes_lost", ""))
}

// Acceptance 2: the rotated file is gzipped and deleted while the sink
// refuses everything, across two rotations: nothing is lost (the tailer
// holds the renamed file open) and nothing is dropped.
func TestKubeletCompressionWhileBlocked(t *testing.T) {
	dir := t.TempDir()
	s := &sink{}
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.MaxBatchRecords = 100
	run := startReceiver(t, cfg, s)
	w := newKubeletWriter(t, podLogPath(t, dir, "ns", "gz", "c"), "gz")
	w.write(500)
	require.Eventually(t, func() bool { return s.len() == 500 }, 5*time.Second, 10*time.Millisecond)
	s.setClosed(true)
	for range 2 {
		w.write(3000)
		time.Sleep(2 * cfg.PollInterval) // let the tailer hit the refusing sink mid-file
		rotated := w.rotate()
		gzipAndRemove(t, rotated)
	}
	w.write(300)
	w.close()
	require.Eventually(t, func() bool { return s.refusals() >= 3 }, 5*time.Second, 10*time.Millisecond)
	s.setClosed(false)
	require.Eventually(t, func() bool { return s.len() >= 6800 }, 20*time.Second, 10*time.Millisecond)
	time.Sleep(3 * cfg.PollInterval)
	checkTagOnce(t, s.records(), 6800, "gz")
	assert.Zero(t, run.counter(t, "container_logs.bytes_lost", ""), "lost bytes")
	assert.Zero(t, run.counter(t, "container_logs.records_dropped", ""), "dropped records")
}

func gzipAndRemove(t *testing.T, path string) {
	t.Helper()
	in, err := os.Open(path)
	require.NoError(t, err)
	out, err := os.Create(path + ".gz")
	require.NoError(t, err)
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, out.Close())
	require.NoError(t, in.Close())
	require.NoError(t, os.Remove(path))
}

// Acceptance 3: copytruncate 50 times: no duplicates; loss only in the gap
// between the copy and the truncation. On odd rounds the copy and the
// truncation happen right after the second half of the lines was written,
// before the receiver read it: it is recovered from the copy (found by its fingerprint). The last round writes
// lines between the copy and the truncation: only those are lost.
func TestCopyTruncate(t *testing.T) { forNotifyModes(t, testCopyTruncate) }

func testCopyTruncate(t *testing.T, mode func(*logsReceiver)) {
	dir := t.TempDir()
	s := &sink{}
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	run := startReceiver(t, cfg, s, mode)
	path := podLogPath(t, dir, "ns", "ct", "c")
	w := newKubeletWriter(t, path, "ct")
	const rounds, per = 50, 200
	caughtUp := func(i, n int) {
		require.Eventually(t, func() bool { return s.len() >= n }, 5*time.Second, 2*time.Millisecond,
			"round %d: %d records, want %d", i, s.len(), n)
	}
	for i := range rounds {
		if i%2 == 0 {
			w.write(per)
			caughtUp(i, (i+1)*per)
		} else {
			// The receiver has seen the start of this generation (and so
			// its fingerprint), not the second half.
			w.write(per / 2)
			caughtUp(i, i*per+per/2)
			w.write(per / 2)
		}
		copyFile(t, path, fmt.Sprintf("%s.%d", path, i))
		require.NoError(t, w.f.Truncate(0))
		w.size = 0
		if i%2 == 1 {
			caughtUp(i, (i+1)*per)
		}
	}
	// The gap: 5 lines written after the copy, before the truncation.
	w.write(per)
	caughtUp(rounds, (rounds+1)*per)
	copyFile(t, path, path+".gap")
	w.write(5)
	require.NoError(t, w.f.Truncate(0))
	w.write(per)
	w.close()
	total := (rounds+2)*per + 5
	require.Eventually(t, func() bool { return s.len() >= total-5 }, 20*time.Second, 10*time.Millisecond)
	time.Sleep(3 * cfg.PollInterval)
	recs := s.records()
	var kept []rec
	for _, r := range recs {
		var seq int
		_, err := fmt.Sscanf(r.body, "ct-%d ", &seq)
		require.NoError(t, err)
		gap := seq >= (rounds+1)*per && seq < (rounds+1)*per+5
		if gap {
			t.Logf("gap line %d was read before the truncation", seq)
			continue
		}
		if seq >= (rounds+1)*per+5 {
			r.body = fmt.Sprintf("ct-%d x", seq-5)
		}
		kept = append(kept, r)
	}
	checkTagOnce(t, kept, (rounds+2)*per, "ct")
	t.Logf("bytes counted lost: %d", run.counter(t, "container_logs.bytes_lost", ""))
	// The gap's lines exist in no file, so their bytes cannot be measured;
	// every truncation window is counted, so none passes silently.
	assert.Equal(t, int64(rounds+1), run.counter(t, "container_logs.truncations", ""),
		"each copytruncate is one truncation event")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o644))
}

// When the consumer refuses, reading pauses and retries with backoff; the
// records arrive once it accepts again, none dropped.
func TestBackpressureRetries(t *testing.T) {
	dir := t.TempDir()
	s := &sink{}
	s.setClosed(true)
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.MaxBatchRecords = 10
	run := startReceiver(t, cfg, s)
	path := podLogPath(t, dir, "ns", "bp", "c")
	appendFile(t, path, seqLines("bp", 0, 1000))
	require.Eventually(t, func() bool { return s.refusals() >= 4 }, 5*time.Second, 10*time.Millisecond)
	refusedAt := s.refusals()
	assert.Zero(t, run.counter(t, "container_logs.records_acknowledged", ""))
	assert.Equal(t, int64(10), run.counter(t, "container_logs.records_emitted", ""), "one batch in flight, reading paused")
	s.setClosed(false)
	require.Eventually(t, func() bool { return s.len() == 1000 }, 10*time.Second, 10*time.Millisecond)
	checkExactlyOnce(t, s.records(), 1000, "bp")
	assert.Less(t, refusedAt, 20, "retries back off")
	assert.Equal(t, int64(1000), run.counter(t, "container_logs.records_acknowledged", ""))
}

// In-flight memory is bounded across files: with the sink refusing, the
// bytes held in unacknowledged batches stay near max_in_flight_bytes (plus
// at most one record per file), and everything arrives once it accepts.
func TestInFlightBytesBounded(t *testing.T) {
	dir := t.TempDir()
	s := &sink{}
	s.setClosed(true)
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.MaxBatchBytes = 64 * 1024
	cfg.MaxInFlightBytes = 64 * 1024
	const files, per = 20, 2000
	tags := make([]string, files)
	for i := range files {
		tags[i] = fmt.Sprintf("m%02d", i)
		appendFile(t, podLogPath(t, dir, "ns", tags[i], "c"), seqLines(tags[i], 0, per))
	}
	run := startReceiver(t, cfg, s)
	const recordMax = 16
	bound := int64(cfg.MaxInFlightBytes + files*recordMax)
	var peak int64
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		peak = max(peak, run.r.inFlight.Load())
		require.LessOrEqual(t, run.r.inFlight.Load(), bound)
		time.Sleep(time.Millisecond) // sampling the gauge is the test's subject
	}
	t.Logf("peak in flight %d bytes (bound %d)", peak, bound)
	require.Positive(t, peak)
	s.setClosed(false)
	require.Eventually(t, func() bool { return s.len() == files*per }, 20*time.Second, 10*time.Millisecond)
	checkExactlyOnce(t, s.records(), per, tags...)
	assert.Zero(t, run.r.inFlight.Load())
}

// Stopping never deadlocks: with the next consumer refusing forever,
// Shutdown returns promptly, and the refused batch is not acknowledged (it
// is read again after a restart).
func TestShutdownWhileRefused(t *testing.T) {
	dir := t.TempDir()
	s := &sink{}
	s.setClosed(true)
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.CheckpointDirectory = filepath.Join(dir, "checkpoints")
	path := podLogPath(t, dir, "ns", "pod", "c")
	appendFile(t, path, seqLines("s", 0, 50))
	run := startReceiver(t, cfg, s)
	require.Eventually(t, func() bool { return s.refusals() >= 2 }, 5*time.Second, 10*time.Millisecond)
	start := time.Now()
	run.stop(t)
	assert.Less(t, time.Since(start), time.Second, "Shutdown took too long")
	s2 := &sink{}
	startReceiver(t, cfg, s2)
	require.Eventually(t, func() bool { return s2.len() == 50 }, 5*time.Second, 10*time.Millisecond)
	checkExactlyOnce(t, s2.records(), 50, "s")
}
