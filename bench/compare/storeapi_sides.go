package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// storeWeftConfig is one agent: the scrape workload's pod_scrape of one
// static target into weft_store (with a WAL, external label node),
// weft_query's HTTP API and StoreAPI; the pipeline is the rules workload's.
const storeWeftConfig = `extensions:
  health_check:
    endpoint: {{health}}
  weft_store:
    directory: {{data}}
    external_labels:
      node: {{node}}
  weft_query:
    http:
      endpoint: {{http}}
    store: weft_store
    store_api:
      endpoint: {{grpc}}
receivers:
` + scrapeWeftReceiver + weftStorePipeline

// storePromConfig is the same scrape for Prometheus 2.42, with the external
// label the sidecar requires.
const storePromConfig = `global:
  scrape_interval: {{interval}}
  scrape_timeout: {{timeout}}
  external_labels:
    node: {{node}}
scrape_configs:
  - job_name: envoy
    metrics_path: /stats/prometheus
    static_configs:
      - targets: [{{target}}]
`

// agent is a running weft process.
type agent struct {
	c    *child
	GRPC string // StoreAPI
	HTTP string // weft_query
}

func (a *agent) stop() {
	if a != nil {
		a.c.stop()
	}
}

func scrapeTimeout(interval time.Duration) time.Duration {
	return min(10*time.Second, interval*9/10)
}

// startAgent starts weft scraping tgt, with external label node, and waits
// for health_check.
func startAgent(ctx context.Context, o *storeOptions, name, node string, tgt *target) (*agent, error) {
	addrs, err := freeAddrs(3)
	if err != nil {
		return nil, err
	}
	a := &agent{HTTP: addrs[0], GRPC: addrs[1]}
	health := addrs[2]
	data := filepath.Join(o.WorkDir, name+"-data")
	cfg := replaceAll(storeWeftConfig, "{{health}}", health, "{{data}}", data, "{{node}}", node, "{{http}}", a.HTTP,
		"{{grpc}}", a.GRPC, "{{interval}}", promDuration(o.Interval), "{{timeout}}", promDuration(scrapeTimeout(o.Interval)),
		"{{target}}", tgt.Addr, "{{extensions}}", "health_check, weft_store, weft_query")
	path := filepath.Join(o.WorkDir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	a.c, err = startChild(o.harness(), name, o.WeftBin, "--config", "file:"+path)
	if err != nil {
		return nil, err
	}
	if err := a.c.waitHTTP(ctx, "http://"+health+"/", 90*time.Second); err != nil {
		a.c.stop()
		return nil, err
	}
	return a, nil
}

// sidecarSide is Prometheus 2.42 and a Thanos sidecar in front of it.
type sidecarSide struct {
	prom, sidecar *child
	GRPC          string // the sidecar's StoreAPI
	PromHTTP      string
}

func (s *sidecarSide) stop() {
	if s == nil {
		return
	}
	s.sidecar.stop()
	s.prom.stop()
}

// startSidecar starts Prometheus scraping tgt (blocks of 2h exactly, as
// the sidecar requires: no local compaction), then `thanos sidecar` over
// its data directory without object storage (nothing is uploaded), and
// waits until both are ready.
func startSidecar(ctx context.Context, o *storeOptions, name, node string, tgt *target) (*sidecarSide, error) {
	addrs, err := freeAddrs(3)
	if err != nil {
		return nil, err
	}
	s := &sidecarSide{PromHTTP: addrs[0], GRPC: addrs[1]}
	sidecarHTTP := addrs[2]
	data := filepath.Join(o.WorkDir, name+"-prom-data")
	cfg := replaceAll(storePromConfig, "{{node}}", node, "{{interval}}", promDuration(o.Interval),
		"{{timeout}}", promDuration(scrapeTimeout(o.Interval)), "{{target}}", tgt.Addr)
	path := filepath.Join(o.WorkDir, name+"-prometheus.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	s.prom, err = startChild(o.harness(), name+"-prometheus", o.PromBin, "--config.file="+path, "--storage.tsdb.path="+data,
		"--web.listen-address="+s.PromHTTP, "--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h",
		"--log.level=warn")
	if err != nil {
		return nil, err
	}
	if err := s.prom.waitHTTP(ctx, "http://"+s.PromHTTP+"/-/ready", 90*time.Second); err != nil {
		s.prom.stop()
		return nil, err
	}
	s.sidecar, err = startChild(o.harness(), name+"-sidecar", o.ThanosBin, "sidecar",
		"--prometheus.url=http://"+s.PromHTTP, "--tsdb.path="+data,
		"--grpc-address="+s.GRPC, "--http-address="+sidecarHTTP, "--log.level=warn")
	if err != nil {
		s.prom.stop()
		return nil, err
	}
	if err := s.sidecar.waitHTTP(ctx, "http://"+sidecarHTTP+"/-/ready", 90*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// querier is a running `thanos query`.
type querier struct {
	c    *child
	HTTP string
}

// startQuery starts stock Thanos Query over the StoreAPI endpoints (static
// endpoint discovery; --endpoint is deprecated in v0.42) and waits until
// /api/v1/stores lists every endpoint without error.
func startQuery(ctx context.Context, o *storeOptions, name string, endpoints []string) (*querier, error) {
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	var sd strings.Builder
	sd.WriteString("endpoints:\n")
	for _, ep := range endpoints {
		fmt.Fprintf(&sd, "  - address: %q\n", ep)
	}
	q := &querier{HTTP: addrs[0]}
	q.c, err = startChild(o.harness(), name, o.ThanosBin, "query", "--http-address="+q.HTTP, "--grpc-address="+addrs[1],
		"--endpoint.sd-config="+sd.String(), "--log.level=warn")
	if err != nil {
		return nil, err
	}
	if err := q.c.waitHTTP(ctx, "http://"+q.HTTP+"/-/ready", 60*time.Second); err != nil {
		q.c.stop()
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		up, detail, err := q.storesUp(ctx)
		if err == nil && up == len(endpoints) {
			return q, nil
		}
		if time.Now().After(deadline) || q.c.exited() {
			q.c.stop()
			return nil, fmt.Errorf("thanos query sees %d of %d endpoints healthy (%s; %v; see %s)", up, len(endpoints), detail, err, q.c.logf.Name())
		}
		select {
		case <-ctx.Done():
			q.c.stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// storesUp counts the endpoints /api/v1/stores lists without a last error.
func (q *querier) storesUp(ctx context.Context) (int, string, error) {
	var body struct {
		Data map[string][]struct {
			Name      string  `json:"name"`
			LastError *string `json:"lastError"`
		} `json:"data"`
	}
	if err := getJSON(ctx, "http://"+q.HTTP+"/api/v1/stores", &body); err != nil {
		return 0, "", err
	}
	up := 0
	var detail []string
	for typ, eps := range body.Data {
		for _, e := range eps {
			if e.LastError == nil || *e.LastError == "" {
				up++
				continue
			}
			detail = append(detail, typ+" "+e.Name+": "+*e.LastError)
		}
	}
	return up, strings.Join(detail, "; "), nil
}

// harness is what startChild needs of the storeapi mode: its work
// directory, GOMAXPROCS and GOMEMLIMIT.
func (o *storeOptions) harness() *harness {
	return &harness{o: options{WorkDir: o.WorkDir, GoMaxProcs: o.GoMaxProcs, GoMemLimit: o.GoMemLimit}, clkTck: o.clkTck}
}

// startEnvoyTarget serves envoyPayload(n, k) on /stats/prometheus, k
// counting the scrapes it answered (the scrape workload's target).
func startEnvoyTarget(n int) (*target, error) {
	return startTarget("/stats/prometheus", func(b *bytes.Buffer, k int) { envoyPayload(b, n, k) })
}

// upstreamCounters is the number of envoy_cluster_upstream_rq_total series
// in envoyPayload(n): what count by (node) must answer per agent.
func upstreamCounters(n int) int {
	hists := n / 4 / 22
	return (n - hists*22) / 4 * 3
}

// waitScrapes waits until every target answered k scrapes; cs lists the
// scrapers, whose exit ends the wait.
func waitScrapes(ctx context.Context, timeout time.Duration, k int, ts []*target, cs ...*child) error {
	deadline := time.Now().Add(timeout)
	for {
		done := true
		for _, t := range ts {
			if t.served.Load() < int64(k) {
				done = false
			}
		}
		if done {
			return nil
		}
		for _, c := range cs {
			if c.exited() {
				return fmt.Errorf("%s exited while waiting for %d scrapes (see %s)", c.name, k, c.logf.Name())
			}
		}
		if time.Now().After(deadline) {
			var got []int64
			for _, t := range ts {
				got = append(got, t.served.Load())
			}
			return fmt.Errorf("timed out after %s waiting for %d scrapes of every target; scrapes answered: %v", timeout, k, got)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// rssSampler reads the group's summed VmRSS at a fixed interval and keeps
// the largest reading.
type rssSampler struct {
	g    group
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak float64
	n    int
	once sync.Once
}

func startRSSSampler(g group, every time.Duration) *rssSampler {
	s := &rssSampler{g: g, stop: make(chan struct{}), done: make(chan struct{})}
	s.read()
	go poll(every, s.stop, s.done, s.read)
	return s
}

func (s *rssSampler) read() {
	m, err := s.g.rssMiB()
	if err != nil {
		return
	}
	s.mu.Lock()
	s.peak = max(s.peak, m)
	s.n++
	s.mu.Unlock()
}

// finish takes a last reading and returns the peak and the readings taken.
func (s *rssSampler) finish() (peak float64, readings int) {
	s.once.Do(func() { close(s.stop); <-s.done; s.read() })
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.n
}
