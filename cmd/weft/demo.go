package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/template"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/weftobs/weft/internal/backends"
	"github.com/weftobs/weft/internal/loopback"
	"github.com/weftobs/weft/internal/simnode"
)

//go:embed config/demo.yaml.tmpl
var demoConfigTemplate string

// demoRules is the HighErrorRate rule file shipped in deploy/ (a test keeps
// the copies equal).
//
//go:embed config/rules/high-error-rate.rules.yaml
var demoRules []byte

// writeDemoRules writes the demo's rule files and returns their directory.
func writeDemoRules(dir string) (string, error) {
	rulesDir := filepath.Join(dir, "rules")
	if err := os.MkdirAll(rulesDir, 0o755); err != nil {
		return "", fmt.Errorf("demo rules: %w", err)
	}
	return rulesDir, os.WriteFile(filepath.Join(rulesDir, "high-error-rate.rules.yaml"), demoRules, 0o644)
}

type demoFlags struct {
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
	logOpts    []zap.Option // for tests: hooks on the agent's logger
}

func newDemoCommand() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the agent against a simulated node (mesh app and a function, all on loopback)",
		Long: "demo starts a simulated node: CRI container logs of a small Istio mesh app and a Knative function " +
			"under a /var/log/pods-style tree, Envoy /stats/prometheus and application /metrics endpoints, and " +
			"OTLP spans, every request with one W3C trace ID in all three. It starts weft on it with a demo " +
			"configuration and, when their binaries are on PATH, a Jaeger for the traces, a Prometheus for the " +
			"metrics and an Alertmanager for the alerts.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
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

// demoConfig fills config/demo.yaml.tmpl.
type demoConfig struct {
	Health, PProf, OTLPGRPC, OTLPHTTP string
	Query                             string // weft_query's endpoint
	RulesDir                          string // weft_rules' rule files
	Alertmanager                      string // URL of an Alertmanager; empty: none
	MetricsHost, MetricsPort          string
	DataDir                           string
	Jaeger                            string // OTLP/gRPC endpoint of Jaeger; empty: none
	Prometheus                        string // remote-write URL of Prometheus; empty: none
	PodsDir                           string // the simulated node's /var/log/pods
	ScrapeJobs                        []scrapeJob
}

// scrapeJob is one pod_scrape job of the demo: the simulated endpoints that
// share a metrics path.
type scrapeJob struct {
	Name, Path string
	Targets    []scrapeTarget
}

type scrapeTarget struct {
	Addr, Namespace, Pod, Container string
}

// demoScrapeJobs groups the simulated node's metrics endpoints into jobs as
// the pod_scrape presets would (Envoy sidecars, Knative queue-proxies,
// application containers), as static targets.
func demoScrapeJobs(endpoints []simnode.Endpoint) ([]scrapeJob, error) {
	jobs := []scrapeJob{{Name: "envoy"}, {Name: "queue-proxy"}, {Name: "apps"}}
	for _, e := range endpoints {
		u, err := url.Parse(e.URL)
		if err != nil {
			return nil, fmt.Errorf("simulated endpoint %q: %w", e.URL, err)
		}
		i := 2
		switch e.Container {
		case "istio-proxy":
			i = 0
		case "queue-proxy":
			i = 1
		}
		jobs[i].Path = u.Path
		jobs[i].Targets = append(jobs[i].Targets, scrapeTarget{Addr: u.Host, Namespace: e.Namespace, Pod: e.Pod, Container: e.Container})
	}
	return jobs, nil
}

func runDemo(ctx context.Context, f demoFlags, out io.Writer) error {
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

	cfg := demoConfig{DataDir: filepath.Join(dir, "data")}
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
	if cfg.ScrapeJobs, err = demoScrapeJobs(node.Endpoints()); err != nil {
		return err
	}
	if cfg.RulesDir, err = writeDemoRules(dir); err != nil {
		return err
	}

	cfgPath := filepath.Join(dir, "weft-demo.yaml")
	agentDone, stopAgent, err := startDemoAgent(ctx, &cfg, cfgPath, out, f.logOpts)
	if err != nil {
		return err
	}
	defer func() {
		stopAgent()
		<-agentDone
	}()
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
		case <-agentDone:
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
	closeErr := node.Close()
	fmt.Fprintf(out, "weft demo: stopped: %s\n", node.Stats().Summary(time.Since(started)))
	return errors.Join(runErr, closeErr)
}

// startDemoAgent picks free loopback ports, writes the configuration and
// starts the agent until it is healthy. A port picked free can be taken by
// another program before the agent binds it, so a failed start is retried
// on new ports, three times at most.
func startDemoAgent(ctx context.Context, cfg *demoConfig, cfgPath string, out io.Writer, logOpts []zap.Option) (<-chan struct{}, func(), error) {
	for attempt := 1; ; attempt++ {
		addrs, err := loopback.FreeAddrs(6)
		if err != nil {
			return nil, nil, err
		}
		cfg.Health, cfg.PProf, cfg.OTLPGRPC, cfg.OTLPHTTP, cfg.Query = addrs[0], addrs[1], addrs[2], addrs[3], addrs[5]
		cfg.MetricsHost, cfg.MetricsPort, _ = net.SplitHostPort(addrs[4])
		if err := writeDemoConfig(cfgPath, *cfg); err != nil {
			return nil, nil, err
		}
		agentCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done, err := startAgent(agentCtx, "file:"+cfgPath, logOpts...)
		if err != nil {
			stop()
			return nil, nil, err
		}
		err = waitHTTP(ctx, "http://"+cfg.Health+"/", done)
		if err == nil {
			return done, stop, nil
		}
		stop()
		<-done
		if attempt == 3 || ctx.Err() != nil {
			return nil, nil, fmt.Errorf("agent did not become healthy: %w", err)
		}
		fmt.Fprintf(out, "weft demo: the agent did not start (%v); trying other ports\n", err)
	}
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

func writeDemoConfig(path string, cfg demoConfig) error {
	var buf bytes.Buffer
	if err := renderDemoConfig(&buf, cfg); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}

func renderDemoConfig(w io.Writer, cfg demoConfig) error {
	tmpl, err := template.New("demo").Option("missingkey=error").Parse(demoConfigTemplate)
	if err != nil {
		return fmt.Errorf("parse demo config template: %w", err)
	}
	if err := tmpl.Execute(w, cfg); err != nil {
		return fmt.Errorf("render demo config: %w", err)
	}
	return nil
}

// startAgent runs the collector in this process with the configuration at
// uri (e.g. "file:/path"). The returned channel is closed when it has
// stopped. logOpts are added to the agent's logger (tests hook it).
func startAgent(ctx context.Context, uri string, logOpts ...zap.Option) (<-chan struct{}, error) {
	set := collectorSettings(uri)
	set.DisableGracefulShutdown = true // the demo handles signals itself
	set.LoggingOptions = append(set.LoggingOptions, logOpts...)
	col, err := otelcol.NewCollector(set)
	if err != nil {
		return nil, fmt.Errorf("create agent: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := col.Run(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "weft demo: agent stopped: %v\n", err)
		}
	}()
	return done, nil
}

// waitHTTP polls url until it answers 200; it fails after 30 s, when the
// context ends or when stopped is closed.
func waitHTTP(ctx context.Context, url string, stopped <-chan struct{}) error {
	return backends.WaitHTTP(ctx, url, 30*time.Second, stopped)
}

func printDemoIntro(out io.Writer, f demoFlags, dir, cfgPath string, cfg demoConfig, jaeger *backends.Jaeger, prom *backends.Prometheus, node *simnode.Node) {
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
