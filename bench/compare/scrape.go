package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// envoyPayload writes an Envoy /stats/prometheus-style text exposition of
// exactly n series for scrape number k: per upstream cluster request
// counters by response class, a membership gauge, and Istio request
// duration histograms (20 buckets, sum, count = 22 series each). Counters
// grow with k, so every scrape carries new values.
func envoyPayload(b *bytes.Buffer, n, k int) {
	b.Reset()
	const histSeries = 22
	hists := n / 4 / histSeries
	rest := n - hists*histSeries
	clusters := rest / 4 // 3 counters + 1 gauge per cluster
	extra := rest - clusters*4
	cluster := func(c int) string {
		return "outbound|9080|v" + strconv.Itoa(c%3) + "|svc-" + strconv.Itoa(c) + ".ns-" + strconv.Itoa(c%7) + ".svc.cluster.local"
	}
	b.WriteString("# TYPE envoy_cluster_upstream_rq_total counter\n")
	for c := range clusters {
		for j, class := range [...]string{"2xx", "4xx", "5xx"} {
			fmt.Fprintf(b, "envoy_cluster_upstream_rq_total{response_code_class=%q,cluster_name=%q} %d\n", class, cluster(c), (c%11+1)*(3-j)*(k+1))
		}
	}
	b.WriteString("# TYPE envoy_cluster_membership_healthy gauge\n")
	for c := range clusters + extra {
		fmt.Fprintf(b, "envoy_cluster_membership_healthy{cluster_name=%q} %d\n", cluster(c), (c+k)%5)
	}
	bounds := [...]string{"0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf"}
	b.WriteString("# TYPE istio_request_duration_milliseconds histogram\n")
	for i := range hists {
		lbls := fmt.Sprintf(`reporter="destination",source_workload="productpage-v%d",destination_workload="reviews-v%d",destination_service="reviews-%d.default.svc.cluster.local",response_code="%d",connection_security_policy="mutual_tls"`,
			i%4, i%3, i, 200+i%3*100)
		cum := 0
		for j, le := range bounds {
			if j%4 == 1 {
				cum += (i%5 + 1) * (k + 1)
			}
			fmt.Fprintf(b, "istio_request_duration_milliseconds_bucket{%s,le=%q} %d\n", lbls, le, cum)
		}
		fmt.Fprintf(b, "istio_request_duration_milliseconds_sum{%s} %d.5\n", lbls, cum*13)
		fmt.Fprintf(b, "istio_request_duration_milliseconds_count{%s} %d\n", lbls, cum)
	}
}

// target serves a generated payload and counts the scrapes it answered.
type target struct {
	Addr    string
	srv     *http.Server
	wg      sync.WaitGroup
	served  atomic.Int64
	mu      sync.Mutex
	first   chan struct{} // closed at the first request
	once    sync.Once
	payload func(b *bytes.Buffer, k int)
	times   []time.Time // arrival of each answered scrape, under mu
	// limit, when positive, is the number of scrapes answered with the
	// payload; later ones get 503, so that a side's sink can catch up with
	// a fixed count however late its sender batches.
	limit atomic.Int64
}

func startTarget(path string, payload func(b *bytes.Buffer, k int)) (*target, error) {
	addrs, err := freeAddrs(1)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addrs[0])
	if err != nil {
		return nil, err
	}
	t := &target{Addr: addrs[0], first: make(chan struct{}), payload: payload}
	mux := http.NewServeMux()
	var buf bytes.Buffer
	mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) {
		arrived := time.Now()
		t.once.Do(func() { close(t.first) })
		t.mu.Lock() // one scrape at a time: numbers are consecutive
		defer t.mu.Unlock()
		k := int(t.served.Load())
		if l := t.limit.Load(); l > 0 && int64(k) >= l {
			http.Error(w, "scrape limit of the benchmark reached", http.StatusServiceUnavailable)
			return
		}
		t.payload(&buf, k)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		if _, err := w.Write(buf.Bytes()); err == nil {
			t.times = append(t.times, arrived)
			t.served.Add(1)
		}
	})
	t.srv = &http.Server{Handler: mux}
	t.wg.Go(func() { _ = t.srv.Serve(l) })
	return t, nil
}

func (t *target) close() {
	_ = t.srv.Close()
	t.wg.Wait()
}

// servedAt returns the arrival time of the k-th answered scrape (1-based),
// if there was one.
func (t *target) servedAt(k int) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.times) < k {
		return time.Time{}, false
	}
	return t.times[k-1], true
}

// waitFirst waits for the first scrape.
func (t *target) waitFirst(ctx context.Context, c *child, timeout time.Duration) error {
	select {
	case <-t.first:
		return nil
	case <-c.done:
		return fmt.Errorf("%s exited before its first scrape (see %s)", c.name, c.logf.Name())
	case <-time.After(timeout):
		return fmt.Errorf("%s: no scrape within %s", c.name, timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Same exporter on both sides; the receivers differ.
const scrapeWeftReceiver = `  pod_scrape:
    scrape_configs:
      - job_name: envoy
        scrape_interval: {{interval}}
        scrape_timeout: {{timeout}}
        metrics_path: /stats/prometheus
        static_configs:
          - targets: [{{target}}]
`

const scrapePeerReceiver = `  prometheus:
    config:
      scrape_configs:
        - job_name: envoy
          scrape_interval: {{interval}}
          scrape_timeout: {{timeout}}
          metrics_path: /stats/prometheus
          static_configs:
            - targets: [{{target}}]
`

const scrapeConfig = `extensions:
  health_check:
    endpoint: {{health}}
{{ext}}receivers:
{{receiver}}processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 1024
    spike_limit_mib: 256
exporters:
{{exporter}}service:
  extensions: [{{extnames}}]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    metrics:
      receivers: [{{rname}}]
      processors: [memory_limiter]
      exporters: [{{ename}}]
`

const scrapeRWExporter = `  prometheus_remote_write:
    endpoint: {{sink}}
`

// scrapeRWWALExporter is the remote-write exporter with the write-ahead
// log of weft's shipped profile (cmd/weft/config/default.yaml): one
// request in flight, WAL truncated every 5 s.
const scrapeRWWALExporter = `  prometheus_remote_write:
    endpoint: {{sink}}
    max_batch_request_parallelism: 1
    wal:
      directory: {{wal}}
      truncate_frequency: 5s
`

const scrapeOTLPExporter = `  otlp_grpc:
    endpoint: {{sink}}
    compression: none
    tls:
      insecure: true
`

// runScrape: the side scrapes the payload every ScrapeInterval into the
// remote-write sink; the window runs from the first scrape until
// ScrapeCount scrapes were served and the sink holds every sample of each
// exactly once. No write-ahead log on either side.
func runScrape(ctx context.Context, h *harness, side string, s *sample) error {
	return scrapeRW(ctx, h, side, s, func(string) string { return scrapeRWExporter })
}

// runScrapeWAL is runScrape with a write-ahead log on both sides, as the
// shipped profile keeps one: the remote-write exporter's WAL (weft's
// profile and the peer's, same exporter and settings).
func runScrapeWAL(ctx context.Context, h *harness, side string, s *sample) error {
	if side == sideWeft && h.o.WeftNative {
		err := scrapeRWStart(ctx, h, side, s, h.startWeftNative)
		s.Detail = "native path (pod_scrape appendables → weft_remote_write); " + s.Detail
		return err
	}
	return scrapeRW(ctx, h, side, s, func(dir string) string { return replaceAll(scrapeRWWALExporter, "{{wal}}", dir) })
}

// runScrapeAgent: weft with its WAL against Prometheus 2.42 in agent mode
// (scrape → WAL → remote write, --enable-feature=agent), same target and
// sink. Prometheus agent has no mode without its WAL.
func runScrapeAgent(ctx context.Context, h *harness, side string, s *sample) error {
	if side == sideWeft {
		return runScrapeWAL(ctx, h, side, s)
	}
	return scrapeRWStart(ctx, h, side, s, h.startPromAgent)
}

func scrapeRW(ctx context.Context, h *harness, side string, s *sample, exporter func(walDir string) string) error {
	return scrapeRWStart(ctx, h, side, s, func(ctx context.Context, name, side, target, sink string, s *sample) (*child, *sampler, error) {
		wal := filepath.Join(h.o.WorkDir, name+"-wal")
		return h.startCollectorScrape(ctx, name, side, target, sink, exporter(wal), "prometheus_remote_write", s)
	})
}

// startScrape starts one side of a scrape workload scraping target and
// sending to sink, and returns once it is ready (the window starts).
type startScrape func(ctx context.Context, name, side, target, sink string, s *sample) (*child, *sampler, error)

func scrapeRWStart(ctx context.Context, h *harness, side string, s *sample, start startScrape) error {
	sink, err := startRWSink()
	if err != nil {
		return err
	}
	defer sink.close()
	return scrapeInto(ctx, h, side, s, start, sink.URL(),
		sink.samples.Load, func(n, scrapes int) (bool, string) {
			ok, detail := sink.check(n, scrapes)
			return ok, "sink: " + detail + fmt.Sprintf("; %d samples of up/scrape_*/target_info", sink.synth.Load())
		})
}

// runScrapeOTLP is runScrape with the cheap otlp_grpc exporter instead of
// remote write, so that the receivers weigh more in the figure. The sink
// counts samples as Prometheus would (a histogram point is its buckets,
// sum and count) and checks the total.
func runScrapeOTLP(ctx context.Context, h *harness, side string, s *sample) error {
	sink, err := startOTLPSink(1, 1)
	if err != nil {
		return err
	}
	defer sink.close()
	start := func(ctx context.Context, name, side, target, sink string, s *sample) (*child, *sampler, error) {
		return h.startCollectorScrape(ctx, name, side, target, sink, scrapeOTLPExporter, "otlp_grpc", s)
	}
	return scrapeInto(ctx, h, side, s, start, sink.GRPCAddr,
		sink.points.Load, func(n, scrapes int) (bool, string) {
			got := sink.points.Load()
			return got == int64(n*scrapes), fmt.Sprintf("sink: %d samples (want %d); %d samples of up/scrape_*; %d requests",
				got, n*scrapes, sink.synthPoints.Load(), sink.requests.Load())
		})
}

// scrapeTimeout is the scrape timeout of every side: the interval's 90 %,
// at most 10 s.
func (h *harness) scrapeTimeout() time.Duration { return min(10*time.Second, h.o.ScrapeInterval*9/10) }

// startCollectorScrape starts weft (pod_scrape) or the contrib peer
// (prometheus receiver) with the given exporter.
func (h *harness) startCollectorScrape(ctx context.Context, name, side, target, sink, exporter, ename string, s *sample) (*child, *sampler, error) {
	return h.startCollectorScrapeWith(ctx, name, side, target, sink, exporter, ename, weftExtra{}, s)
}

// weftExtra is what the weft side's configuration adds for the native
// path: keys under pod_scrape, an extension block and its ID.
type weftExtra struct{ receiver, ext, extName string }

// startWeftNative starts weft on the native path: pod_scrape appends
// straight into weft_remote_write (Prometheus agent's WAL and queue
// managers), no pdata; the pipeline's debug exporter receives nothing.
func (h *harness) startWeftNative(ctx context.Context, name, side, target, sink string, s *sample) (*child, *sampler, error) {
	x := weftExtra{
		receiver: "    appendables: [weft_remote_write]\n    pdata: false\n",
		ext: "  weft_remote_write:\n    wal:\n      directory: " + filepath.Join(h.o.WorkDir, name+"-wal") +
			"\n    endpoints:\n      - url: " + sink + "\n",
		extName: "weft_remote_write",
	}
	return h.startCollectorScrapeWith(ctx, name, side, target, sink, "  debug:\n    verbosity: basic\n", "debug", x, s)
}

func (h *harness) startCollectorScrapeWith(ctx context.Context, name, side, target, sink, exporter, ename string, x weftExtra, s *sample) (*child, *sampler, error) {
	recv, rname := scrapeWeftReceiver+x.receiver, "pod_scrape"
	if side == sidePeer {
		recv, rname = scrapePeerReceiver, "prometheus"
	}
	ext, extNames, pprofAddr := x.ext, "health_check", ""
	if x.extName != "" {
		extNames += ", " + x.extName
	}
	if side == sideWeft && h.o.ProfileDir != "" {
		addrs, err := freeAddrs(1)
		if err != nil {
			return nil, nil, err
		}
		pprofAddr = addrs[0]
		ext, extNames = ext+"  pprof:\n    endpoint: "+pprofAddr+"\n", extNames+", pprof"
	}
	c, smp, err := h.launch(ctx, name, side, false, func(health string) string {
		return replaceAll(scrapeConfig, "{{receiver}}", recv, "{{rname}}", rname, "{{health}}", health,
			"{{exporter}}", exporter, "{{ename}}", ename, "{{ext}}", ext, "{{extnames}}", extNames,
			"{{interval}}", promDuration(h.o.ScrapeInterval), "{{timeout}}", promDuration(h.scrapeTimeout()),
			"{{target}}", target, "{{sink}}", sink)
	}, s)
	if c != nil {
		c.pprof = pprofAddr
	}
	return c, smp, err
}

// profile fetches the child's CPU profile over d and then its heap
// profile into ProfileDir, named after the run; errors are logged, not
// fatal: profiles explain figures, they are not figures.
func (h *harness) profile(ctx context.Context, c *child, d time.Duration) func() {
	if c.pprof == "" || h.o.ProfileDir == "" {
		return func() {}
	}
	fetch := func(path, file string, timeout time.Duration) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.pprof+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintf(h.logw, "  profile %s: %v\n", file, err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(h.o.ProfileDir, file))
		if err == nil {
			_, err = io.Copy(f, resp.Body)
			err = errors.Join(err, f.Close())
		}
		if err != nil {
			fmt.Fprintf(h.logw, "  profile %s: %v\n", file, err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fetch("/debug/pprof/profile?seconds="+strconv.Itoa(max(1, int(d.Seconds()))), c.name+".cpu.pprof", d+30*time.Second)
	}()
	return func() {
		<-done
		// gc=1: a heap profile otherwise shows the last completed GC, which
		// at 100k series can be the first scrape's (43 MB short of the
		// live heap a GC marks later, 2026-12-04).
		fetch("/debug/pprof/heap?gc=1", c.name+".heap.pprof", 30*time.Second)
	}
}

// startPromAgent starts Prometheus 2.42 in agent mode scraping target and
// remote-writing to sink.
func (h *harness) startPromAgent(ctx context.Context, name, _, target, sink string, s *sample) (*child, *sampler, error) {
	addrs, err := freeAddrs(1)
	if err != nil {
		return nil, nil, err
	}
	cfgPath := filepath.Join(h.o.WorkDir, name+".yaml")
	cfg := replaceAll(scrapeAgentConfig, "{{interval}}", promDuration(h.o.ScrapeInterval),
		"{{timeout}}", promDuration(h.scrapeTimeout()), "{{target}}", target, "{{sink}}", sink)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, nil, err
	}
	c, err := startChild(h, name, h.o.PrometheusBin, "--enable-feature=agent", "--config.file="+cfgPath,
		"--storage.agent.path="+filepath.Join(h.o.WorkDir, name+"-agent"), "--web.listen-address="+addrs[0], "--log.level=warn")
	if err != nil {
		return nil, nil, err
	}
	smp, err := h.ready(ctx, c, "http://"+addrs[0]+"/-/ready", s)
	if err != nil {
		c.stop()
		return nil, nil, err
	}
	return c, smp, nil
}

// scrapeAgentConfig is Prometheus agent mode's configuration: the same
// job as the collectors' (interval, timeout, path, target) and one
// remote_write with its defaults.
const scrapeAgentConfig = `global:
  scrape_interval: {{interval}}
  scrape_timeout: {{timeout}}
scrape_configs:
  - job_name: envoy
    metrics_path: /stats/prometheus
    static_configs:
      - targets: [{{target}}]
remote_write:
  - url: {{sink}}
`

func scrapeInto(ctx context.Context, h *harness, side string, s *sample, start startScrape, sinkAddr string,
	received func() int64, check func(n, scrapes int) (bool, string)) error {
	name := fmt.Sprintf("%s-%02d-%s", s.Workload, s.Order, side)
	n := h.o.ScrapeSeries
	tgt, err := startTarget("/stats/prometheus", func(b *bytes.Buffer, k int) { envoyPayload(b, n, k) })
	if err != nil {
		return err
	}
	defer tgt.close()
	tgt.limit.Store(int64(h.o.ScrapeCount))
	defer os.RemoveAll(filepath.Join(h.o.WorkDir, name+"-wal"))
	defer os.RemoveAll(filepath.Join(h.o.WorkDir, name+"-agent"))
	c, smp, err := start(ctx, name, side, tgt.Addr, sinkAddr, s)
	if err != nil {
		return err
	}
	defer c.stop()
	// The window starts at the first scrape (the first one comes at a
	// random offset within the interval on both sides).
	if err := tgt.waitFirst(ctx, c, 2*h.o.ScrapeInterval+30*time.Second); err != nil {
		return err
	}
	smp.restart()
	k := int64(h.o.ScrapeCount)
	endProfile := h.profile(ctx, c, time.Duration(k)*h.o.ScrapeInterval)
	err = c.waitFor(ctx, time.Duration(k+1)*h.o.ScrapeInterval+h.o.DrainTimeout, func() bool {
		served := tgt.served.Load()
		return served >= k && received() >= served*int64(n)
	}, func() string {
		return fmt.Sprintf("%d scrapes served, %d samples received (want %d per scrape)", tgt.served.Load(), received(), n)
	})
	h.finish(c, smp, s)
	endProfile()
	served := tgt.served.Load()
	ok, detail := check(n, int(served))
	s.Sent, s.Received = served*int64(n), received()
	s.Verified = err == nil && ok && s.Sent == s.Received
	s.Items = float64(s.Received)
	s.Detail = fmt.Sprintf("%d scrapes of %d series; %s", served, n, detail)
	if err != nil {
		s.Detail += "; " + err.Error()
	}
	return nil
}
