package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/weftobs/weft/internal/backends"
	"github.com/weftobs/weft/internal/democonfig"
	"github.com/weftobs/weft/internal/loopback"
)

// agentStopGrace is how long the agent has to shut down after SIGTERM (it
// drains its pipelines and closes its stores) before it is killed.
const agentStopGrace = 15 * time.Second

// findAgent returns the weft binary to run: flag when given (--weft), else
// weft in selfDir (the directory of this program: `make build` puts both in
// bin/), else $WEFT_BIN, else weft on PATH. A candidate is used only if it is
// an executable file; the error says what was tried and what to run.
func findAgent(flag, selfDir string) (string, error) {
	if flag != "" {
		if err := backends.Executable(flag); err != nil {
			return "", fmt.Errorf("--weft %s: %v: run `make build` (it writes bin/weft)", flag, err)
		}
		return flag, nil
	}
	var tried []string
	if selfDir != "" {
		p := filepath.Join(selfDir, "weft")
		err := backends.Executable(p)
		if err == nil {
			return p, nil
		}
		tried = append(tried, fmt.Sprintf("%s: %v", p, err))
	}
	if p := os.Getenv("WEFT_BIN"); p != "" {
		err := backends.Executable(p)
		if err == nil {
			return p, nil
		}
		tried = append(tried, fmt.Sprintf("$WEFT_BIN=%s: %v", p, err))
	}
	if p, err := exec.LookPath("weft"); err == nil {
		return p, nil
	}
	tried = append(tried, "no weft on PATH")
	return "", fmt.Errorf("weft binary not found (%s): run `make build` (it writes bin/weft), or pass --weft or set $WEFT_BIN",
		strings.Join(tried, "; "))
}

// selfDir is the directory of the running program, or "" if unknown.
func selfDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return filepath.Dir(exe)
}

// agent is a running weft process.
type agent struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, set before done is closed
}

// startAgentProcess runs `bin --config cfgPath` with this program's
// environment; its stdout and stderr go to stdout and stderr unchanged.
// Stop (or ctx ending) sends SIGTERM, then SIGKILL after grace.
func startAgentProcess(ctx context.Context, bin, cfgPath string, stdout, stderr io.Writer, grace time.Duration) (*agent, error) {
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = grace // after it, os/exec kills the process
	cmd.SysProcAttr = agentSysProcAttr()
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start agent %s: %w", bin, err)
	}
	a := &agent{cancel: cancel, done: make(chan struct{})}
	go func() {
		a.err = cmd.Wait()
		close(a.done)
	}()
	return a, nil
}

// Stop ends the agent (SIGTERM, SIGKILL after the grace period) and waits
// for it. Safe to call twice.
func (a *agent) Stop() {
	a.cancel()
	<-a.done
}

// Exited is closed when the agent process has ended, whoever ended it.
func (a *agent) Exited() <-chan struct{} { return a.done }

// Err is how the process ended (nil: exit status 0); valid once Exited is
// closed.
func (a *agent) Err() error { return a.err }

// startDemoAgent picks free loopback ports, writes the configuration and
// runs the agent until it is healthy. A port picked free can be taken by
// another program before the agent binds it, so a failed start is retried
// on new ports, three times at most.
//
// gossip, when not nil, holds the gossip addresses of all agents: agent k
// binds gossip[k] and joins the others. A retry also moves its gossip
// port (gossip[k] is updated): the agents started later join it there,
// and those started before learn it from them.
func startDemoAgent(ctx context.Context, f demoFlags, bin string, cfg *democonfig.Config, cfgPath string, gossip []string, k int, stdout, stderr io.Writer) (*agent, error) {
	for attempt := 1; ; attempt++ {
		n := 6
		if gossip != nil && attempt > 1 {
			n++
		}
		addrs, err := loopback.FreeAddrs(n)
		if err != nil {
			return nil, err
		}
		cfg.Health, cfg.PProf, cfg.OTLPGRPC, cfg.OTLPHTTP, cfg.Query = addrs[0], addrs[1], addrs[2], addrs[3], addrs[5]
		cfg.MetricsHost, cfg.MetricsPort, _ = net.SplitHostPort(addrs[4])
		if gossip != nil {
			if n == 7 {
				gossip[k] = addrs[6]
			}
			cfg.Gossip, cfg.Join = gossip[k], democonfig.Peers(gossip, k)
		}
		if err := democonfig.Write(cfgPath, *cfg); err != nil {
			return nil, err
		}
		// The agent outlives ctx: the demo stops it after the node, so
		// that the node's last spans are delivered.
		a, err := startAgentProcess(context.WithoutCancel(ctx), bin, cfgPath, stdout, stderr, f.stopGrace)
		if err != nil {
			return nil, err
		}
		err = backends.WaitHTTP(ctx, "http://"+cfg.Health+"/", 30*time.Second, a.Exited())
		if err == nil {
			return a, nil
		}
		a.Stop()
		if errors.Is(err, backends.ErrExited) {
			err = fmt.Errorf("%w (%v; see its output)", err, a.Err())
		}
		if attempt == 3 || ctx.Err() != nil {
			return nil, fmt.Errorf("agent did not become healthy: %w", err)
		}
		fmt.Fprintf(stdout, "weft demo: the agent did not start (%v); trying other ports\n", err)
	}
}
