// Package simnode simulates a Kubernetes node for weft's demo, tests and
// benchmarks: a small Istio mesh app (productpage → reviews v1/v2 → ratings)
// and one Knative function, all on loopback. It writes CRI-format container
// logs under a /var/log/pods-style tree, serves Envoy /stats/prometheus and
// application /metrics endpoints, and sends OTLP spans. Every request carries
// one W3C trace ID that appears in the log lines, the spans and the metrics'
// exemplars, so the three signals can be joined.
package simnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/loopback"
)

// Options configure the simulated node. Zero values take the defaults noted.
type Options struct {
	// Dir is the node's root; container logs go to Dir/pods. Required.
	Dir string
	// Rate is the target number of log records per second, all containers
	// together (default 200).
	Rate int
	// ErrorBurst makes reviews-v2 answer half of its requests with 503 from
	// ErrorAfter (default 30s) for ErrorFor (default 60s) after Run starts.
	ErrorBurst bool
	ErrorAfter time.Duration
	ErrorFor   time.Duration
	// RotateSize, when > 0, rotates a container log the kubelet way once it
	// reaches this many bytes (the kubelet's default is 10 MiB).
	RotateSize int64
	// Export receives the simulated spans every FlushInterval; nil drops them.
	Export ExportFunc
	// FlushInterval is how often logs are flushed and spans exported
	// (default 100ms).
	FlushInterval time.Duration
	// Seed makes the traffic repeatable.
	Seed uint64
}

func (o *Options) setDefaults() {
	if o.Rate <= 0 {
		o.Rate = 200
	}
	if o.ErrorAfter == 0 {
		o.ErrorAfter = 30 * time.Second
	}
	if o.ErrorFor == 0 {
		o.ErrorFor = 60 * time.Second
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
}

// Stats are counters of what the node produced so far.
type Stats struct {
	Requests      int64 // simulated user requests
	Records       int64 // CRI log records written
	SpansSent     int64 // spans accepted by Export
	SpansDropped  int64 // spans Export failed on or that found the queue full
	Rotations     int64 // log files rotated
	LastExportErr string
}

// Endpoint is a metrics endpoint served by a simulated container.
type Endpoint struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Container string `json:"container"`
	// Port is the container port the endpoint stands for (15090, 9091, ...);
	// URL is where the simulation actually serves it.
	Port int    `json:"port"`
	URL  string `json:"url"`
}

// Node is a running simulated node.
type Node struct {
	opts     Options
	pods     []pod
	logs     [][]*logFile // [pod][container]
	mesh     []*meshMetrics
	app      []*appMetrics
	revision *revisionMetrics

	endpoints []Endpoint
	servers   []*http.Server

	rng     *rand.Rand
	spans   *spanBatch
	line    []byte
	started time.Time

	requests, records, spansSent, spansDropped, rotations atomic.Int64
	lastExportErr                                         atomic.Value // string

	exportQ  chan ptrace.Traces
	wg       sync.WaitGroup
	closeMu  sync.Mutex
	closed   bool
	stopSend chan struct{}
}

// Start creates the node's log tree and starts its metrics endpoints and
// span sender. Traffic flows once Run is called. Close releases everything.
func Start(opts Options) (*Node, error) {
	opts.setDefaults()
	if opts.Dir == "" {
		return nil, errors.New("simnode: Options.Dir is required")
	}
	n := &Node{
		opts:     opts,
		pods:     topology(),
		rng:      rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		started:  time.Now(),
		exportQ:  make(chan ptrace.Traces, 8),
		stopSend: make(chan struct{}),
	}
	n.spans = newSpanBatch(n.pods)
	n.lastExportErr.Store("")
	if err := n.openLogs(); err != nil {
		_ = n.Close()
		return nil, err
	}
	if err := n.serveMetrics(); err != nil {
		_ = n.Close()
		return nil, err
	}
	if err := n.writeManifest(); err != nil {
		_ = n.Close()
		return nil, err
	}
	n.wg.Add(1)
	go n.sendLoop()
	return n, nil
}

// PodsDir is the /var/log/pods-style directory of the node.
func (n *Node) PodsDir() string { return filepath.Join(n.opts.Dir, "pods") }

// ManifestPath is a JSON description of the node's pods and endpoints.
func (n *Node) ManifestPath() string { return filepath.Join(n.opts.Dir, "node.json") }

// Endpoints lists the metrics endpoints the node serves.
func (n *Node) Endpoints() []Endpoint { return n.endpoints }

// Stats returns the counters so far.
func (n *Node) Stats() Stats {
	return Stats{
		Requests:      n.requests.Load(),
		Records:       n.records.Load(),
		SpansSent:     n.spansSent.Load(),
		SpansDropped:  n.spansDropped.Load(),
		Rotations:     n.rotations.Load(),
		LastExportErr: n.lastExportErr.Load().(string),
	}
}

func (n *Node) openLogs() error {
	n.logs = make([][]*logFile, len(n.pods))
	for i := range n.pods {
		p := &n.pods[i]
		for _, c := range p.containers {
			path := filepath.Join(n.PodsDir(), p.logDir(), c.name, "0.log")
			lf, err := openLogFile(path)
			if err != nil {
				return fmt.Errorf("simnode: %w", err)
			}
			n.logs[i] = append(n.logs[i], lf)
		}
	}
	return nil
}

func (n *Node) serveMetrics() error {
	n.mesh = make([]*meshMetrics, len(n.pods))
	n.app = make([]*appMetrics, len(n.pods))
	n.revision = newRevisionMetrics()
	for i := range n.pods {
		p := &n.pods[i]
		n.app[i] = newAppMetrics()
		for _, c := range p.containers {
			var reg *prometheus.Registry
			openMetrics := false
			switch c.name {
			case "istio-proxy":
				n.mesh[i] = newMeshMetrics(n.started)
				reg = n.mesh[i].reg
			case "queue-proxy":
				reg = n.revision.reg
			default:
				reg, openMetrics = n.app[i].reg, true
			}
			url, err := n.serve(c.metricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: openMetrics}))
			if err != nil {
				return err
			}
			n.endpoints = append(n.endpoints, Endpoint{
				Namespace: p.namespace, Pod: p.name, Container: c.name, Port: c.metricsPort, URL: url,
			})
		}
	}
	return nil
}

// serve starts an HTTP server on a free loopback port and returns the URL of
// path on it.
func (n *Node) serve(path string, h http.Handler) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(loopback.Host, "0"))
	if err != nil {
		return "", fmt.Errorf("simnode: listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	n.servers = append(n.servers, srv)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		_ = srv.Serve(l) // returns http.ErrServerClosed on Close
	}()
	return "http://" + l.Addr().String() + path, nil
}

// manifest is the JSON written to node.json: what a Kubernetes API would say
// about the node's pods, plus where their endpoints really are.
type manifest struct {
	Pods      []manifestPod `json:"pods"`
	Endpoints []Endpoint    `json:"endpoints"`
}

type manifestPod struct {
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name"`
	UID         string            `json:"uid"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Containers  []string          `json:"containers"`
	LogDir      string            `json:"log_dir"`
}

func (n *Node) writeManifest() error {
	m := manifest{Endpoints: n.endpoints}
	for i := range n.pods {
		p := &n.pods[i]
		mp := manifestPod{
			Namespace: p.namespace, Name: p.name, UID: p.uid(), Labels: p.labels, Annotations: p.annotations,
			LogDir: filepath.Join(n.PodsDir(), p.logDir()),
		}
		for _, c := range p.containers {
			mp.Containers = append(mp.Containers, c.name)
		}
		m.Pods = append(m.Pods, mp)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.ManifestPath(), b, 0o644); err != nil {
		return fmt.Errorf("simnode: write manifest: %w", err)
	}
	return nil
}

// log writes msg to a container's log and returns the records written.
func (n *Node) log(podIdx, containerIdx int, ts time.Time, stream string, msg []byte) int {
	return n.logs[podIdx][containerIdx].write(ts, stream, msg)
}

// Run generates traffic at the configured rate until ctx ends or duration
// passes (0: no limit). It flushes all logs before it returns.
func (n *Node) Run(ctx context.Context, duration time.Duration) error {
	n.started = time.Now()
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	tick := time.NewTicker(n.opts.FlushInterval)
	defer tick.Stop()
	var written int64
	last := n.started
	for {
		select {
		case <-ctx.Done():
			return n.flush(time.Now())
		case now := <-tick.C:
			// Spread the tick's requests over the time since the last one,
			// so no two requests of a series end at the same instant.
			due := int64(now.Sub(n.started).Seconds() * float64(n.opts.Rate))
			span := now.Sub(last)
			for start := written; written < due; {
				frac := float64(written-start) / float64(due-start)
				written += int64(n.step(last.Add(time.Duration(frac * float64(span)))))
			}
			last = now
			if err := n.flush(now); err != nil {
				return err
			}
		}
	}
}

// step simulates one request at now and returns the log records it wrote.
func (n *Node) step(now time.Time) int {
	r := n.request(now)
	n.requests.Add(1)
	n.records.Add(int64(r))
	return r
}

// flush writes buffered log records, rotates files that grew past the limit,
// and hands the collected spans to the sender.
func (n *Node) flush(now time.Time) error {
	for _, files := range n.logs {
		for _, lf := range files {
			if err := lf.flush(); err != nil {
				return err
			}
			if n.opts.RotateSize > 0 && lf.size >= n.opts.RotateSize {
				if err := lf.rotate(now); err != nil {
					return err
				}
				n.rotations.Add(1)
			}
		}
	}
	td, count := n.spans.take()
	if count == 0 || n.opts.Export == nil {
		return nil
	}
	select {
	case n.exportQ <- td:
	default:
		n.spansDropped.Add(int64(count))
	}
	return nil
}

// sendLoop exports span batches one at a time; on Close it delivers what is
// queued, then stops.
func (n *Node) sendLoop() {
	defer n.wg.Done()
	for {
		select {
		case td := <-n.exportQ:
			n.export(td)
		case <-n.stopSend:
			for {
				select {
				case td := <-n.exportQ:
					n.export(td)
				default:
					return
				}
			}
		}
	}
}

func (n *Node) export(td ptrace.Traces) {
	count := int64(td.SpanCount())
	if err := n.opts.Export(context.Background(), td); err != nil {
		n.spansDropped.Add(count)
		n.lastExportErr.Store(err.Error())
		return
	}
	n.spansSent.Add(count)
}

// Close stops the endpoints and the sender (after it delivered what was
// queued) and closes the log files. Safe to call twice.
func (n *Node) Close() error {
	n.closeMu.Lock()
	defer n.closeMu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	var errs []error
	for _, s := range n.servers {
		errs = append(errs, s.Close())
	}
	close(n.stopSend)
	n.wg.Wait()
	for _, files := range n.logs {
		for _, lf := range files {
			errs = append(errs, lf.close())
		}
	}
	return errors.Join(errs...)
}

// Summary is a one-line account of the stats, for progress output.
func (s Stats) Summary(elapsed time.Duration) string {
	rate := 0.0
	if elapsed > 0 {
		rate = float64(s.Records) / elapsed.Seconds()
	}
	out := "requests=" + strconv.FormatInt(s.Requests, 10) +
		" log_records=" + strconv.FormatInt(s.Records, 10) +
		" (" + strconv.FormatFloat(rate, 'f', 0, 64) + "/s)" +
		" spans_sent=" + strconv.FormatInt(s.SpansSent, 10) +
		" spans_dropped=" + strconv.FormatInt(s.SpansDropped, 10) +
		" rotations=" + strconv.FormatInt(s.Rotations, 10)
	if s.LastExportErr != "" {
		out += " last_export_error=" + strconv.Quote(s.LastExportErr)
	}
	return out
}
