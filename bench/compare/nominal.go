package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The nominal load of issue #21, all at once: CRI log lines at LogRate
// over LogFiles files, OTLP spans at TraceRate, one target of ScrapeSeries
// series scraped every ScrapeInterval, and RuleCount alerting rules over
// part of those series evaluated at the same interval. The freshness and
// nominal workloads run it for ScrapeCount intervals from the first scrape.

// markerMetric is the gauge whose value is the scrape's number (1-based):
// the freshness workload's sample marker.
const markerMetric = "bench_freshness_marker"

// nominalRuleSeries is how many of the nominal payload's series the rules
// read: a fifth (10k of 50k, 50 pods per rule at 200 rules), the rest is
// the Envoy payload of the scrape workloads.
func nominalRuleSeries(series, rules int) int { return max(rules, series/5) }

// nominalPayload writes scrape k (0-based) of the nominal target: the
// Envoy payload, the rules' counters, then the marker gauge, exactly
// series series in all. scratch is the caller's buffer for the rules part.
func nominalPayload(b, scratch *bytes.Buffer, series, rules, k int) {
	nr := nominalRuleSeries(series, rules)
	envoyPayload(b, series-nr-1, k)
	rulePayload(scratch, nr, rules, k)
	b.Write(scratch.Bytes())
	b.WriteString("# TYPE " + markerMetric + " gauge\n" + markerMetric + " ")
	b.WriteString(strconv.Itoa(k + 1))
	b.WriteByte('\n')
}

func startNominalTarget(series, rules int) (*target, error) {
	var scratch bytes.Buffer
	return startTarget("/metrics", func(b *bytes.Buffer, k int) { nominalPayload(b, &scratch, series, rules, k) })
}

// nominalSizes is how much of each load one window of a workload carries:
// its scrapes (FreshScrapes for freshness, else ScrapeCount), lines and
// spans (a multiple of traceBatch) for window = scrapes intervals.
func (o options) nominalSizes(workload string) (scrapes, lines, spans int, window time.Duration) {
	scrapes = o.ScrapeCount
	if workload == "freshness" {
		scrapes = o.FreshScrapes
	}
	window = time.Duration(scrapes) * o.ScrapeInterval
	lines = max(1, int(window.Seconds()*float64(o.LogRate)))
	spans = max(traceBatch, int(window.Seconds()*float64(o.TraceRate))/traceBatch*traceBatch)
	return scrapes, lines, spans, window
}

// nominalWeftConfig is weft as the shipped profile runs these loads
// (cmd/weft/config/default.yaml): container_logs → trace_context →
// weft_store, otlp → weft_store, pod_scrape → weft_store, weft_rules and
// weft_query over the store. {{export}} adds the profile's export side:
// the forward connector into export pipelines for logs and spans (the
// store then the pipeline's last processor, weft_store, as in the
// profile), the remote-write exporter (with its WAL) beside weft_store
// for samples.
const nominalWeftConfig = `extensions:
  health_check:
    endpoint: {{health}}
  weft_store:
    directory: {{data}}
  weft_rules:
    store: weft_store
    rule_files: [{{rules}}]
    evaluation_interval: {{interval}}
    reload_interval: 0s
  weft_query:
    http:
      endpoint: {{query}}
    store: weft_store
{{rwext}}receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{otlp}}
  container_logs:
    include: [{{dir}}/*/*/*.log]
    start_at: beginning
  pod_scrape:
{{native}}    scrape_configs:
      - job_name: nominal
        scrape_interval: {{interval}}
        scrape_timeout: {{timeout}}
        static_configs:
          - targets: [{{target}}]
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 1024
    spike_limit_mib: 256
  trace_context: {}
{{storeprocs}}{{connectors}}exporters:
  weft_store: {}
{{exporters}}service:
  extensions: [health_check, weft_store{{rwextname}}, weft_rules, weft_query]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter{{storeproc}}]
      exporters: [{{fwd}}]
    metrics/scraped:
      receivers: [pod_scrape]
      processors: [memory_limiter]
      exporters: [weft_store{{rw}}]
    logs:
      receivers: [container_logs]
      processors: [memory_limiter, trace_context{{storeproc}}]
      exporters: [{{fwd}}]
{{exportPipelines}}`

// nominalExporters are the export side of both nominal configs: logs by
// OTLP/HTTP, spans by OTLP/gRPC, samples by remote write with the WAL of
// weft's shipped profile (the same exporter settings on both sides).
const nominalExporters = nominalOTLPExporters + scrapeRWWALExporter

// nominalOTLPExporters send the logs and spans, batching in their
// sending queues as the shipped profile's exporters do (in memory here):
// without it every read of a log file became a request, and the exporter,
// with more requests in flight than idle connections it keeps, opened a
// new connection for many of them.
const nominalOTLPExporters = `  otlp_http:
    endpoint: http://{{sinkHTTP}}
    compression: none
` + nominalQueue + `  otlp_grpc:
    endpoint: {{sinkGRPC}}
    compression: none
    tls:
      insecure: true
` + nominalQueue

const nominalQueue = `    sending_queue:
      batch:
        flush_timeout: 200ms
        min_size: 2000
        max_size: 10000
`

const nominalExportPipelines = `    traces/export:
      receivers: [forward]
      exporters: [otlp_grpc]
    logs/export:
      receivers: [forward]
      exporters: [otlp_http]
`

// nominalPeerConfig is the otelcol contrib half of nominal's peer: the
// same three loads forwarded to the same sinks with the same exporters.
const nominalPeerConfig = `extensions:
  health_check:
    endpoint: {{health}}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{otlp}}
` + logsPeerReceiver + `  prometheus:
    config:
      scrape_configs:
        - job_name: nominal
          scrape_interval: {{interval}}
          scrape_timeout: {{timeout}}
          static_configs:
            - targets: [{{target}}]
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 1024
    spike_limit_mib: 256
exporters:
` + nominalExporters + `service:
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
    metrics:
      receivers: [prometheus]
      processors: [memory_limiter]
      exporters: [prometheus_remote_write]
    logs:
      receivers: [file_log]
      processors: [memory_limiter]
      exporters: [otlp_http]
`

// nominalPromConfig is the Prometheus half of nominal's peer: its own
// scrape of the payload (a second target serving the same), its TSDB and
// the same rules at the same interval.
const nominalPromConfig = `global:
  scrape_interval: {{interval}}
  scrape_timeout: {{timeout}}
  evaluation_interval: {{interval}}
rule_files: [{{rules}}]
scrape_configs:
  - job_name: nominal
    static_configs:
      - targets: [{{target}}]
`

// renderNominalWeft is weft's configuration; export adds the forwarding
// of the shipped profile (nominal) to it, without it everything stays in
// the store (freshness). native puts the scraped samples on the shipped
// profile's path: pod_scrape appends to weft_store (and, with export, to
// weft_remote_write), no pdata; without it they go through the pipeline
// (pdata) to weft_store and the remote-write exporter with its WAL.
func renderNominalWeft(export, native bool, vars ...string) string {
	conn, exp, fwd, rw, pipes := "", "", "weft_store", "", ""
	storeproc, storeprocs := "", ""
	if export {
		conn, exp, fwd, rw, pipes = "connectors:\n  forward: {}\n", nominalExporters, "forward", ", prometheus_remote_write", nominalExportPipelines
		// The shipped profile stores spans and logs in the pipeline's last
		// processor, so that the batching exporters get each batch itself
		// rather than a copy (processors/weftstoreprocessor).
		storeproc, storeprocs = ", weft_store", "  weft_store: {}\n"
	}
	nat, rwext, rwextname := "", "", ""
	if native {
		apps := "weft_store"
		if export {
			apps += ", weft_remote_write"
			rwext = nominalRWExtension
			rwextname = ", weft_remote_write"
		}
		nat = "    appendables: [" + apps + "]\n    pdata: false\n"
		rw = "" // the pipeline carries no scraped samples
		if export {
			exp = nominalOTLPExporters
		}
	}
	return replaceAll(nominalWeftConfig, append([]string{"{{connectors}}", conn, "{{exporters}}", exp, "{{fwd}}", fwd,
		"{{rw}}", rw, "{{exportPipelines}}", pipes, "{{storeproc}}", storeproc, "{{storeprocs}}", storeprocs, "{{native}}", nat, "{{rwext}}", rwext, "{{rwextname}}", rwextname}, vars...)...)
}

// withIndexBytes sets weft_store's span and log budgets in a rendered
// nominal config to n bytes each, if n > 0.
func withIndexBytes(cfg string, n int64) string {
	if n <= 0 {
		return cfg
	}
	b := strconv.FormatInt(n, 10)
	return strings.Replace(cfg, "  weft_store:\n", "  weft_store:\n    traces_max_bytes: "+b+"\n    logs_max_bytes: "+b+"\n", 1)
}

// nominalRWExtension is weft_remote_write as the shipped profile
// configures it, sending to the nominal remote-write sink.
const nominalRWExtension = `  weft_remote_write:
    wal:
      directory: {{wal}}
    endpoints:
      - url: {{sink}}
`

// nominalRun is one side of a nominal-load run: its files, addresses,
// children and load generators.
type nominalRun struct {
	h            *harness
	name         string
	dir, data    string
	rulesPath    string
	otlp, query  string
	tree         *logTree
	tgt          *target // scraped by weft, or by the peer's collector
	promTgt      *target // scraped by the peer's Prometheus
	children     []*child
	scrapes      int // in the window
	lines, spans int
	window       time.Duration
}

// startNominal writes the rule file and the log tree, starts the target(s)
// and the side's processes and waits until they are ready; the sampler
// then runs over all of them. With sinks (nominal) the side forwards to
// them and each target answers the window's scrapes only (an exact count
// at the remote-write sink); without (freshness: sink and rw nil) weft
// keeps everything in its store and the target answers every scrape.
func (h *harness) startNominal(ctx context.Context, side string, s *sample, sink *otlpSink, rw *rwSink) (*nominalRun, *sampler, error) {
	r := &nominalRun{h: h, name: fmt.Sprintf("%s-%02d-%s", s.Workload, s.Order, side)}
	r.scrapes, r.lines, r.spans, r.window = h.o.nominalSizes(s.Workload)
	r.dir = filepath.Join(h.o.WorkDir, r.name+"-pods")
	r.data = filepath.Join(h.o.WorkDir, r.name+"-data")
	r.rulesPath = filepath.Join(h.o.WorkDir, r.name+"-rules.yaml")
	ok := false
	defer func() {
		if !ok {
			r.close()
		}
	}()
	if err := os.WriteFile(r.rulesPath, []byte(ruleFile(h.o.RuleCount)), 0o644); err != nil {
		return nil, nil, err
	}
	var err error
	if r.tree, err = newLogTree(r.dir, h.o.LogFiles, h.o.LogLineBytes, h.o.RotateBytes, h.o.RotateKeep); err != nil {
		return nil, nil, err
	}
	if r.tgt, err = startNominalTarget(h.o.ScrapeSeries, h.o.RuleCount); err != nil {
		return nil, nil, err
	}
	if sink != nil {
		r.tgt.limit.Store(int64(r.scrapes)) // an exact count at the remote-write sink
	}
	addrs, err := freeAddrs(3)
	if err != nil {
		return nil, nil, err
	}
	// The query address is weft_query's, or the peer's Prometheus API.
	health, promAPI := addrs[0], addrs[2]
	r.otlp, r.query = addrs[1], addrs[2]
	timeout := min(10*time.Second, h.o.ScrapeInterval*9/10)
	vars := []string{"{{health}}", health, "{{data}}", r.data, "{{rules}}", r.rulesPath,
		"{{interval}}", promDuration(h.o.ScrapeInterval), "{{timeout}}", promDuration(timeout),
		"{{query}}", r.query, "{{otlp}}", r.otlp, "{{dir}}", r.dir, "{{target}}", r.tgt.Addr,
		"{{wal}}", filepath.Join(h.o.WorkDir, r.name+"-wal")}
	if sink != nil {
		vars = append(vars, "{{sinkHTTP}}", sink.HTTPAddr, "{{sinkGRPC}}", sink.GRPCAddr, "{{sink}}", rw.URL())
	}
	cfgPath := filepath.Join(h.o.WorkDir, r.name+".yaml")
	if side == sideWeft {
		cfg := withIndexBytes(renderNominalWeft(sink != nil, h.o.WeftNative, vars...), h.o.WeftIndexBytes)
		pprofAddr := ""
		if h.o.ProfileDir != "" {
			a, err := freeAddrs(1)
			if err != nil {
				return nil, nil, err
			}
			pprofAddr = a[0]
			cfg = strings.Replace(cfg, "extensions:\n", "extensions:\n  pprof:\n    endpoint: "+pprofAddr+"\n", 1)
			cfg = strings.Replace(cfg, "extensions: [health_check", "extensions: [health_check, pprof", 1)
		}
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return nil, nil, err
		}
		c, err := startChild(h, r.name, h.o.WeftBin, "--config", "file:"+cfgPath)
		if err != nil {
			return nil, nil, err
		}
		c.pprof = pprofAddr
		r.children = append(r.children, c)
		if err := c.waitHTTP(ctx, "http://"+health+"/", 90*time.Second); err != nil {
			return nil, nil, err
		}
	} else {
		if err := os.WriteFile(cfgPath, []byte(replaceAll(nominalPeerConfig, vars...)), 0o600); err != nil {
			return nil, nil, err
		}
		c, err := startChild(h, r.name+"-otelcol", h.o.PeerContribBin, "--config", "file:"+cfgPath)
		if err != nil {
			return nil, nil, err
		}
		r.children = append(r.children, c)
		if r.promTgt, err = startNominalTarget(h.o.ScrapeSeries, h.o.RuleCount); err != nil {
			return nil, nil, err
		}
		r.promTgt.limit.Store(int64(r.scrapes)) // the same scrapes stored as weft's
		// The first pair wins: Prometheus scrapes its own target.
		promPath := filepath.Join(h.o.WorkDir, r.name+"-prometheus.yaml")
		promCfg := replaceAll(nominalPromConfig, append([]string{"{{target}}", r.promTgt.Addr}, vars...)...)
		if err := os.WriteFile(promPath, []byte(promCfg), 0o600); err != nil {
			return nil, nil, err
		}
		p, err := startChild(h, r.name+"-prometheus", h.o.PrometheusBin, "--config.file="+promPath,
			"--storage.tsdb.path="+r.data, "--web.listen-address="+promAPI, "--log.level=warn")
		if err != nil {
			return nil, nil, err
		}
		r.children = append(r.children, p)
		if err := c.waitHTTP(ctx, "http://"+health+"/", 90*time.Second); err != nil {
			return nil, nil, err
		}
		if err := p.waitHTTP(ctx, "http://"+promAPI+"/-/ready", 90*time.Second); err != nil {
			return nil, nil, err
		}
	}
	g := make(group, 0, len(r.children))
	for _, c := range r.children {
		g = append(g, c.proc)
	}
	m, err := g.status("VmRSS")
	if err != nil {
		return nil, nil, err
	}
	s.ReadyRSSMiB = m[0]
	smp, err := startSampler(g, h.o.Sample)
	if err != nil {
		return nil, nil, err
	}
	ok = true
	return r, smp, nil
}

// exited returns an error when one of the side's processes has ended.
func (r *nominalRun) exited() error {
	for _, c := range r.children {
		if c.exited() {
			return fmt.Errorf("%s exited (see %s)", c.name, c.logf.Name())
		}
	}
	return nil
}

// waitFirstScrape waits until every target of the side was scraped once.
func (r *nominalRun) waitFirstScrape(ctx context.Context) error {
	timeout := 2*r.h.o.ScrapeInterval + 30*time.Second
	if err := r.tgt.waitFirst(ctx, r.children[0], timeout); err != nil {
		return err
	}
	if r.promTgt != nil {
		return r.promTgt.waitFirst(ctx, r.children[1], timeout)
	}
	return nil
}

// load writes the log lines and sends the spans of one window, paced, at
// the same time; it returns when both are done.
func (r *nominalRun) load(ctx context.Context) error {
	var wg sync.WaitGroup
	var logErr, spanErr error
	wg.Go(func() { logErr = r.writeLogs(ctx) })
	wg.Go(func() { spanErr = sendTraces(ctx, r.otlp, r.spans, r.h.o.TraceRate) })
	wg.Wait()
	return errors.Join(logErr, spanErr)
}

// writeLogs writes r.lines lines at LogRate lines/s, every 10 ms what is due.
func (r *nominalRun) writeLogs(ctx context.Context) error {
	start := time.Now()
	written := 0
	for written < r.lines {
		if err := r.exited(); err != nil {
			return err
		}
		due := min(int(time.Since(start).Seconds()*float64(r.h.o.LogRate)), r.lines)
		if due <= written {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond): // pacing the writer
			}
			continue
		}
		if err := r.tree.write(due - written); err != nil {
			return err
		}
		written = due
	}
	return nil
}

// seriesAtLastScrape is count(http_requests_total) through the side's
// query API at the moment the last answered scrape arrived plus half an
// interval: before the next (refused) scrape made the series stale.
func (r *nominalRun) seriesAtLastScrape(ctx context.Context) (int, error) {
	tgt := r.tgt
	if r.promTgt != nil {
		tgt = r.promTgt
	}
	at, ok := tgt.servedAt(int(tgt.served.Load()))
	if !ok {
		return 0, errors.New("no scrape served")
	}
	at = at.Add(r.h.o.ScrapeInterval / 2)
	if d := time.Until(at); d > 0 {
		time.Sleep(d) // the evaluation time must have passed
	}
	return queryScalarAt(ctx, "http://"+r.query, "count(http_requests_total)", at)
}

func (r *nominalRun) close() {
	for i := len(r.children) - 1; i >= 0; i-- {
		r.children[i].stop()
	}
	if r.tgt != nil {
		r.tgt.close()
	}
	if r.promTgt != nil {
		r.promTgt.close()
	}
	if r.tree != nil {
		r.tree.close()
	}
	for _, p := range []string{r.dir, r.data, filepath.Join(r.h.o.WorkDir, r.name+"-wal")} {
		_ = os.RemoveAll(p)
	}
}

// queryScalarAt is queryScalar evaluated at time at.
func queryScalarAt(ctx context.Context, base, q string, at time.Time) (int, error) {
	ts := strconv.FormatFloat(float64(at.UnixMilli())/1e3, 'f', 3, 64)
	return queryScalarURL(ctx, base+"/api/v1/query?query="+url.QueryEscape(q)+"&time="+ts, q)
}

// runNominal: the four loads at once into one weft process (stored,
// evaluated and forwarded, as the shipped profile does) against the two
// programs a user would otherwise run: otelcol contrib forwarding logs,
// spans and samples to the same sinks, and Prometheus 2.42 scraping the
// same payload, storing it and evaluating the same rules. The peer's CPU
// is the sum of both processes', its peak RSS the sum of their peaks.
// Window: from the first scrape until the loads of ScrapeCount intervals
// were sent and every item arrived at the sinks. Verified: every line and
// span once, every series once per scrape, the stored series counted
// through the query API, and every rule evaluated with health ok.
func runNominal(ctx context.Context, h *harness, side string, s *sample) error {
	_, lines, spans, _ := h.o.nominalSizes(s.Workload)
	sink, err := startOTLPSink(int64(lines), int64(spans))
	if err != nil {
		return err
	}
	defer sink.close()
	rw, err := startRWSink()
	if err != nil {
		return err
	}
	defer rw.close()
	r, smp, err := h.startNominal(ctx, side, s, sink, rw)
	if err != nil {
		return err
	}
	defer r.close()
	if err := r.waitFirstScrape(ctx); err != nil {
		return err
	}
	smp.restart()
	start := time.Now()
	c := r.children[0]
	_, _, _, window := h.o.nominalSizes(s.Workload)
	endProfile := h.profile(ctx, c, window)
	if err := r.load(ctx); err != nil {
		return err
	}
	sendSec := time.Since(start).Seconds()
	n, k := int64(h.o.ScrapeSeries), int64(r.scrapes)
	err = c.waitFor(ctx, h.o.ScrapeInterval+h.o.DrainTimeout, func() bool {
		return r.tgt.served.Load() >= k && rw.samples.Load() >= k*n &&
			sink.logs.received.Load() >= int64(lines) && sink.spans.received.Load() >= int64(spans)
	}, func() string {
		return fmt.Sprintf("%d of %d lines, %d of %d spans, %d of %d samples received", sink.logs.received.Load(), lines,
			sink.spans.received.Load(), spans, rw.samples.Load(), k*n)
	})
	if err == nil {
		err = r.exited()
	}
	h.finish(c, smp, s, r.children[1:]...)
	endProfile()
	count, cerr := r.seriesAtLastScrape(ctx)
	evaluated, rerr := rulesEvaluatedOK(ctx, "http://"+r.query)
	rwOK, rwDetail := rw.check(int(n), int(k))
	nr := nominalRuleSeries(h.o.ScrapeSeries, h.o.RuleCount)
	s.Sent = int64(lines) + int64(spans) + r.tgt.served.Load()*n
	s.Received = sink.logs.received.Load() + sink.spans.received.Load() + rw.samples.Load()
	s.Duplicates = sink.logs.dups.Load() + sink.spans.dups.Load()
	s.Invalid = sink.logs.bad.Load() + sink.spans.bad.Load()
	s.Verified = err == nil && cerr == nil && rerr == nil && sink.logs.complete(int64(lines)) &&
		sink.spans.complete(int64(spans)) && rwOK && count == nr && evaluated == h.o.RuleCount
	// The same load on both sides: CPU is what carrying all of it cost,
	// however long each side took to deliver it.
	s.Items = 1
	s.Detail = fmt.Sprintf("loads sent in %.1f s: %d lines (%d received), %d spans (%d received); %d scrapes of %d series, remote-write sink: %s; "+
		"%d of %d rule series stored; %d of %d rules evaluated with health ok",
		sendSec, lines, sink.logs.received.Load(), spans, sink.spans.received.Load(), r.tgt.served.Load(), n, rwDetail,
		count, nr, evaluated, h.o.RuleCount)
	for _, e := range []error{err, cerr, rerr} {
		if e != nil {
			s.Detail += "; " + e.Error()
		}
	}
	return nil
}

// peerNominal describes nominal's peer.
func peerNominal(h *harness) string {
	return "otelcol contrib (bench/peer -tags " + h.o.contribTags() + ") + Prometheus 2.42, CPU and RSS summed"
}

// trimZeros drops the leading zeros of a hex ID, so that IDs written with
// and without them compare equal.
func trimZeros(s string) string { return strings.TrimLeft(strings.ToLower(s), "0") }
