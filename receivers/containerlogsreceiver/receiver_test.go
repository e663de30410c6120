package containerlogsreceiver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/internal/nodestatus"
)

func TestShutdownWithoutStart(t *testing.T) {
	r, err := newReceiver(receivertestSettings(), createDefaultConfig().(*Config), &sink{})
	require.NoError(t, err)
	require.NoError(t, r.Shutdown(t.Context()))
	require.NoError(t, r.Shutdown(t.Context()))
}

func TestRecordsAndResource(t *testing.T) {
	dir := t.TempDir()
	path := podLogPath(t, dir, "shop", "cart-7d9f", "server")
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	appendFile(t, path, criLine(ts, "stdout", "F", "hello")+criLine(ts, "stderr", "F", "oops"))
	s := &sink{}
	before := time.Now()
	run := startReceiver(t, testCfg(filepath.Join(dir, "*", "*", "*.log")), s)
	require.Eventually(t, func() bool { return s.len() == 2 }, 5*time.Second, 10*time.Millisecond)
	recs := s.records()
	assert.Equal(t, "hello", recs[0].body)
	assert.Equal(t, "stdout", recs[0].stream)
	assert.Equal(t, "oops", recs[1].body)
	assert.Equal(t, "stderr", recs[1].stream)
	assert.Equal(t, path, recs[0].path)
	assert.Equal(t, ts.UnixNano(), recs[0].ts)
	assert.GreaterOrEqual(t, recs[0].observed, before.UnixNano())
	assert.Equal(t, map[string]any{
		"k8s.namespace.name":          "shop",
		"k8s.pod.name":                "cart-7d9f",
		"k8s.pod.uid":                 "uid-cart-7d9f",
		"k8s.container.name":          "server",
		"k8s.container.restart_count": int64(0),
	}, recs[0].resource)
	require.Eventually(t, func() bool {
		return run.counter(t, "container_logs.records_acknowledged", "") == 2
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, int64(2), run.counter(t, "container_logs.records_emitted", ""))
	assert.Equal(t, int64(len(criLine(ts, "stdout", "F", "hello")+criLine(ts, "stderr", "F", "oops"))),
		run.counter(t, "container_logs.bytes_read", ""))
}

func TestStartAtEndAndNewFileFromBeginning(t *testing.T) {
	dir := t.TempDir()
	old := podLogPath(t, dir, "ns", "old", "c")
	appendFile(t, old, seqLines("old", 0, 10)+"2024-01-01T00:00:00Z stdout F half-writ") // unterminated
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.StartAt = startAtEnd
	cfg.PollInterval = 200 * time.Millisecond
	cfg.RescanInterval = createDefaultConfig().(*Config).RescanInterval // the default must find a new file within 1 s
	s := &sink{}
	startReceiver(t, cfg, s)
	// Give the first scan time to place the old file at its end.
	require.Eventually(t, func() bool {
		return len(fdsTo(t, old)) == 1
	}, 5*time.Second, 10*time.Millisecond)
	appendFile(t, old, "ten\n"+seqLines("old", 10, 5))
	// A new file appearing later is read from its beginning within 1 s.
	created := time.Now()
	appendFile(t, podLogPath(t, dir, "ns", "new", "c"), seqLines("new", 0, 3))
	require.Eventually(t, func() bool {
		n := 0
		for _, r := range s.records() {
			if strings.HasPrefix(r.body, "new-") {
				n++
			}
		}
		return n == 3
	}, time.Second, 5*time.Millisecond, "new file not read within 1s")
	t.Logf("new file read after %s", time.Since(created))
	require.Eventually(t, func() bool { return s.len() == 9 }, 5*time.Second, 10*time.Millisecond)
	var old2 []string
	for _, r := range s.records() {
		if !strings.HasPrefix(r.body, "new-") {
			old2 = append(old2, r.body)
		}
	}
	// start_at end begins after the last complete line: the line that was
	// half written at start is read whole.
	assert.Equal(t, []string{"half-written", "old-10", "old-11", "old-12", "old-13", "old-14"}, old2)
}

// fdsTo lists this process's descriptors open on path (or on its deleted inode).
func fdsTo(t *testing.T, path string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.TrimSuffix(target, " (deleted)") == path {
			out = append(out, target)
		}
	}
	return out
}

// Acceptance 6: a file deleted while tailed is read to its end and its
// descriptor is released within two rescans.
func TestDeletedWhileTailing(t *testing.T) { forNotifyModes(t, testDeletedWhileTailing) }

func testDeletedWhileTailing(t *testing.T, mode func(*logsReceiver)) {
	dir := t.TempDir()
	path := podLogPath(t, dir, "ns", "pod", "c")
	appendFile(t, path, seqLines("d", 0, 100))
	s := &sink{}
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.PollInterval = 100 * time.Millisecond
	startReceiver(t, cfg, s, mode)
	require.Eventually(t, func() bool { return s.len() == 100 }, 5*time.Second, 5*time.Millisecond)
	// Write more through a descriptor that outlives the path, then delete.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(seqLines("d", 100, 1000))
	require.NoError(t, err)
	require.NoError(t, os.Remove(path))
	_, err = f.WriteString(seqLines("d", 1100, 10))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	deleted := time.Now()
	require.Eventually(t, func() bool { return len(fdsTo(t, path)) == 0 }, 5*time.Second, 5*time.Millisecond)
	released := time.Since(deleted)
	t.Logf("descriptor released %s after the delete", released)
	assert.LessOrEqual(t, released, 2*cfg.PollInterval+150*time.Millisecond, "released within 2 rescans (+ scheduling slack)")
	checkExactlyOnce(t, s.records(), 1110, "d")
}

// Acceptance 8: a line written in two halves with a pause between them is
// one record, never fragments.
func TestSlowWriterNoFragments(t *testing.T) {
	dir := t.TempDir()
	path := podLogPath(t, dir, "ns", "pod", "c")
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	s := &sink{}
	startReceiver(t, cfg, s)
	line := criLine(time.Now(), "stdout", "F", "the whole line, written slowly")
	for i := range 5 {
		appendFile(t, path, line[:len(line)/2])
		time.Sleep(3 * cfg.PollInterval) // the pause is the test's subject, not a wait for work
		appendFile(t, path, line[len(line)/2:])
		require.Eventually(t, func() bool { return s.len() == i+1 }, 5*time.Second, 5*time.Millisecond)
	}
	for _, r := range s.records() {
		assert.Equal(t, "the whole line, written slowly", r.body)
	}
	// Also with a docker json-file.
	dpath := podLogPath(t, dir, "ns", "docker", "c")
	dline := `{"log":"docker slow line\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}` + "\n"
	appendFile(t, dpath, dline[:20])
	time.Sleep(3 * cfg.PollInterval)
	appendFile(t, dpath, dline[20:])
	require.Eventually(t, func() bool { return s.len() == 6 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, "docker slow line", s.records()[5].body)
}

// Acceptance 7: a 1 MiB CRI line in 16 KiB P chunks and docker partial
// records are reassembled byte-identical; interleaved stdout and stderr are
// kept apart; a lone P is flushed after the timeout and flagged.
func TestPartialReassembly(t *testing.T) {
	dir := t.TempDir()
	cri := podLogPath(t, dir, "ns", "cri", "c")
	docker := podLogPath(t, dir, "ns", "docker", "c")
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	copy(big[1000:], "é\xff") // multi-byte and invalid bytes inside
	errMsg := "stderr between the chunks"
	var b strings.Builder
	now := time.Now()
	for off := 0; off < len(big); off += 16 * 1024 {
		end := min(off+16*1024, len(big))
		tag := "P"
		if end == len(big) {
			tag = "F"
		}
		b.WriteString(criLine(now, "stdout", tag, string(big[off:end])))
		if off == 32*1024 {
			b.WriteString(criLine(now, "stderr", "P", errMsg[:6]))
		}
		if off == 64*1024 {
			b.WriteString(criLine(now, "stderr", "F", errMsg[6:]))
		}
	}
	b.WriteString(criLine(now, "stdout", "P", "lone partial"))
	appendFile(t, cri, b.String())
	appendFile(t, docker, `{"log":"docker ","stream":"stdout","time":"2024-01-01T00:00:00Z"}`+"\n"+
		`{"log":"err\n","stream":"stderr","time":"2024-01-01T00:00:00Z"}`+"\n"+
		`{"log":"partial ","stream":"stdout","time":"2024-01-01T00:00:01Z"}`+"\n"+
		`{"log":"record\n","stream":"stdout","time":"2024-01-01T00:00:02Z"}`+"\n")
	s := &sink{}
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	run := startReceiver(t, cfg, s)
	require.Eventually(t, func() bool { return s.len() == 5 }, 5*time.Second, 10*time.Millisecond)
	byPath := map[string][]rec{}
	for _, r := range s.records() {
		byPath[r.path] = append(byPath[r.path], r)
	}
	c := byPath[cri]
	require.Len(t, c, 3)
	assert.Equal(t, errMsg, c[0].body)
	assert.Equal(t, "stderr", c[0].stream)
	want := strings.ToValidUTF8(string(big), "\uFFFD")
	assert.Equal(t, len(want), len(c[1].body))
	assert.True(t, want == c[1].body, "1 MiB line reassembled byte-identical")
	assert.False(t, c[1].truncated)
	assert.Equal(t, "lone partial", c[2].body)
	assert.True(t, c[2].incomplete, "lone P flagged")
	d := byPath[docker]
	require.Len(t, d, 2)
	assert.Equal(t, rec{body: "err", stream: "stderr", path: docker}, rec{body: d[0].body, stream: d[0].stream, path: d[0].path})
	assert.Equal(t, "docker partial record", d[1].body)
	assert.Equal(t, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(), d[1].ts)
	assert.Equal(t, int64(1), run.counter(t, "container_logs.incomplete_lines", ""))
}

// A message longer than max_log_size is cut, flagged and counted.
func TestTruncatedLine(t *testing.T) {
	dir := t.TempDir()
	path := podLogPath(t, dir, "ns", "pod", "c")
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.MaxLogSize = 4096
	long := strings.Repeat("x", 3000)
	now := time.Now()
	// 3 partial chunks (9000 bytes) and one physical line of 200 KiB.
	appendFile(t, path, criLine(now, "stdout", "P", long)+criLine(now, "stdout", "P", long)+criLine(now, "stdout", "F", long)+
		criLine(now, "stdout", "F", strings.Repeat("y", 200*1024))+criLine(now, "stdout", "F", "after"))
	s := &sink{}
	run := startReceiver(t, cfg, s)
	require.Eventually(t, func() bool { return s.len() == 3 }, 5*time.Second, 10*time.Millisecond)
	recs := s.records()
	assert.Len(t, recs[0].body, 4096)
	assert.True(t, recs[0].truncated)
	assert.Len(t, recs[1].body, 4096)
	assert.True(t, recs[1].truncated)
	assert.Equal(t, "after", recs[2].body)
	assert.Equal(t, int64(2), run.counter(t, "container_logs.truncated_lines", ""))
	_ = fmt.Sprint()
}

// The status page sees each tailed file with its offsets and record count,
// and no longer once the receiver stopped.
func TestFileStatusPublished(t *testing.T) {
	dir := t.TempDir()
	path := podLogPath(t, dir, "shop", "cart-7d9f", "server")
	ts := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	content := criLine(ts, "stdout", "F", "hello") + criLine(ts, "stderr", "F", "oops")
	appendFile(t, path, content)
	s := &sink{}
	run := startReceiver(t, testCfg(filepath.Join(dir, "*", "*", "*.log")), s)
	find := func() (nodestatus.File, bool) {
		for _, src := range run.status.Files() {
			for _, f := range src.Items {
				if f.Path == path {
					return f, true
				}
			}
		}
		return nodestatus.File{}, false
	}
	size := int64(len(content))
	require.Eventually(t, func() bool {
		f, ok := find()
		return ok && f.Acked == size && f.Records == 2
	}, 5*time.Second, 10*time.Millisecond)
	f, _ := find()
	assert.Equal(t, size, f.Offset)
	assert.Equal(t, size, f.Size)
	assert.Zero(t, f.Lag())
	assert.True(t, f.Following)
	assert.WithinDuration(t, time.Now(), f.LastRead, time.Minute)

	more := criLine(ts, "stdout", "F", "again")
	appendFile(t, path, more)
	require.Eventually(t, func() bool {
		f, _ := find()
		return f.Acked == size+int64(len(more)) && f.Records == 3
	}, 5*time.Second, 10*time.Millisecond)

	run.stop(t)
	_, ok := find()
	assert.False(t, ok, "a stopped receiver's files are withdrawn")
}
