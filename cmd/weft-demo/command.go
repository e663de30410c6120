package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// demoFlags are weft-demo's command-line flags.
type demoFlags struct {
	weft       string // the agent binary; empty: found by findAgent
	rate       int
	duration   time.Duration
	errors     bool
	errorAfter time.Duration
	rotate     bool
	rotateSize int64
	dir        string
	jaeger     string
	prometheus string
	alertmgr   string
	progress   time.Duration
	stopGrace  time.Duration // SIGTERM to SIGKILL (0: agentStopGrace); not a flag
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
			"the traces, a Prometheus for the metrics and an Alertmanager for the alerts.",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.weft, "weft", "", "the weft agent binary (default: weft next to this program, else $WEFT_BIN, else weft on PATH)")
	fl.IntVar(&f.rate, "rate", 200, "log records per second written by all simulated containers together")
	fl.DurationVar(&f.duration, "duration", 0, "stop after this long (0: run until interrupted)")
	fl.BoolVar(&f.errors, "errors", true, "inject a burst of HTTP 503 in reviews-v2")
	fl.DurationVar(&f.errorAfter, "error-after", 30*time.Second, "when the error burst starts")
	fl.BoolVar(&f.rotate, "rotate", false, "rotate container logs the kubelet way (rename at --rotate-size)")
	fl.Int64Var(&f.rotateSize, "rotate-size", 10<<20, "log size in bytes at which --rotate renames a file")
	fl.StringVar(&f.dir, "dir", "", "directory for the simulated node (default: a temporary directory, removed at exit)")
	fl.StringVar(&f.jaeger, "jaeger", "auto", "auto: start Jaeger if a jaeger binary is on PATH (or $WEFT_JAEGER); off: never; or a path to the binary")
	fl.StringVar(&f.prometheus, "prometheus", "auto", "auto: start Prometheus if a prometheus binary is on PATH (or $WEFT_PROMETHEUS); off: never; or a path to the binary")
	fl.StringVar(&f.alertmgr, "alertmanager", "auto", "auto: start Alertmanager if prometheus-alertmanager or alertmanager is on PATH (or $WEFT_ALERTMANAGER) and send the alerts there; off: never; or a path to the binary")
	fl.DurationVar(&f.progress, "progress", 10*time.Second, "how often to print counters (0: never)")
	return cmd
}
