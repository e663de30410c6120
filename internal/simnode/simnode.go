// Package simnode simulates a Kubernetes node for weft's demo, tests and
// benchmarks: a small Istio mesh app (productpage → reviews v1/v2 → ratings)
// and one Knative function, all on loopback. It writes CRI-format container
// logs under a /var/log/pods-style tree, serves Envoy /stats/prometheus and
// application /metrics endpoints, and sends OTLP spans. Every request carries
// one W3C trace ID that appears in the log lines, the spans and the metrics'
// exemplars, so the three signals can be joined.
//
// With Options.Nodes > 1 it simulates that many nodes, each with its own
// log tree, endpoints and span destination, and one replica of every
// workload on each: a request picks a replica of each hop at random, as
// the mesh's load balancing does, so it crosses nodes and every node holds
// a fragment of the trace (its spans and the log lines of its pods).
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
	// Dir is the node's root; container logs go to Dir/pods. With more
	// than one node, the root of node-1, node-2, … is Dir/node-1, … (see
	// NodeDir). Required.
	Dir string
	// Nodes is the number of simulated nodes, 1 … MaxNodes (default 1).
	Nodes int
	// Rate is the target number of log records per second, all containers
	// together (default 200).
	Rate int
	// ErrorBurst makes reviews-v2 (every replica, so on every node) answer
	// half of its requests with 503 from ErrorAfter (default 30s) for
	// ErrorFor (default 60s) after Run starts.
	ErrorBurst bool
	ErrorAfter time.Duration
	ErrorFor   time.Duration
	// RotateSize, when > 0, rotates a container log the kubelet way once it
	// reaches this many bytes (the kubelet's default is 10 MiB).
	RotateSize int64
	// Export receives the simulated spans every FlushInterval, each node's
	// in batches of their own; nil drops them.
	Export ExportFunc
	// Exports, when set, has one ExportFunc per node (its agent's OTLP
	// endpoint) and is used instead of Export.
	Exports []ExportFunc
	// FlushInterval is how often logs are flushed and spans exported
	// (default 100ms).
	FlushInterval time.Duration
	// Seed makes the traffic repeatable.
	Seed uint64
}

func (o *Options) setDefaults() {
	if o.Nodes == 0 {
		o.Nodes = 1
	}
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
	// Node is the name of the simulated node the pod runs on (NodeName).
	Node string `json:"node"`
}

// exportQueue is how many span batches (one per node per FlushInterval)
// wait for a slow agent before the node drops new ones (counted in
// Stats.SpansDropped): 6.4 s at the default interval. With 8 (0.8 s), three
// agents under the race detector on a loaded 2-core machine made it drop.
const exportQueue = 64

// Node is a running simulated node, or several (Options.Nodes) sharing one
// traffic generator.
type Node struct {
	opts     Options
	pods     []pod
	logs     [][]*logFile       // [pod][container]
	mesh     []*meshMetrics     // by pod; nil for pods without a sidecar
	app      []*appMetrics      // by pod
	revision []*revisionMetrics // by pod; nil for pods without a queue-proxy

	endpoints []Endpoint
	servers   []*http.Server

	rng     *rand.Rand
	spans   []*spanBatch // by node
	line    []byte
	started time.Time

	requests, records, spansSent, spansDropped, rotations atomic.Int64
	lastExportErr                                         atomic.Value // string

	exportQ  []chan ptrace.Traces // by node
	sendWG   sync.WaitGroup       // the senders
	drain    sync.Once
	wg       sync.WaitGroup // the endpoints
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
	if opts.Nodes < 1 || opts.Nodes > MaxNodes {
		return nil, fmt.Errorf("simnode: Options.Nodes: between 1 and %d, got %d", MaxNodes, opts.Nodes)
	}
	if opts.Exports != nil && len(opts.Exports) != opts.Nodes {
		return nil, fmt.Errorf("simnode: Options.Exports: one per node (%d), got %d", opts.Nodes, len(opts.Exports))
	}
	n := &Node{
		opts:     opts,
		pods:     topology(opts.Nodes),
		rng:      rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		started:  time.Now(),
		stopSend: make(chan struct{}),
	}
	for range opts.Nodes {
		n.spans = append(n.spans, newSpanBatch(n.pods))
		n.exportQ = append(n.exportQ, make(chan ptrace.Traces, exportQueue))
	}
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
	for node := range opts.Nodes {
		export := opts.Export
		if opts.Exports != nil {
			export = opts.Exports[node]
		}
		n.sendWG.Add(1)
		go n.sendLoop(n.exportQ[node], export)
	}
	return n, nil
}

// NodeCount is the number of simulated nodes (Options.Nodes).
func (n *Node) NodeCount() int { return n.opts.Nodes }

// NodeName is the name of simulated node k (0-based): node-1, node-2, …
func NodeName(k int) string { return "node-" + strconv.Itoa(k+1) }

// NodeDir is the root of node k: Options.Dir with one node, else
// Options.Dir/node-<k+1>.
func (n *Node) NodeDir(k int) string {
	if n.opts.Nodes == 1 {
		return n.opts.Dir
	}
	return filepath.Join(n.opts.Dir, NodeName(k))
}

// NodePodsDir is the /var/log/pods-style directory of node k.
func (n *Node) NodePodsDir(k int) string { return filepath.Join(n.NodeDir(k), "pods") }

// PodsDir is the /var/log/pods-style directory of the first node (the only
// one unless Options.Nodes > 1).
func (n *Node) PodsDir() string { return n.NodePodsDir(0) }

// ManifestPath is a JSON description of the pods (with their nodes) and
// endpoints.
func (n *Node) ManifestPath() string { return filepath.Join(n.opts.Dir, "node.json") }

// Endpoints lists the metrics endpoints of every node.
func (n *Node) Endpoints() []Endpoint { return n.endpoints }

// NodeEndpoints lists the metrics endpoints of node k's pods: what its
// agent scrapes.
func (n *Node) NodeEndpoints(k int) []Endpoint {
	var out []Endpoint
	for _, e := range n.endpoints {
		if e.Node == NodeName(k) {
			out = append(out, e)
		}
	}
	return out
}

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
			path := filepath.Join(n.NodePodsDir(p.node), p.logDir(), c.name, "0.log")
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
	n.revision = make([]*revisionMetrics, len(n.pods))
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
				n.revision[i] = newRevisionMetrics()
				reg = n.revision[i].reg
			default:
				reg, openMetrics = n.app[i].reg, true
			}
			url, err := n.serve(c.metricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: openMetrics}))
			if err != nil {
				return err
			}
			n.endpoints = append(n.endpoints, Endpoint{
				Namespace: p.namespace, Pod: p.name, Container: c.name, Port: c.metricsPort, URL: url,
				Node: NodeName(p.node),
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
	Node        string            `json:"node"`
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
			Node:      NodeName(p.node),
			Namespace: p.namespace, Name: p.name, UID: p.uid(), Labels: p.labels, Annotations: p.annotations,
			LogDir: filepath.Join(n.NodePodsDir(p.node), p.logDir()),
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
	for node, batch := range n.spans {
		td, count := batch.take()
		if count == 0 || (n.opts.Export == nil && n.opts.Exports == nil) {
			continue
		}
		select {
		case n.exportQ[node] <- td:
		default:
			n.spansDropped.Add(int64(count))
		}
	}
	return nil
}

// sendLoop exports one node's span batches one at a time, so a slow agent
// holds up only its own node; on Close it delivers what is queued, then
// stops.
func (n *Node) sendLoop(q <-chan ptrace.Traces, export ExportFunc) {
	defer n.sendWG.Done()
	for {
		select {
		case td := <-q:
			n.export(export, td)
		case <-n.stopSend:
			for {
				select {
				case td := <-q:
					n.export(export, td)
				default:
					return
				}
			}
		}
	}
}

func (n *Node) export(export ExportFunc, td ptrace.Traces) {
	count := int64(td.SpanCount())
	if export == nil {
		n.spansDropped.Add(count)
		return
	}
	if err := export(context.Background(), td); err != nil {
		n.spansDropped.Add(count)
		n.lastExportErr.Store(err.Error())
		return
	}
	n.spansSent.Add(count)
}

// Drain delivers the spans queued for export and stops the senders; the
// metrics endpoints keep serving until Close, so that agents still running
// can scrape them until they stop. Call it once Run has returned. Safe to
// call twice.
func (n *Node) Drain() {
	n.drain.Do(func() {
		close(n.stopSend)
		n.sendWG.Wait()
	})
}

// Close stops the endpoints and the senders (after they delivered what was
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
	n.Drain()
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
