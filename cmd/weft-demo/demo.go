package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/backends"
	"github.com/weftobs/weft/internal/democonfig"
	"github.com/weftobs/weft/internal/loopback"
	"github.com/weftobs/weft/internal/simnode"
)

// runDemo runs the demo until ctx ends, f.duration passes or an agent
// exits. The demo's own lines go to out; the agents' stdout and stderr go
// to out and errOut unchanged.
func runDemo(ctx context.Context, f demoFlags, out, errOut io.Writer) error {
	if f.nodes == 0 {
		f.nodes = 1
	}
	if f.errorFor == 0 {
		f.errorFor = time.Minute
	}
	if err := f.validate(); err != nil {
		return err
	}
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
	// saying why and how to get it: the demo runs with what it finds. All
	// agents export to the same backends.
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

	var base democonfig.Config
	if am != nil {
		base.Alertmanager = am.URL()
	}
	if jaeger != nil {
		base.Jaeger = jaeger.OTLPGRPC
	}
	if prom != nil {
		base.Prometheus = prom.RemoteWriteURL()
	}
	base.StoreBudget = f.storeBudget()
	// The nodes come first: the agents' configurations name their
	// endpoints. Traffic flows only once Run starts, after the agents are
	// healthy; each node's spans go to its agent's OTLP endpoint, known by
	// then.
	exports := make([]simnode.ExportFunc, f.nodes)
	opts := simnode.Options{
		Dir: dir, Nodes: f.nodes, Rate: f.rate, ErrorBurst: f.errors, ErrorAfter: f.errorAfter, ErrorFor: f.errorFor,
		Exports: make([]simnode.ExportFunc, f.nodes),
	}
	for k := range opts.Exports {
		opts.Exports[k] = func(ctx context.Context, td ptrace.Traces) error { return exports[k](ctx, td) }
	}
	if f.rotate {
		opts.RotateSize = f.rotateSize
	}
	node, err := simnode.Start(opts)
	if err != nil {
		return err
	}
	defer node.Close()
	if base.RulesDir, err = democonfig.WriteRules(dir); err != nil {
		return err
	}
	// With several nodes, the agents gossip pins under a key made here,
	// joining the first (democonfig.Peers).
	var gossip []string
	var keyFile string
	if f.nodes > 1 {
		if keyFile, err = democonfig.WriteGossipKey(dir); err != nil {
			return err
		}
		if gossip, err = loopback.FreeAddrs(f.nodes); err != nil {
			return err
		}
	}

	agents := make([]*demoAgent, 0, f.nodes)
	defer func() { stopAgents(agents) }()
	for k := range f.nodes {
		cfg := base
		cfg.DataDir = filepath.Join(node.NodeDir(k), "data")
		cfg.PodsDir = node.NodePodsDir(k)
		if cfg.ScrapeJobs, err = democonfig.ScrapeJobs(node.NodeEndpoints(k)); err != nil {
			return err
		}
		if f.nodes > 1 {
			cfg.Node, cfg.KeyFile = simnode.NodeName(k), keyFile
		}
		cfgPath := filepath.Join(node.NodeDir(k), "weft-demo.yaml")
		a, err := startDemoAgent(ctx, f, bin, &cfg, cfgPath, gossip, k, out, errOut)
		if err != nil {
			if f.nodes > 1 {
				return fmt.Errorf("%s: %w", simnode.NodeName(k), err)
			}
			return err
		}
		da := &demoAgent{agent: a, cfg: cfg, cfgPath: cfgPath, name: cfg.NodeName()}
		agents = append(agents, da)
		otlpExport, closeExport, err := simnode.OTLPExporter(cfg.OTLPGRPC)
		if err != nil {
			return err
		}
		defer closeExport()
		exports[k] = otlpExport
	}

	if f.nodes == 1 {
		printDemoIntro(out, f, dir, agents[0].cfgPath, agents[0].cfg, jaeger, prom, node)
	} else {
		printClusterIntro(out, f, dir, keyFile, agents, jaeger, prom, node)
	}

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	// The simulation ends when an agent does: the demo is not what it says
	// then.
	for _, a := range agents {
		go func() {
			select {
			case <-a.Exited():
				cancelRun()
			case <-runCtx.Done():
			}
		}()
	}
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
	for _, a := range agents {
		select {
		case <-a.Exited(): // on its own: say how, if it failed
			if err := a.Err(); err != nil {
				if f.nodes > 1 {
					fmt.Fprintf(errOut, "weft demo: %s: agent stopped: %v\n", a.name, err)
				} else {
					fmt.Fprintf(errOut, "weft demo: agent stopped: %v\n", err)
				}
			}
		default:
		}
	}
	// The agents get the last spans, then stop while the endpoints still
	// answer their scrapes.
	node.Drain()
	stopAgents(agents)
	closeErr := node.Close()
	fmt.Fprintf(out, "weft demo: stopped: %s\n", node.Stats().Summary(time.Since(started)))
	return errors.Join(runErr, closeErr)
}

// demoAgent is the agent of one simulated node, with its configuration.
type demoAgent struct {
	*agent
	name    string // node name
	cfg     democonfig.Config
	cfgPath string
}

// stopAgents stops the agents one at a time, the last started first: an
// agent leaving the gossip cluster waits until a live peer has its leave
// message, so agents stopped all at once fail their leave (weft_pins:
// "timeout waiting for leave broadcast") and exit with an error.
func stopAgents(agents []*demoAgent) {
	for i := len(agents) - 1; i >= 0; i-- {
		agents[i].Stop()
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
		p("  reviews-v2 starts failing (HTTP 503) %s after start, for %s; HighErrorRate (for: 2m)", shortDuration(f.errorAfter), shortDuration(f.errorFor))
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

// printClusterIntro prints, for --nodes > 1, where everything is: per node
// its status page (pins held, received from peers, cluster members) and
// APIs.
func printClusterIntro(out io.Writer, f demoFlags, dir, keyFile string, agents []*demoAgent, jaeger *backends.Jaeger, prom *backends.Prometheus, node *simnode.Node) {
	p := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	p("weft demo: %d simulated nodes are running (%d log records/s in all), one agent each, gossiping pins.", len(agents), f.rate)
	p("")
	p("  demo directory      %s", dir)
	p("  pods and endpoints  %s   (one replica of each workload per node; requests cross nodes)", node.ManifestPath())
	p("  gossip key          %s   (weft_pins, AES-256, made for this run)", keyFile)
	p("  store budget        %d bytes of spans and of log lines per node; pinned traces are kept past it", f.storeBudget())
	for k, a := range agents {
		c := a.cfg
		p("")
		p("  %-7s status page   http://%s/   (pins held, received from peers, cluster members)", a.name, c.Query)
		p("          query API     http://%s/api/v1/query  /api/traces  /api/v1/correlate/{traceID}", c.Query)
		p("          agent OTLP    grpc %s, http http://%s", c.OTLPGRPC, c.OTLPHTTP)
		p("          health        http://%s/", c.Health)
		p("          self-metrics  http://%s:%s/metrics", c.MetricsHost, c.MetricsPort)
		p("          gossip        %s", c.Gossip)
		p("          config        %s", a.cfgPath)
		p("          logs          %s", node.NodePodsDir(k))
	}
	p("")
	if jaeger != nil {
		p("  Jaeger query API    %s/api/traces?service=reviews&limit=20   (all nodes' spans)", jaeger.QueryURL())
	} else {
		p("  traces              local stores only (put a jaeger binary on PATH, e.g. `make tools`, to see them in Jaeger)")
	}
	if prom != nil {
		p("  Prometheus          %s/graph?g0.expr=%s", prom.URL(),
			url.QueryEscape(`sum by (node, service_name, http_response_status_code) (rate(traces_span_metrics_calls_total[1m]))`))
	} else {
		p("  metrics             local stores only (install prometheus, e.g. `make tools`, to query them there)")
	}
	p("")
	if f.errors {
		p("  reviews-v2 starts failing (HTTP 503) on every node %s after start, for %s. The agent that sees", shortDuration(f.errorAfter), shortDuration(f.errorFor))
		p("  a failing span pins its trace and gossips the pin: every node keeps its fragment of the trace")
		p("  past its store budget (\"received from peers\" on each status page; /api/v1/correlate/{traceID}).")
		p("  HighErrorRate (for: 2m) fires on each node about two minutes after the burst starts.")
		if base := agents[0].cfg.Alertmanager; base != "" {
			p("  Alertmanager receives it with its evidence: %s/#/alerts", base)
		}
	}
	if f.duration > 0 {
		p("  Stops after %s.", f.duration)
	} else {
		p("  Ctrl-C stops.")
	}
}

// shortDuration writes d without zero trailing units: 1m, 1h30m, 45s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
