package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// freeAddrs returns n distinct 127.0.0.1 addresses that were free a moment
// ago (the listeners are held until all are found).
func freeAddrs(n int) ([]string, error) {
	out := make([]string, 0, n)
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, "127.0.0.1:"+strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	return out, nil
}

// child is a started collector, Prometheus or Thanos process.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	logf *os.File
	proc procReader
	// pprof is the address of the child's pprof extension, if it has one.
	pprof string
}

// startChild starts bin with args under the harness's GOMAXPROCS and
// GOMEMLIMIT (when set); output goes to <workdir>/<name>.log.
func startChild(h *harness, name, bin string, args ...string) (*child, error) {
	logf, err := os.Create(filepath.Join(h.o.WorkDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+h.o.GoMaxProcs, "OTEL_SDK_DISABLED=true", "OTEL_TRACES_EXPORTER=none")
	if h.o.GoMemLimit != "" {
		cmd.Env = append(cmd.Env, "GOMEMLIMIT="+h.o.GoMemLimit)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), logf: logf,
		proc: procReader{pid: cmd.Process.Pid, clkTck: h.clkTck}}
	go func() { _ = cmd.Wait(); close(c.done) }()
	return c, nil
}

// stop interrupts the child, kills it after 15 s, and waits for it. Safe
// on a nil child and twice.
func (c *child) stop() {
	if c == nil {
		return
	}
	if !c.exited() {
		_ = c.cmd.Process.Signal(syscall.SIGINT)
	}
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.logf.Close()
}

// exited reports whether the child has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// waitHTTP polls url until it answers 200, the child exits or timeout passes.
func (c *child) waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if c.exited() {
			return fmt.Errorf("%s exited before %s answered (see %s)", c.name, url, c.logf.Name())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s did not answer 200 within %s (see %s)", c.name, url, timeout, c.logf.Name())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitFor polls cond every 20 ms until it is true, the child exits, or
// timeout passes; describe says what was awaited for the error.
func (c *child) waitFor(ctx context.Context, timeout time.Duration, cond func() bool, describe func() string) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if c.exited() {
			return fmt.Errorf("%s exited while waiting: %s (see %s)", c.name, describe(), c.logf.Name())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: timed out after %s: %s", c.name, timeout, describe())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
