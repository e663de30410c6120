package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftobs/weft/internal/simnode"
)

// demoFlags are weft-demo's command-line flags.
type demoFlags struct {
	weft       string // the agent binary; empty: found by findAgent
	nodes      int
	rate       int
	duration   time.Duration
	errors     bool
	errorAfter time.Duration
	errorFor   time.Duration
	budget     int64
	rotate     bool
	rotateSize int64
	dir        string
	jaeger     string
	prometheus string
	alertmgr   string
	progress   time.Duration
	stopGrace  time.Duration // SIGTERM to SIGKILL (0: agentStopGrace); not a flag
}

// multiNodeBudget is the store budget of each agent with more than one
// node: small enough that each agent evicts within the first minute at the
// default rate, so that the failing traces' fragments outlive their
// neighbours only because they are pinned.
const multiNodeBudget = 1 << 20

// minStoreBudget is weft_store's smallest traces_max_bytes/logs_max_bytes.
const minStoreBudget = 64 << 10

// validate checks the flags; errors name the flag and the allowed values.
func (f *demoFlags) validate() error {
	var errs []error
	if f.nodes < 1 || f.nodes > simnode.MaxNodes {
		errs = append(errs, fmt.Errorf("--nodes: between 1 and %d, got %d", simnode.MaxNodes, f.nodes))
	}
	if f.budget != 0 && f.budget < minStoreBudget {
		errs = append(errs, fmt.Errorf("--store-budget: 0 (default) or at least %d bytes, got %d", minStoreBudget, f.budget))
	}
	if f.errorFor < 0 {
		errs = append(errs, fmt.Errorf("--error-for: must not be negative, got %s", f.errorFor))
	}
	return errors.Join(errs...)
}

// storeBudget is the store budget of each agent: --store-budget, or its
// default for the number of nodes (0: the store's own default).
func (f *demoFlags) storeBudget() int64 {
	if f.budget == 0 && f.nodes > 1 {
		return multiNodeBudget
	}
	return f.budget
}

func newCommand() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "weft-demo",
		Short: "Run the weft agent against a simulated node (mesh app and a function, all on loopback)",
		Long: "weft-demo starts a simulated node: CRI container logs of a small Istio mesh app and a Knative function " +
			"under a /var/log/pods-style tree, Envoy /stats/prometheus and application /metrics endpoints, and " +
			"OTLP spans, every request with one W3C trace ID in all three. It runs the weft binary on it with a demo " +
			"configuration (`weft --config FILE`, a child process) and, when their binaries are on PATH, a Jaeger for " +
			"the traces, a Prometheus for the metrics and an Alertmanager for the alerts.\n\n" +
			"With --nodes N (up to 9) it simulates N nodes, one agent each, with a replica of every workload on each " +
			"node: requests cross nodes, so each node holds a fragment of every trace. The agents gossip pins " +
			"(weft_pins, under a key made for the run): a trace that fails on one node is kept by every node that " +
			"holds part of it, past its store budget (--store-budget). All agents export to the same backends.",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.weft, "weft", "", "the weft agent binary (default: weft next to this program, else $WEFT_BIN, else weft on PATH)")
	fl.IntVar(&f.nodes, "nodes", 1, fmt.Sprintf("simulated nodes, 1 … %d, one agent each; with more than one, every node runs a replica of each workload, requests cross nodes and the agents gossip pins (weft_pins)", simnode.MaxNodes))
	fl.IntVar(&f.rate, "rate", 200, "log records per second written by all simulated containers together")
	fl.DurationVar(&f.duration, "duration", 0, "stop after this long (0: run until interrupted)")
	fl.BoolVar(&f.errors, "errors", true, "inject a burst of HTTP 503 in reviews-v2")
	fl.DurationVar(&f.errorAfter, "error-after", 30*time.Second, "when the error burst starts")
	fl.DurationVar(&f.errorFor, "error-for", time.Minute, "how long the error burst lasts")
	fl.Int64Var(&f.budget, "store-budget", 0, "bytes of spans and of log lines each agent's store keeps before it evicts the oldest (traces_max_bytes, logs_max_bytes; 0: the store's 64 MiB with one node, 1 MiB with more, so that pins matter)")
	fl.BoolVar(&f.rotate, "rotate", false, "rotate container logs the kubelet way (rename at --rotate-size)")
	fl.Int64Var(&f.rotateSize, "rotate-size", 10<<20, "log size in bytes at which --rotate renames a file")
	fl.StringVar(&f.dir, "dir", "", "directory for the simulated nodes (one subdirectory each with --nodes > 1) and the backends (default: a temporary directory, removed at exit)")
	fl.StringVar(&f.jaeger, "jaeger", "auto", "auto: start Jaeger if a jaeger binary is on PATH (or $WEFT_JAEGER); off: never; or a path to the binary")
	fl.StringVar(&f.prometheus, "prometheus", "auto", "auto: start Prometheus if a prometheus binary is on PATH (or $WEFT_PROMETHEUS); off: never; or a path to the binary")
	fl.StringVar(&f.alertmgr, "alertmanager", "auto", "auto: start Alertmanager if prometheus-alertmanager or alertmanager is on PATH (or $WEFT_ALERTMANAGER) and send the alerts there; off: never; or a path to the binary")
	fl.DurationVar(&f.progress, "progress", 10*time.Second, "how often to print counters (0: never)")
	return cmd
}
