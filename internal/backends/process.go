// Package backends runs real backend programs (Jaeger, Prometheus) on free
// loopback ports, for the demo, integration tests and benchmarks. Each
// program gets a configuration in which every endpoint is a free port on
// 127.0.0.1, so nothing binds a fixed host port or a public address.
package backends

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// find returns the first usable binary among $envVar and names on PATH: a
// candidate is used only if it exists and is an executable regular file, so a
// variable naming a binary that was never built falls through to PATH. The
// error says what was tried and how to install the program.
func find(envVar string, names ...string) (string, error) {
	var tried []string
	if p := os.Getenv(envVar); p != "" {
		if err := executable(p); err != nil {
			tried = append(tried, fmt.Sprintf("$%s=%s: %v", envVar, p, err))
		} else {
			return p, nil
		}
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	tried = append(tried, fmt.Sprintf("no %s on PATH", strings.Join(names, " or ")))
	return "", fmt.Errorf("%s binary not found (%s): run `make tools` or set %s", names[0], strings.Join(tried, "; "), envVar)
}

// Executable reports why path cannot be run as a program: it does not
// exist, is not a regular file, or has no execute bit. nil means it can.
func Executable(path string) error { return executable(path) }

func executable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("does not exist")
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return errors.New("not a regular file")
	case fi.Mode().Perm()&0o111 == 0:
		return errors.New("not executable")
	}
	return nil
}

// process is a started program that is ready once an HTTP URL answers 200.
type process struct {
	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// startProcess starts binary with args and extra environment, sends its
// output to logOut (may be nil), and waits until readyURL answers 200.
func startProcess(ctx context.Context, name, binary string, args, env []string, logOut io.Writer, readyURL string) (*process, error) {
	p := &process{cmd: exec.Command(binary, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = logOut, logOut
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w", name, binary, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	if err := p.waitReady(ctx, name, readyURL); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (p *process) waitReady(ctx context.Context, name, url string) error {
	err := WaitHTTP(ctx, url, 60*time.Second, p.done)
	if errors.Is(err, ErrExited) {
		return fmt.Errorf("%s %w (%v; see its output)", name, ErrExited, p.waitErr)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// ErrExited is WaitHTTP's error when the program it waits for ended.
var ErrExited = errors.New("exited before it was ready")

// WaitHTTP polls url every 100 ms until it answers 200, and fails when
// timeout passes, ctx ends or exited is closed (nil: never).
func WaitHTTP(ctx context.Context, url string, timeout time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return ErrExited
		case <-ctx.Done():
			return fmt.Errorf("not ready at %s: %w", url, ctx.Err())
		case <-tick.C:
		}
	}
}

// withFreshPorts runs start up to three times: a port picked free can be
// taken by another program before the backend binds it, and the backend
// then exits at once; each attempt picks new ports.
func withFreshPorts(start func() error) error {
	var err error
	for range 3 {
		if err = start(); !errors.Is(err, ErrExited) {
			return err
		}
	}
	return err
}

// stop interrupts the process, kills it after 10 s, and waits for it. Safe
// to call twice.
func (p *process) stop() {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}
