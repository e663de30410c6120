// Command otlpjaeger measures the CPU per span and the peak RSS of weft and of
// an OpenTelemetry Collector build (bench/peer) on the same path: OTLP/gRPC
// in → memory_limiter → otlp_grpc exporter → a real Jaeger, everything on
// 127.0.0.1. The peer is either a build of only the components on that path
// (the default) or, with -peer-tags otelcol,grpcnotrace, a build of the
// otelcol core distribution's component set: the binary a platform team
// would otherwise deploy.
//
// Each side runs as a child process with the same configuration, GOMAXPROCS
// and GOMEMLIMIT, alternately in ABBA order. For every run the harness sends a
// fixed workload of OTLP/gRPC batches, waits until Jaeger holds the last trace
// and a random sample of traces with all their spans, then reads the child's
// CPU time (utime+stime from /proc/<pid>/stat, minus what it had used when it
// became healthy) and its peak RSS (VmHWM from /proc/<pid>/status).
//
//	go run ./bench/otlpjaeger -spans 300000 -rate 5000 -rounds 3 -json /tmp/otlpjaeger.json
//
// Jaeger comes from $WEFT_JAEGER (or `jaeger` on PATH); `make tools` builds it.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftobs/weft/internal/backends"
	"github.com/weftobs/weft/internal/gobuild"
	"github.com/weftobs/weft/internal/loopback"
)

// options is the harness configuration (one flag each).
type options struct {
	WeftBin       string        // weft binary; built from ./cmd/weft when empty
	PeerBin       string        // peer binary; built from bench/peer when empty
	PeerTags      string        // build tags of bench/peer: "" (minimal) or "otelcol,grpcnotrace"
	Spans         int           // spans sent per run
	Rate          int           // spans per second; 0 sends as fast as the child accepts
	BatchSize     int           // spans per OTLP request
	SpansPerTrace int           // spans per trace (BatchSize must be a multiple)
	Rounds        int           // ABBA rounds; each side runs once per round
	Senders       int           // concurrent gRPC senders
	Sample        int           // random traces checked in Jaeger per run (plus the last one)
	GoMaxProcs    string        // GOMAXPROCS of both children
	GoMemLimit    string        // GOMEMLIMIT of both children
	DrainTimeout  time.Duration // how long to wait for Jaeger to hold the sample
	JSONPath      string        // raw samples written here when set
	WorkDir       string        // binaries, configs and logs; a temporary directory when empty
}

// sample is one run of one side.
type sample struct {
	Side            string  `json:"side"`
	Round           int     `json:"round"`
	Order           int     `json:"order"`
	Spans           int     `json:"spans"`
	RateTarget      int     `json:"rate_target_spans_per_s"`
	RateAchieved    float64 `json:"rate_achieved_spans_per_s"`
	StartupCPUSec   float64 `json:"startup_cpu_s"`
	WorkloadCPUSec  float64 `json:"workload_cpu_s"`
	CPUMicrosPerSpn float64 `json:"cpu_us_per_span"`
	ReadyRSSMiB     float64 `json:"ready_rss_mib"`
	ReadyFileMiB    float64 `json:"ready_rss_file_mib"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"`
	PeakAnonMiB     float64 `json:"peak_rss_anon_sampled_mib"`
	SendSec         float64 `json:"send_s"`
	DrainSec        float64 `json:"drain_s"`
	TracesChecked   int     `json:"traces_checked"`
	SpansChecked    int     `json:"spans_checked_in_jaeger"`
}

// report is what one harness run produces.
type report struct {
	Options options  `json:"options"`
	CLKTCK  int      `json:"clk_tck"`
	Samples []sample `json:"samples"`
}

const (
	sideWeft = "weft"
	sidePeer = "peer"
)

func main() {
	var o options
	flag.StringVar(&o.WeftBin, "weft", "", "weft binary (default: go build ./cmd/weft into the work directory)")
	flag.StringVar(&o.PeerBin, "peer", "", "peer binary (default: go build bench/peer into the work directory)")
	flag.StringVar(&o.PeerTags, "peer-tags", "", `build tags for bench/peer: "" builds only the path's components, "otelcol,grpcnotrace" the otelcol core distribution's set (describes -peer too)`)
	flag.IntVar(&o.Spans, "spans", 300000, "spans sent per run")
	flag.IntVar(&o.Rate, "rate", 5000, "spans per second; 0 = as fast as the child accepts")
	flag.IntVar(&o.BatchSize, "batch", 100, "spans per OTLP/gRPC request")
	flag.IntVar(&o.SpansPerTrace, "spans-per-trace", 10, "spans per trace (must divide -batch)")
	flag.IntVar(&o.Rounds, "rounds", 3, "ABBA rounds (each side runs once per round)")
	flag.IntVar(&o.Senders, "senders", 2, "concurrent gRPC senders")
	flag.IntVar(&o.Sample, "sample", 200, "random traces checked in Jaeger per run")
	flag.StringVar(&o.GoMaxProcs, "gomaxprocs", "2", "GOMAXPROCS of both children")
	flag.StringVar(&o.GoMemLimit, "gomemlimit", "768MiB", "GOMEMLIMIT of both children")
	flag.DurationVar(&o.DrainTimeout, "drain-timeout", 60*time.Second, "wait at most this long for Jaeger to hold the sample")
	flag.StringVar(&o.JSONPath, "json", "", "write the raw samples as JSON to this file")
	flag.StringVar(&o.WorkDir, "workdir", "", "directory for binaries, configs and logs (default: a temporary one, removed at the end)")
	flag.Parse()

	rep, err := run(context.Background(), o, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "otlpjaeger:", err)
		os.Exit(1)
	}
	fmt.Print(markdown(rep))
}

func (o options) validate() error {
	switch {
	case o.Spans <= 0 || o.BatchSize <= 0 || o.SpansPerTrace <= 0 || o.Rounds <= 0 || o.Senders <= 0:
		return errors.New("-spans, -batch, -spans-per-trace, -rounds and -senders must be positive")
	case o.Rate < 0 || o.Sample < 0:
		return errors.New("-rate and -sample must not be negative")
	case o.BatchSize%o.SpansPerTrace != 0:
		return errors.New("-spans-per-trace must divide -batch, so that every trace is in one request")
	case o.Spans%o.BatchSize != 0:
		return errors.New("-spans must be a multiple of -batch")
	case o.Spans/o.SpansPerTrace > 90000:
		return errors.New("more than 90,000 traces per run: Jaeger's memory store keeps 100,000")
	}
	return nil
}

// run builds what is missing, starts Jaeger and runs both sides in ABBA
// order. Progress goes to logw.
func run(ctx context.Context, o options, logw io.Writer) (*report, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "otlpjaeger-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		o.WorkDir = dir
	}
	if err := buildBinaries(ctx, &o, logw); err != nil {
		return nil, err
	}
	if selectsOtelcol(o.PeerTags) {
		if err := checkPeerComponents(ctx, o.PeerBin); err != nil {
			return nil, err
		}
	}
	jbin, err := backends.FindJaeger()
	if err != nil {
		return nil, err
	}
	jlog, err := os.Create(filepath.Join(o.WorkDir, "jaeger.log"))
	if err != nil {
		return nil, err
	}
	defer jlog.Close()
	jaeger, err := backends.StartJaeger(ctx, jbin, o.WorkDir, jlog)
	if err != nil {
		return nil, err
	}
	defer jaeger.Stop()
	// WaitHTTP polls with the default client; drop its keep-alive
	// connections to the stopped children and Jaeger.
	defer http.DefaultClient.CloseIdleConnections()

	rep := &report{Options: o, CLKTCK: clockTicks()}
	bins := map[string]string{sideWeft: o.WeftBin, sidePeer: o.PeerBin}
	order := 0
	for round := range o.Rounds {
		sides := []string{sideWeft, sidePeer}
		if round%2 == 1 {
			sides = []string{sidePeer, sideWeft}
		}
		for _, side := range sides {
			order++
			fmt.Fprintf(logw, "round %d/%d: %s ...\n", round+1, o.Rounds, side)
			s, err := runOne(ctx, o, side, bins[side], jaeger, rep.CLKTCK, order)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w (logs in %s)", round+1, side, err, o.WorkDir)
			}
			s.Round = round + 1
			fmt.Fprintf(logw, "  %.2f µs/span, RSS %.1f MiB when ready (%.1f file-backed), peak %.1f MiB (anon %.1f), %.0f spans/s, drained in %.1fs, %d traces / %d spans verified in Jaeger\n",
				s.CPUMicrosPerSpn, s.ReadyRSSMiB, s.ReadyFileMiB, s.PeakRSSMiB, s.PeakAnonMiB, s.RateAchieved, s.DrainSec, s.TracesChecked, s.SpansChecked)
			rep.Samples = append(rep.Samples, s)
		}
	}
	if o.JSONPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(o.JSONPath, append(b, '\n'), 0o644); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// repoRoot walks up from the working directory to weft's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/weftobs/weft\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the weft repository, or pass -weft and -peer")
		}
		dir = parent
	}
}

func buildBinaries(ctx context.Context, o *options, logw io.Writer) error {
	if o.WeftBin != "" && o.PeerBin != "" {
		return nil
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	build := func(dir, out, pkg, tags string) error { return goBuild(ctx, dir, out, pkg, tags, logw) }
	if o.WeftBin == "" {
		o.WeftBin = filepath.Join(o.WorkDir, "weft")
		if err := build(root, o.WeftBin, "./cmd/weft", ""); err != nil {
			return err
		}
	}
	if o.PeerBin == "" {
		o.PeerBin = filepath.Join(o.WorkDir, "peer")
		if err := build(filepath.Join(root, "bench", "peer"), o.PeerBin, ".", o.PeerTags); err != nil {
			return err
		}
	}
	return nil
}

// childConfig is the same for both sides: OTLP/gRPC in, memory_limiter,
// otlp_grpc out to Jaeger, health_check for readiness, no internal metrics.
const childConfig = `extensions:
  health_check:
    endpoint: {{health}}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{otlp}}
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 1024
    spike_limit_mib: 256
exporters:
  otlp_grpc:
    endpoint: {{jaeger}}
    tls:
      insecure: true
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter]
      exporters: [otlp_grpc]
`

// runOne runs one side once: start, wait healthy, send, wait for Jaeger,
// read /proc, stop.
func runOne(ctx context.Context, o options, side, bin string, jaeger *backends.Jaeger, clkTck, order int) (sample, error) {
	s := sample{Side: side, Order: order, Spans: o.Spans, RateTarget: o.Rate}
	addrs, err := loopback.FreeAddrs(2)
	if err != nil {
		return s, err
	}
	otlpAddr, healthAddr := addrs[0], addrs[1]
	cfg := strings.NewReplacer("{{health}}", healthAddr, "{{otlp}}", otlpAddr, "{{jaeger}}", jaeger.OTLPGRPC).Replace(childConfig)
	name := fmt.Sprintf("%02d-%s", order, side)
	cfgPath := filepath.Join(o.WorkDir, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return s, err
	}
	logf, err := os.Create(filepath.Join(o.WorkDir, name+".log"))
	if err != nil {
		return s, err
	}
	defer logf.Close()

	cmd := exec.Command(bin, "--config", "file:"+cfgPath)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+o.GoMaxProcs, "GOMEMLIMIT="+o.GoMemLimit,
		"OTEL_SDK_DISABLED=true", "OTEL_TRACES_EXPORTER=none")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return s, fmt.Errorf("start %s: %w", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	defer stopChild(cmd, done)

	if err := backends.WaitHTTP(ctx, "http://"+healthAddr+"/", 60*time.Second, done); err != nil {
		return s, fmt.Errorf("%s not healthy: %w", side, err)
	}
	pid := cmd.Process.Pid
	cpu0, err := cpuSeconds(pid, clkTck)
	if err != nil {
		return s, err
	}
	s.StartupCPUSec = cpu0
	ready, err := procStatusKiB(pid, "VmRSS:")
	if err != nil {
		return s, err
	}
	s.ReadyRSSMiB = float64(ready) / 1024
	file, err := procStatusKiB(pid, "RssFile:")
	if err != nil {
		return s, err
	}
	s.ReadyFileMiB = float64(file) / 1024
	// The kernel keeps no peak of anonymous memory (heap, stacks) apart from
	// file-backed pages (the binary's text), so sample it.
	stopAnon := sampleAnon(pid, 50*time.Millisecond)
	defer stopAnon()

	w := newWorkload(o)
	t0 := time.Now()
	if err := send(ctx, o, otlpAddr, w); err != nil {
		return s, err
	}
	s.SendSec = time.Since(t0).Seconds()
	s.RateAchieved = float64(o.Spans) / s.SendSec

	t1 := time.Now()
	traces, spans, err := waitDrained(ctx, o, jaeger.QueryURL(), w, done)
	if err != nil {
		return s, err
	}
	s.DrainSec = time.Since(t1).Seconds()
	s.TracesChecked, s.SpansChecked = traces, spans

	cpu1, err := cpuSeconds(pid, clkTck)
	if err != nil {
		return s, err
	}
	hwm, err := procStatusKiB(pid, "VmHWM:")
	if err != nil {
		return s, err
	}
	s.PeakAnonMiB = float64(stopAnon()) / 1024
	s.WorkloadCPUSec = cpu1 - cpu0
	s.CPUMicrosPerSpn = s.WorkloadCPUSec * 1e6 / float64(o.Spans)
	s.PeakRSSMiB = float64(hwm) / 1024
	return s, nil
}

// sampleAnon reads RssAnon of pid every interval until the returned
// function is called, which returns the largest value seen in KiB (a lower
// bound of the true peak). Calling it again returns the same value.
func sampleAnon(pid int, interval time.Duration) func() int {
	stop := make(chan struct{})
	done := make(chan struct{})
	peak := 0
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			if kib, err := procStatusKiB(pid, "RssAnon:"); err == nil && kib > peak {
				peak = kib
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	return func() int {
		once.Do(func() { close(stop); <-done })
		return peak
	}
}

// stopChild interrupts the child, kills it after 10 s, and waits for it.
func stopChild(cmd *exec.Cmd, done <-chan struct{}) {
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// workload is the fixed set of spans of one run. Trace IDs are a random
// per-run prefix plus the trace's index, so runs never collide in Jaeger.
type workload struct {
	o        options
	prefix   [8]byte
	services []string
}

func newWorkload(o options) *workload {
	w := &workload{o: o, services: []string{"checkout", "cart", "payment", "shipping", "frontend"}}
	binary.BigEndian.PutUint64(w.prefix[:], rand.Uint64()|1)
	return w
}

func (w *workload) traces() int { return w.o.Spans / w.o.SpansPerTrace }

func (w *workload) traceID(trace int) pcommon.TraceID {
	var id pcommon.TraceID
	copy(id[:8], w.prefix[:])
	binary.BigEndian.PutUint64(id[8:], uint64(trace)+1)
	return id
}

func (w *workload) spanID(trace, i int) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], uint64(trace*w.o.SpansPerTrace+i)+1)
	return id
}

// batch builds OTLP request k: one resource (a pod of one service) and
// BatchSize spans, each with ten attributes, forming whole traces.
func (w *workload) batch(k int) ptraceotlp.ExportRequest {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	svc := w.services[k%len(w.services)]
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", svc)
	ra.PutStr("service.version", "1.4.2")
	ra.PutStr("k8s.namespace.name", "shop")
	ra.PutStr("k8s.pod.name", svc+"-7d9f8b6c5-x2k4p")
	ra.PutStr("k8s.node.name", "node-1")
	ra.PutStr("host.name", "node-1")
	ra.PutStr("telemetry.sdk.language", "go")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	ss.Scope().SetVersion("0.72.0")
	spans := ss.Spans()
	spans.EnsureCapacity(w.o.BatchSize)
	now := time.Now()
	perBatch := w.o.BatchSize / w.o.SpansPerTrace
	for t := range perBatch {
		trace := k*perBatch + t
		tid := w.traceID(trace)
		for i := range w.o.SpansPerTrace {
			sp := spans.AppendEmpty()
			sp.SetTraceID(tid)
			sp.SetSpanID(w.spanID(trace, i))
			route := "/api/v1/items/{id}"
			if i == 0 {
				sp.SetKind(ptrace.SpanKindServer)
				sp.SetName("GET " + route)
			} else {
				sp.SetParentSpanID(w.spanID(trace, 0))
				sp.SetKind(ptrace.SpanKindClient)
				sp.SetName("SELECT items")
			}
			start := now.Add(-time.Duration(w.o.SpansPerTrace-i) * time.Millisecond)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(300+i*17) * time.Microsecond)))
			status := int64(200)
			if trace%50 == 0 && i == 0 {
				status = 500
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage("upstream timeout")
			}
			a := sp.Attributes()
			a.EnsureCapacity(10)
			a.PutStr("http.request.method", "GET")
			a.PutStr("http.route", route)
			a.PutStr("url.path", "/api/v1/items/"+strconv.Itoa(trace%1000))
			a.PutInt("http.response.status_code", status)
			a.PutStr("server.address", svc+".shop.svc.cluster.local")
			a.PutInt("server.port", 8080)
			a.PutStr("network.protocol.version", "1.1")
			a.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) bench/1.0")
			a.PutStr("client.address", "10.42.0."+strconv.Itoa(1+trace%250))
			a.PutStr("db.system.name", "postgresql")
		}
	}
	return ptraceotlp.NewExportRequestFromTraces(td)
}

// send pushes every batch, paced at o.Rate spans per second (0: unpaced),
// through o.Senders concurrent senders on one connection. Any refused
// request fails the run: the comparison only holds when both sides took
// every span.
func send(ctx context.Context, o options, addr string, w *workload) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	batches := o.Spans / o.BatchSize
	next := make(chan int, o.Senders)
	var failed atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range o.Senders {
		wg.Go(func() {
			for k := range next {
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := client.Export(rctx, w.batch(k))
				cancel()
				if err != nil {
					failed.Add(1)
					once.Do(func() { firstErr = err })
				}
			}
		})
	}
	start := time.Now()
	for k := range batches {
		if o.Rate > 0 {
			due := start.Add(time.Duration(float64(k*o.BatchSize) / float64(o.Rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		next <- k
	}
	close(next)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d requests refused, first: %w", n, batches, firstErr)
	}
	return nil
}

// waitDrained waits until Jaeger holds the last trace and a random sample
// of traces, each with every span sent, and returns how many traces and
// spans it verified.
func waitDrained(ctx context.Context, o options, queryURL string, w *workload, exited <-chan struct{}) (int, int, error) {
	n := w.traces()
	check := append([]int{n - 1}, rand.Perm(n - 1)[:min(o.Sample, n-1)]...)
	deadline := time.Now().Add(o.DrainTimeout)
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	spans := 0
	for _, t := range check {
		id := w.traceID(t)
		for {
			got, err := jaegerSpanCount(ctx, client, queryURL, hex.EncodeToString(id[:]))
			if err != nil {
				return 0, 0, err
			}
			if got == o.SpansPerTrace {
				spans += got
				break
			}
			if got > o.SpansPerTrace {
				return 0, 0, fmt.Errorf("trace %x: Jaeger holds %d spans, %d were sent", id, got, o.SpansPerTrace)
			}
			select {
			case <-exited:
				return 0, 0, errors.New("child exited before Jaeger held every span")
			default:
			}
			if time.Now().After(deadline) {
				return 0, 0, fmt.Errorf("trace %x: Jaeger holds %d of %d spans after %s", id, got, o.SpansPerTrace, o.DrainTimeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return len(check), spans, nil
}

// jaegerSpanCount returns how many spans Jaeger's query API returns for a
// trace ID (0 when it does not know the trace yet).
func jaegerSpanCount(ctx context.Context, client *http.Client, queryURL, traceID string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, queryURL+"/api/traces/"+traceID, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0, nil
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("jaeger /api/traces/%s: %s", traceID, resp.Status)
	}
	var body struct {
		Data []struct {
			Spans []json.RawMessage `json:"spans"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("jaeger /api/traces/%s: %w", traceID, err)
	}
	total := 0
	for _, d := range body.Data {
		total += len(d.Spans)
	}
	return total, nil
}

// clockTicks is the kernel's clock ticks per second (`getconf CLK_TCK`),
// the unit of utime and stime in /proc/<pid>/stat.
func clockTicks() int {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

// cpuSeconds is utime+stime of pid in seconds.
func cpuSeconds(pid, clkTck int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it start at
	// state (field 3), so utime (14) and stime (15) are at 11 and 12.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return float64(ut+st) / float64(clkTck), nil
}

// procStatusKiB is a field of /proc/<pid>/status in KiB, such as "VmHWM:"
// (peak RSS) or "VmRSS:".
func procStatusKiB(pid int, field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// stats is median, min and max.
type stats struct{ Median, Min, Max float64 }

func summarize(v []float64) stats {
	if len(v) == 0 {
		return stats{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{Median: m, Min: s[0], Max: s[len(s)-1]}
}

// sideSummary is one side's row of the table.
type sideSummary struct {
	N                                         int
	CPU, ReadyRSS, ReadyFile, RSS, Anon, Rate stats
}

func summarizeSide(rep *report, side string) sideSummary {
	var c, rr, rf, r, a, q []float64
	for _, s := range rep.Samples {
		if s.Side == side {
			c = append(c, s.CPUMicrosPerSpn)
			rr = append(rr, s.ReadyRSSMiB)
			rf = append(rf, s.ReadyFileMiB)
			r = append(r, s.PeakRSSMiB)
			a = append(a, s.PeakAnonMiB)
			q = append(q, s.RateAchieved)
		}
	}
	return sideSummary{N: len(c), CPU: summarize(c), ReadyRSS: summarize(rr), ReadyFile: summarize(rf),
		RSS: summarize(r), Anon: summarize(a), Rate: summarize(q)}
}

// markdown is the result table: per side the median and range of CPU per
// span and peak RSS, and the weft/peer ratio of the medians.
func markdown(rep *report) string {
	var b strings.Builder
	o := rep.Options
	rate := "max"
	if o.Rate > 0 {
		rate = fmt.Sprintf("%d spans/s", o.Rate)
	}
	fmt.Fprintf(&b, "%d spans per run at %s, batches of %d, %d spans per trace, %d sender(s), GOMAXPROCS=%s GOMEMLIMIT=%s, %d ABBA round(s)\n\n",
		o.Spans, rate, o.BatchSize, o.SpansPerTrace, o.Senders, o.GoMaxProcs, o.GoMemLimit, o.Rounds)
	b.WriteString("| side | runs | CPU µs/span median (min–max) | peak RSS MiB median (min–max) | peak anon RSS MiB, sampled (median) | RSS MiB when ready: total / file-backed (median) | achieved spans/s (median) |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	w, p := summarizeSide(rep, sideWeft), summarizeSide(rep, sidePeer)
	row := func(name string, s sideSummary) {
		fmt.Fprintf(&b, "| %s | %d | %.2f (%.2f–%.2f) | %.1f (%.1f–%.1f) | %.1f | %.1f / %.1f | %.0f |\n", name, s.N,
			s.CPU.Median, s.CPU.Min, s.CPU.Max, s.RSS.Median, s.RSS.Min, s.RSS.Max, s.Anon.Median,
			s.ReadyRSS.Median, s.ReadyFile.Median, s.Rate.Median)
	}
	row("weft", w)
	row(peerName(o.PeerTags), p)
	ratio := func(a, b float64) string {
		if b == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	fmt.Fprintf(&b, "| ratio weft / peer | | %s | %s | %s | %s / %s | |\n",
		ratio(w.CPU.Median, p.CPU.Median), ratio(w.RSS.Median, p.RSS.Median), ratio(w.Anon.Median, p.Anon.Median),
		ratio(w.ReadyRSS.Median, p.ReadyRSS.Median), ratio(w.ReadyFile.Median, p.ReadyFile.Median))
	return b.String()
}

// goBuild builds pkg in dir into out with the release build's flags
// (internal/gobuild), weft and the peer alike.
func goBuild(ctx context.Context, dir, out, pkg, tags string, logw io.Writer) error {
	fmt.Fprintf(logw, "building %s ...\n", out)
	cmd := gobuild.Command(ctx, dir, out, pkg, tags)
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s in %s: %w", pkg, dir, err)
	}
	return nil
}

// selectsOtelcol tells whether bench/peer's build tags select the otelcol
// core distribution's component set.
func selectsOtelcol(tags string) bool {
	for _, t := range strings.Split(tags, ",") {
		if strings.TrimSpace(t) == "otelcol" {
			return true
		}
	}
	return false
}

// peerName labels the peer by the component set its build tags select.
func peerName(tags string) string {
	if selectsOtelcol(tags) {
		return "otelcol core (bench/peer -tags " + tags + ")"
	}
	return "otelcol, the path's components only (bench/peer)"
}

// otelcolSet is the component set bench/peer/components_otelcol.go
// documents, by kind as the collector's `components` command names them.
// The report calls that build "otelcol core": the harness checks the
// built binary holds exactly this set before it measures anything.
var otelcolSet = map[string][]string{
	"receivers":  {"jaeger", "kafka", "nop", "otlp", "prometheus", "zipkin"},
	"processors": {"batch", "memory_limiter", "probabilistic_sampler", "resource"},
	"exporters":  {"debug", "kafka", "nop", "otlp_grpc", "otlp_http", "prometheus", "prometheus_remote_write"},
	"connectors": {"forward"},
	"extensions": {"health_check", "pprof", "zpages"},
}

// checkPeerComponents runs `bin components` and compares its output with
// otelcolSet.
func checkPeerComponents(ctx context.Context, bin string) error {
	out, err := exec.CommandContext(ctx, bin, "components").Output()
	if err != nil {
		return fmt.Errorf("%s components: %w", bin, err)
	}
	return compareComponents(out, otelcolSet)
}

// compareComponents compares the YAML a collector's `components` command
// prints with want, kind by kind (order does not matter), and names every
// component missing or extra.
func compareComponents(out []byte, want map[string][]string) error {
	var got map[string]yaml.Node // buildinfo is a map, the kinds are lists
	if err := yaml.Unmarshal(out, &got); err != nil {
		return fmt.Errorf("reading the peer's components: %w", err)
	}
	var errs []error
	for _, kind := range slices.Sorted(maps.Keys(want)) {
		var list []struct {
			Name string `yaml:"name"`
		}
		if n, ok := got[kind]; ok {
			if err := n.Decode(&list); err != nil {
				return fmt.Errorf("reading the peer's %s: %w", kind, err)
			}
		}
		have := map[string]bool{}
		for _, c := range list {
			have[c.Name] = true
		}
		for _, n := range want[kind] {
			if !have[n] {
				errs = append(errs, fmt.Errorf("%s: %s missing", kind, n))
			}
			delete(have, n)
		}
		for _, n := range slices.Sorted(maps.Keys(have)) {
			errs = append(errs, fmt.Errorf("%s: %s not in the documented set", kind, n))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("the peer's components differ from bench/peer/components_otelcol.go: %w", err)
	}
	return nil
}
