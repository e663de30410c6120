package weftremotewriteextension

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extensions/weftremotewriteextension/internal/catchup"
)

// helperEnv makes the test binary run runHelper: the value is the WAL
// directory and the endpoint URL, separated by a space.
const helperEnv = "WEFT_RW_TEST_HELPER"

// runHelper starts the extension and appends what its standard input
// asks, one line each, answering "ok <n>" once the append is committed:
//
//	batch <metric> <series> <samples> <base> <step> <stale>
//	fence <ts>
//
// It runs until killed.
func runHelper() int {
	dir, url, _ := strings.Cut(os.Getenv(helperEnv), " ")
	rw, err := newRemoteWrite(nopSettings(), testConfig(dir, url))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rw.grace = 0
	if err := rw.Start(context.Background(), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for !rw.catchups[0].done.Load() {
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var n int64
		f := strings.Fields(in.Text())
		switch f[0] {
		case "batch":
			var b batch
			_, err = fmt.Sscan(strings.Join(f[1:], " "), &b.metric, &b.series, &b.samples, &b.base, &b.step, &b.stale)
			if err == nil {
				err = b.append(rw.Appendable())
			}
		case "fence":
			var ts int64
			if _, err = fmt.Sscan(f[1], &ts); err == nil {
				n, err = fenceAt(rw.Appendable(), ts)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("ok", n)
	}
	return 0
}

// helperProc is the helper process and its pipes.
type helperProc struct {
	cmd *exec.Cmd
	in  io.Writer
	out *bufio.Scanner
}

func startHelper(t *testing.T, dir, url string) *helperProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir+" "+url)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	h := &helperProc{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	require.True(t, h.out.Scan(), "helper exited before it was ready")
	require.Equal(t, "ready", h.out.Text())
	return h
}

// do sends one command and returns the number the helper answers.
func (h *helperProc) do(t *testing.T, format string, args ...any) int64 {
	t.Helper()
	_, err := fmt.Fprintf(h.in, format+"\n", args...)
	require.NoError(t, err)
	require.True(t, h.out.Scan(), "helper exited")
	var n int64
	_, err = fmt.Sscanf(h.out.Text(), "ok %d", &n)
	require.NoError(t, err, "helper said %q", h.out.Text())
	return n
}

// TestKillAndRestart: a process appends, its endpoint goes down, it
// appends more and is SIGKILLed. The next start sends everything the
// killed process had committed and not sent, and nothing it had sent
// (except, at most, the fence sample: progress marks have whole-second
// resolution).
func TestKillAndRestart(t *testing.T) {
	sk, url := newSink(t)
	dir := t.TempDir()
	h := startHelper(t, dir, url)

	b1 := batch{metric: "before", series: 6, samples: 5, base: futureBase(), step: 100, stale: true}
	h.do(t, "batch %s %d %d %d %d %t", b1.metric, b1.series, b1.samples, b1.base, b1.step, b1.stale)
	none := labels.EmptyLabels()
	require.Eventually(t, func() bool { return received(sk, b1, none) }, 30*time.Second, 10*time.Millisecond)
	fence := h.do(t, "fence %d", b1.lastTS())
	require.Eventually(t, func() bool { return len(sk.got(fenceKey)) == 1 }, 30*time.Second, 10*time.Millisecond)
	// The killed process recorded on disk that b1 was sent.
	require.Eventually(t, func() bool { return diskMark(t, dir) >= b1.lastTS() }, 10*time.Second, 10*time.Millisecond)

	sk.setDown(true)
	b2 := batch{metric: "during", series: 6, samples: 5, base: fence + 1000, step: 100, stale: true}
	h.do(t, "batch %s %d %d %d %d %t", b2.metric, b2.series, b2.samples, b2.base, b2.step, b2.stale)
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGKILL))
	_ = h.cmd.Wait()
	require.False(t, received(sk, b2, none), "b2 must not have reached the sink before the kill")
	sk.setDown(false)
	waitPast(b2.lastTS())

	rw := startRW(t, testConfig(dir, url), 0)
	require.Eventually(t, func() bool { return received(sk, b2, none) }, 30*time.Second, 10*time.Millisecond)
	waitLive(t, rw)
	requireReceived(t, sk, b1, none)
	requireReceived(t, sk, b2, none)
	t.Logf("fence sample received %d times; catch-up sent %d samples, %d exemplars", len(sk.got(fenceKey)),
		rw.catchups[0].sent.Samples.Load(), rw.catchups[0].sent.Exemplars.Load())
	assert.LessOrEqual(t, len(sk.got(fenceKey)), 2)
	for s := 0; s < b2.series; s += 3 {
		assert.Len(t, sk.gotExemplars(b2.key(s, none)), b2.samples, "exemplars of series %d survive the kill", s)
	}
}

// diskMark reads the progress mark of endpoint ep from the file.
func diskMark(t *testing.T, dir string) int64 {
	p, err := catchup.LoadProgress(dir, []string{"ep"}, time.Now())
	require.NoError(t, err)
	return p.Mark("ep")
}
