package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/backends"
	"github.com/weftobs/weft/internal/democonfig"
	"github.com/weftobs/weft/internal/simnode"
)

// runDemo runs the demo until ctx ends, f.duration passes or the agent
// exits. The demo's own lines go to out; the agent's stdout and stderr go
// to out and errOut unchanged.
func runDemo(ctx context.Context, f demoFlags, out, errOut io.Writer) error {
	bin, err := findAgent(f.weft, selfDir())
	if err != nil {
		return err
	}
	if f.stopGrace <= 0 {
		f.stopGrace = agentStopGrace
	}
	dir := f.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "weft-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("demo dir: %w", err)
	}

	// A backend that is missing or fails to start is skipped with one line
	// saying why and how to get it: the demo runs with what it finds.
	var stops []func()
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	jaeger := demoBackend(out, &stops, "jaeger", f.jaeger, backends.FindJaeger, func(bin string) (*backends.Jaeger, error) {
		return backends.StartJaeger(ctx, bin, dir, nil)
	})
	prom := demoBackend(out, &stops, "prometheus", f.prometheus, backends.FindPrometheus, func(bin string) (*backends.Prometheus, error) {
		return backends.StartPrometheus(ctx, bin, dir, "", nil)
	})
	am := demoBackend(out, &stops, "alertmanager", f.alertmgr, backends.FindAlertmanager, func(bin string) (*backends.Alertmanager, error) {
		return backends.StartAlertmanager(ctx, bin, dir, nil)
	})

	cfg := democonfig.Config{DataDir: filepath.Join(dir, "data")}
	if am != nil {
		cfg.Alertmanager = am.URL()
	}
	if jaeger != nil {
		cfg.Jaeger = jaeger.OTLPGRPC
	}
	if prom != nil {
		cfg.Prometheus = prom.RemoteWriteURL()
	}
	// The node comes first: the agent's configuration names its endpoints.
	// Traffic flows only once Run starts, after the agent is healthy; its
	// spans go to the agent's OTLP endpoint, known by then.
	var export simnode.ExportFunc
	opts := simnode.Options{
		Dir: dir, Rate: f.rate, ErrorBurst: f.errors, ErrorAfter: f.errorAfter,
		Export: func(ctx context.Context, td ptrace.Traces) error { return export(ctx, td) },
	}
	if f.rotate {
		opts.RotateSize = f.rotateSize
	}
	node, err := simnode.Start(opts)
	if err != nil {
		return err
	}
	defer node.Close()
	cfg.PodsDir = node.PodsDir()
	if cfg.ScrapeJobs, err = democonfig.ScrapeJobs(node.Endpoints()); err != nil {
		return err
	}
	if cfg.RulesDir, err = democonfig.WriteRules(dir); err != nil {
		return err
	}

	cfgPath := filepath.Join(dir, "weft-demo.yaml")
	agent, err := startDemoAgent(ctx, f, bin, &cfg, cfgPath, out, errOut)
	if err != nil {
		return err
	}
	defer agent.Stop()
	otlpExport, closeExport, err := simnode.OTLPExporter(cfg.OTLPGRPC)
	if err != nil {
		return err
	}
	defer closeExport()
	export = otlpExport

	printDemoIntro(out, f, dir, cfgPath, cfg, jaeger, prom, node)

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	// The simulation ends when the agent does: there is nothing to demo then.
	go func() {
		select {
		case <-agent.Exited():
			cancelRun()
		case <-runCtx.Done():
		}
	}()
	started := time.Now()
	if f.progress > 0 {
		go func() {
			t := time.NewTicker(f.progress)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
					fmt.Fprintf(out, "weft demo: %s\n", node.Stats().Summary(time.Since(started)))
				}
			}
		}()
	}
	runErr := node.Run(runCtx, f.duration)
	cancelRun()
	select {
	case <-agent.Exited(): // on its own: say how, if it failed
		if err := agent.Err(); err != nil {
			fmt.Fprintf(errOut, "weft demo: agent stopped: %v\n", err)
		}
	default:
	}
	closeErr := node.Close()
	fmt.Fprintf(out, "weft demo: stopped: %s\n", node.Stats().Summary(time.Since(started)))
	return errors.Join(runErr, closeErr)
}

// demoBackendBinary resolves a --jaeger/--prometheus/--alertmanager flag to a
// binary path. An empty path means the backend is not started; skip then says
// why (empty for "off"). Whether the path came from the flag, the environment
// or PATH, it is used only if it is an executable file.
func demoBackendBinary(flag string, find func() (string, error)) (bin, skip string) {
	switch flag {
	case "off", "":
		return "", ""
	case "auto":
		bin, err := find()
		if err != nil {
			return "", err.Error()
		}
		return bin, ""
	default:
		if err := backends.Executable(flag); err != nil {
			return "", fmt.Sprintf("%s: %v: run `make tools` or pass auto", flag, err)
		}
		return flag, ""
	}
}

// demoBackend starts one optional backend of the demo. On success it adds the
// backend's Stop to stops; when the flag is off, the binary is missing or it
// does not start, it returns nil, printing one line that says why (nothing
// for off).
func demoBackend[B interface{ Stop() }](out io.Writer, stops *[]func(), name, flag string, find func() (string, error), start func(bin string) (B, error)) B {
	var none B
	bin, skip := demoBackendBinary(flag, find)
	if bin != "" {
		b, err := start(bin)
		if err == nil {
			*stops = append(*stops, b.Stop)
			return b
		}
		skip = err.Error()
	}
	if skip != "" {
		fmt.Fprintf(out, "weft demo: %s skipped: %s\n", name, skip)
	}
	return none
}

func printDemoIntro(out io.Writer, f demoFlags, dir, cfgPath string, cfg democonfig.Config, jaeger *backends.Jaeger, prom *backends.Prometheus, node *simnode.Node) {
	p := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	p("weft demo: a simulated node is running (%d log records/s).", f.rate)
	p("")
	p("  node directory      %s", dir)
	p("  container logs      %s", node.PodsDir())
	p("  pods and endpoints  %s", node.ManifestPath())
	p("  agent config        %s", cfgPath)
	p("")
	p("  status page         http://%s/   (weft_query: /api/v1/query, /api/traces, /api/v1/correlate/{traceID})", cfg.Query)
	p("  agent health        http://%s/", cfg.Health)
	p("  agent pprof         http://%s/debug/pprof/", cfg.PProf)
	p("  agent self-metrics  http://%s:%s/metrics", cfg.MetricsHost, cfg.MetricsPort)
	p("  agent OTLP          grpc %s, http http://%s", cfg.OTLPGRPC, cfg.OTLPHTTP)
	if jaeger != nil {
		p("  Jaeger query API    %s/api/traces?service=reviews&limit=20", jaeger.QueryURL())
	} else {
		p("  traces              local store only (put a jaeger binary on PATH, e.g. `make tools`, to see them in Jaeger)")
	}
	if prom != nil {
		p("  Prometheus          %s/graph?g0.expr=%s", prom.URL(),
			url.QueryEscape(`sum by (service_name, http_response_status_code) (rate(traces_span_metrics_calls_total[1m]))`))
	} else {
		p("  metrics             local store only (install prometheus, e.g. `make tools`, to query them there)")
	}
	p("")
	for _, e := range node.Endpoints() {
		p("  metrics %-46s %s", e.Namespace+"/"+e.Pod+"/"+e.Container, e.URL)
	}
	p("")
	if f.errors {
		p("  reviews-v2 starts failing (HTTP 503) %s after start, for a minute; HighErrorRate (for: 2m)", f.errorAfter)
		p("  fires about two minutes later: see http://%s/api/v1/alerts and the status page.", cfg.Query)
		if cfg.Alertmanager != "" {
			p("  Alertmanager receives it with its evidence: %s/#/alerts", cfg.Alertmanager)
		} else {
			p("  (install prometheus-alertmanager, e.g. `make tools`, to see it arrive in Alertmanager)")
		}
	}
	if f.duration > 0 {
		p("  Stops after %s.", f.duration)
	} else {
		p("  Ctrl-C stops.")
	}
}
