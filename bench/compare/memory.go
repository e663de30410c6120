package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The store-memory workload (issue #21): how much resident memory one more
// active series costs a node's store, with exemplars, measured as the slope
// of RSS between two sizes of the same payload so that the binary's pages
// and every fixed cost cancel out. Each size runs in a fresh process that
// scrapes MemScrapes intervals into its local TSDB (no remote write); RSS
// is read once the last of them is queryable.

// memoryMarker is the payload's counter whose value is the scrape's number
// (1-based): the harness waits for it to reach MemScrapes through the
// side's query API before it reads RSS. Every scrape gives it an exemplar.
const memoryMarker = "bench_store_memory_scrapes_total"

// memorySelfSeries are the series a scrape loop adds per target (up,
// scrape_duration_seconds, scrape_samples_scraped,
// scrape_samples_post_metric_relabeling, scrape_series_added), on both
// sides.
const memorySelfSeries = 5

// memoryMinSeries is the smallest size: one histogram, some counters and
// the marker.
const memoryMinSeries = 100

// memoryBounds are the histograms' upper bounds as OpenMetrics writes
// them (Prometheus 3's parser rewrites `le` into this form; 2.42 keeps it
// as sent), with the exemplar value of each bucket (inside the bucket).
var memoryBounds = [...]struct{ le, ex string }{
	{"0.5", "0.4"}, {"1.0", "0.9"}, {"5.0", "4"}, {"10.0", "9"}, {"25.0", "24"}, {"50.0", "49"}, {"100.0", "99"},
	{"250.0", "249"}, {"500.0", "499"}, {"1000.0", "999"}, {"2500.0", "2499"}, {"5000.0", "4999"}, {"10000.0", "9999"},
	{"30000.0", "29999"}, {"60000.0", "59999"}, {"300000.0", "299999"}, {"600000.0", "599999"}, {"1.8e+06", "1799999"},
	{"3.6e+06", "3599999"}, {"+Inf", "7200000"},
}

// memoryHistSeries is the series of one histogram: its buckets, sum, count.
const memoryHistSeries = len(memoryBounds) + 2

// memoryPayload appends to dst scrape k (0-based) of the store-memory
// target in OpenMetrics text 1.0.0: exactly n series (n ≥
// memoryMinSeries). A quarter are Istio request-duration histograms
// (labels as the scrape workload's), the rest Envoy upstream request
// counters by cluster and response class, and the marker counter. Every
// series that may carry an exemplar in OpenMetrics (a counter's _total, a
// histogram's _bucket) carries one on every second scrape, half of them
// on even scrapes and half on odd ones; the marker on every scrape. Each
// exemplar has its own trace and span ID. Values grow with k.
func memoryPayload(dst []byte, n, k int) []byte {
	hists := (n - 1) / 4 / memoryHistSeries
	counters := n - 1 - hists*memoryHistSeries
	dst = append(dst, "# TYPE envoy_cluster_upstream_rq counter\n"...)
	for i := range counters {
		c, class := i/3, i%3
		dst = append(dst, `envoy_cluster_upstream_rq_total{cluster_name="`...)
		dst = appendCluster(dst, c)
		dst = append(dst, `",response_code_class="`...)
		dst = append(dst, "2xx4xx5xx"[class*3:class*3+3]...)
		dst = append(dst, `"} `...)
		dst = strconv.AppendInt(dst, int64((c%11+1)*(3-class)*(k+1)), 10)
		if (i+k)%2 == 0 {
			dst = appendExemplar(dst, uint64(i), k, "1")
		}
		dst = append(dst, '\n')
	}
	dst = append(dst, "# TYPE istio_request_duration_milliseconds histogram\n"...)
	for h := range hists {
		series := uint64(counters + h*memoryHistSeries)
		cum := 0
		for j, b := range memoryBounds {
			if j%4 == 1 {
				cum += (h%5 + 1) * (k + 1)
			}
			dst = append(dst, "istio_request_duration_milliseconds_bucket{"...)
			dst = appendHistLabels(dst, h)
			dst = append(dst, `,le="`...)
			dst = append(dst, b.le...)
			dst = append(dst, `"} `...)
			dst = strconv.AppendInt(dst, int64(cum), 10)
			if (h+k)%2 == 0 {
				dst = appendExemplar(dst, series+uint64(j), k, b.ex)
			}
			dst = append(dst, '\n')
		}
		dst = append(dst, "istio_request_duration_milliseconds_sum{"...)
		dst = appendHistLabels(dst, h)
		dst = append(dst, "} "...)
		dst = strconv.AppendInt(dst, int64(cum*13), 10)
		dst = append(dst, ".5\nistio_request_duration_milliseconds_count{"...)
		dst = appendHistLabels(dst, h)
		dst = append(dst, "} "...)
		dst = strconv.AppendInt(dst, int64(cum), 10)
		dst = append(dst, '\n')
	}
	dst = append(dst, "# TYPE bench_store_memory_scrapes counter\n"+memoryMarker+" "...)
	dst = strconv.AppendInt(dst, int64(k+1), 10)
	dst = appendExemplar(dst, uint64(n-1), k, "1")
	return append(dst, "\n# EOF\n"...)
}

// splitSeries splits n series over t targets as evenly as they go, the
// first ones one larger.
func splitSeries(n, t int) []int {
	out := make([]int, t)
	for i := range out {
		out[i] = n / t
		if i < n%t {
			out[i]++
		}
	}
	return out
}

// appendCluster appends the Envoy cluster name of cluster c, as the scrape
// workload names them.
func appendCluster(dst []byte, c int) []byte {
	dst = append(dst, "outbound|9080|v"...)
	dst = strconv.AppendInt(dst, int64(c%3), 10)
	dst = append(dst, "|svc-"...)
	dst = strconv.AppendInt(dst, int64(c), 10)
	dst = append(dst, ".ns-"...)
	dst = strconv.AppendInt(dst, int64(c%7), 10)
	return append(dst, ".svc.cluster.local"...)
}

// appendHistLabels appends the labels (le aside) of histogram h, those of
// the scrape workload's Istio histograms.
func appendHistLabels(dst []byte, h int) []byte {
	dst = append(dst, `reporter="destination",source_workload="productpage-v`...)
	dst = strconv.AppendInt(dst, int64(h%4), 10)
	dst = append(dst, `",destination_workload="reviews-v`...)
	dst = strconv.AppendInt(dst, int64(h%3), 10)
	dst = append(dst, `",destination_service="reviews-`...)
	dst = strconv.AppendInt(dst, int64(h), 10)
	dst = append(dst, `.default.svc.cluster.local",response_code="`...)
	dst = strconv.AppendInt(dst, int64(200+h%3*100), 10)
	return append(dst, `",connection_security_policy="mutual_tls"`...)
}

// appendExemplar appends an OpenMetrics exemplar (no timestamp: both
// sides stamp it with the scrape's) of value v whose trace and span IDs
// are unique to series i at scrape k.
func appendExemplar(dst []byte, i uint64, k int, v string) []byte {
	dst = append(dst, ` # {trace_id="`...)
	dst = appendHex16(dst, uint64(k+1)*0x9e3779b97f4a7c15)
	dst = appendHex16(dst, i)
	dst = append(dst, `",span_id="`...)
	dst = appendHex16(dst, i<<16|uint64(k&0xffff))
	dst = append(dst, `"} `...)
	return append(dst, v...)
}

// appendHex16 appends v as 16 lower-case hex digits.
func appendHex16(dst []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for s := 60; s >= 0; s -= 4 {
		dst = append(dst, digits[v>>uint(s)&0xf])
	}
	return dst
}

// openMetricsType is the content type of the store-memory target: both
// sides parse OpenMetrics (and keep its exemplars) by it.
const openMetricsType = "application/openmetrics-text; version=1.0.0; charset=utf-8"

// startMemoryTarget serves memoryPayload of n series at /metrics as
// OpenMetrics, scrape after scrape (no limit: a refused scrape would mark
// every series stale).
func startMemoryTarget(n int) (*target, error) {
	addrs, err := freeAddrs(1)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addrs[0])
	if err != nil {
		return nil, err
	}
	t := &target{Addr: addrs[0], first: make(chan struct{})}
	var buf []byte
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		arrived := time.Now()
		t.once.Do(func() { close(t.first) })
		t.mu.Lock() // one scrape at a time: numbers are consecutive
		defer t.mu.Unlock()
		buf = memoryPayload(buf[:0], n, int(t.served.Load()))
		w.Header().Set("Content-Type", openMetricsType)
		w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
		if _, err := w.Write(buf); err == nil {
			t.times = append(t.times, arrived)
			t.served.Add(1)
		}
	})
	t.srv = &http.Server{Handler: mux}
	t.wg.Go(func() { _ = t.srv.Serve(l) })
	return t, nil
}

// memorySize is one size of one store-memory run: a fresh process after
// MemScrapes scrapes of Series payload series.
type memorySize struct {
	Series  int `json:"series"`  // payload series scraped
	Targets int `json:"targets"` // targets they were split over
	// Stored is the payload series counted through the side's query API
	// (every series but the scrape loop's own); Total counts every series.
	Stored int `json:"stored"`
	Total  int `json:"total"`
	// Exemplars is how many exemplars of the marker series the side's
	// query_exemplars returns (one per scrape, as long as the circular
	// exemplar buffer has not overwritten the older ones).
	Exemplars int `json:"marker_exemplars"`
	// AllExemplars is how many exemplars of every series it returns: the
	// exemplar storage both sides hold (at most its max_exemplars).
	AllExemplars int `json:"exemplars"`
	Scrapes      int `json:"scrapes"` // scrapes served when RSS was read
	// RSSMiB and AnonMiB are VmRSS and RssAnon once the last scrape was
	// queryable; PeakMiB is VmHWM then, ReadyMiB VmRSS when ready.
	RSSMiB   float64 `json:"rss_mib"`
	AnonMiB  float64 `json:"rss_anon_mib"`
	PeakMiB  float64 `json:"peak_rss_mib"`
	ReadyMiB float64 `json:"ready_rss_mib"`
	// CPUSec and WallSec cover the window from the first scrape until the
	// last was queryable.
	CPUSec  float64 `json:"cpu_s"`
	WallSec float64 `json:"wall_s"`
	Error   string  `json:"error,omitempty"` // what went wrong in the checks
}

// verified says whether every payload series, and nothing else besides the
// scrape loop's own series, was stored, and exemplars were kept: the
// marker's latest at least, and of most series (each carrier series has
// one in every two scrapes; the buffer holds at most memoryExemplars).
func (m memorySize) verified() bool {
	return m.Error == "" && m.Stored == m.Series && m.Total == m.Series+memorySelfSeries*max(1, m.Targets) &&
		m.Exemplars >= max(1, m.Targets) && m.AllExemplars >= min(memoryExemplars, m.Series/3)
}

// memorySlope is the RSS that one more series costs between two sizes, in
// bytes per series: (RSS at b − RSS at a) / (series at b − series at a),
// for VmRSS and RssAnon.
func memorySlope(a, b memorySize) (rss, anon float64) {
	d := float64(b.Series - a.Series)
	if d == 0 {
		return 0, 0
	}
	return (b.RSSMiB - a.RSSMiB) * (1 << 20) / d, (b.AnonMiB - a.AnonMiB) * (1 << 20) / d
}

// memoryGoalBytes is issue #21's goal for weft's slope: 2 KiB per series.
const memoryGoalBytes = 2048

// runStoreMemory: for each size (MemSeriesSmall, MemSeriesLarge) a fresh
// process of the side scrapes its own MemTargets targets of that many series every
// MemInterval into its local TSDB; RSS is read once MemScrapes scrapes are
// queryable. CPU per sample covers both windows.
func runStoreMemory(ctx context.Context, h *harness, side string, s *sample) error {
	var samples int64
	for _, n := range []int{h.o.MemSeriesSmall, h.o.MemSeriesLarge} {
		var part sample
		m, err := h.storeMemorySize(ctx, side, fmt.Sprintf("%s-%02d-%s-%d", s.Workload, s.Order, side, n), n, &part)
		if err != nil {
			return fmt.Errorf("%d series: %w", n, err)
		}
		s.Memory = append(s.Memory, m)
		s.CPUSec += m.CPUSec
		s.WallSec += m.WallSec
		samples += int64(h.o.MemScrapes) * int64(n) // what the window carried
		s.Sent += int64(n)
		s.Received += int64(m.Stored)
		// The larger size's window stands for the run in the generic
		// figures (peak, ready, RSS over time).
		s.Points, s.PeakRSSMiB, s.PeakAnonMiB, s.ReadyRSSMiB = part.Points, part.PeakRSSMiB, part.PeakAnonMiB, part.ReadyRSSMiB
	}
	s.Items = float64(samples)
	s.Verified = len(s.Memory) == 2
	var details []string
	for _, m := range s.Memory {
		s.Verified = s.Verified && m.verified()
		d := fmt.Sprintf("%d series over %d target(s): %d stored (+%d own, %d in all), %d exemplars held (%d of the markers), %d scrapes, VmRSS %.1f MiB, RssAnon %.1f MiB",
			m.Series, m.Targets, m.Stored, memorySelfSeries*m.Targets, m.Total, m.AllExemplars, m.Exemplars, m.Scrapes, m.RSSMiB, m.AnonMiB)
		if m.Error != "" {
			d += " (" + m.Error + ")"
		}
		details = append(details, d)
	}
	if len(s.Memory) == 2 {
		rss, anon := memorySlope(s.Memory[0], s.Memory[1])
		details = append(details, fmt.Sprintf("slope %.0f B/series (VmRSS), %.0f B/series (RssAnon)", rss, anon))
	}
	s.Detail = strings.Join(details, "; ")
	return nil
}

// storeMemorySize runs one size in a fresh process of the side: start,
// wait for the first scrape, then until MemScrapes scrapes are queryable,
// read RSS, check what was stored.
func (h *harness) storeMemorySize(ctx context.Context, side, name string, n int, part *sample) (memorySize, error) {
	nt := h.o.MemTargets
	m := memorySize{Series: n, Targets: nt}
	var tgts []*target
	defer func() {
		for _, t := range tgts {
			t.close()
		}
	}()
	var addrList []string
	for _, ns := range splitSeries(n, nt) {
		t, err := startMemoryTarget(ns)
		if err != nil {
			return m, err
		}
		tgts = append(tgts, t)
		addrList = append(addrList, t.Addr)
	}
	// served is the fewest scrapes any target answered.
	served := func() int64 {
		least := tgts[0].served.Load()
		for _, t := range tgts[1:] {
			least = min(least, t.served.Load())
		}
		return least
	}
	data := filepath.Join(h.o.WorkDir, name+"-data")
	defer os.RemoveAll(data)
	addrs, err := freeAddrs(2)
	if err != nil {
		return m, err
	}
	api, health := addrs[0], addrs[1]
	pprofAddr := ""
	if side == sideWeft && h.o.ProfileDir != "" {
		a, err := freeAddrs(1)
		if err != nil {
			return m, err
		}
		pprofAddr = a[0]
	}
	vars := h.memoryVars(n, data, api, health, strings.Join(addrList, ", "), pprofAddr)
	cfgPath := filepath.Join(h.o.WorkDir, name+".yaml")
	var c *child
	readyURL := "http://" + health + "/"
	if side == sideWeft {
		if err := os.WriteFile(cfgPath, []byte(replaceAll(memoryWeftConfig, vars...)), 0o600); err != nil {
			return m, err
		}
		c, err = startChild(h, name, h.o.WeftBin, "--config", "file:"+cfgPath)
	} else {
		if err := os.WriteFile(cfgPath, []byte(replaceAll(memoryPromConfig, vars...)), 0o600); err != nil {
			return m, err
		}
		c, err = startChild(h, name, h.o.PrometheusBin, "--enable-feature=exemplar-storage", "--config.file="+cfgPath,
			"--storage.tsdb.path="+data, "--web.listen-address="+api, "--log.level=warn")
		readyURL = "http://" + api + "/-/ready"
	}
	if err != nil {
		return m, err
	}
	defer c.stop()
	c.pprof = pprofAddr
	smp, err := h.ready(ctx, c, readyURL, part)
	if err != nil {
		return m, err
	}
	m.ReadyMiB = part.ReadyRSSMiB
	// The window starts at the first scrape of any target.
	err = c.waitFor(ctx, 2*h.o.MemInterval+30*time.Second, func() bool {
		for _, t := range tgts {
			select {
			case <-t.first:
				return true
			default:
			}
		}
		return false
	}, func() string { return "no scrape" })
	if err != nil {
		return m, err
	}
	smp.restart()
	start := time.Now()
	base := "http://" + api
	k := h.o.MemScrapes
	// With -profile-dir, weft's CPU profile of the window and its heap
	// profile after the RSS reading (pprof's own memory counts in RSS).
	endProfile := h.profile(ctx, c, time.Duration(k-1)*h.o.MemInterval)
	var last error
	err = c.waitFor(ctx, time.Duration(k+1)*h.o.MemInterval+h.o.DrainTimeout, func() bool {
		if served() < int64(k) {
			return false
		}
		// Every target's marker at k: count of those that reached it.
		v, err := queryScalar(ctx, base, "count("+memoryMarker+" >= "+strconv.Itoa(k)+")")
		last = err
		return err == nil && v == nt
	}, func() string {
		return fmt.Sprintf("%d scrapes served by every target, %s not yet %d on all %d (last answer: %v)", served(), memoryMarker, k, nt, last)
	})
	if err != nil {
		m.Error = err.Error() // not verified; the figures are still read
	}
	// RSS first, before any query of ours allocates in the side.
	st, err := c.proc.status("VmRSS", "RssAnon", "VmHWM")
	if err != nil {
		return m, err
	}
	m.RSSMiB, m.AnonMiB, m.PeakMiB = st[0], st[1], st[2]
	m.Scrapes = int(served())
	h.finish(c, smp, part)
	endProfile()
	m.CPUSec, m.WallSec = part.CPUSec, part.WallSec
	var errs []error
	var qerr error
	m.Stored, qerr = queryScalar(ctx, base, `count({__name__=~".+",__name__!~"up|scrape_.+"})`)
	errs = append(errs, qerr)
	m.Total, qerr = queryScalar(ctx, base, `count({__name__=~".+"})`)
	errs = append(errs, qerr)
	m.Exemplars, qerr = countExemplars(ctx, base, memoryMarker, start.Add(-h.o.MemInterval), time.Now())
	errs = append(errs, qerr)
	m.AllExemplars, qerr = countExemplars(ctx, base, `{__name__=~".+"}`, start.Add(-h.o.MemInterval), time.Now())
	errs = append(errs, qerr)
	if err := errors.Join(errs...); err != nil {
		m.Error = strings.Join(append([]string{m.Error}, err.Error()), "; ")
		m.Error = strings.TrimPrefix(m.Error, "; ")
	}
	return m, nil
}

// memoryVars are the placeholders of both sides' configurations; pprof,
// when set, is the address of weft's pprof extension.
func (h *harness) memoryVars(n int, data, api, health, target, pprof string) []string {
	native := ""
	if h.o.WeftNative {
		native = "    appendables: [weft_store]\n    pdata: false\n" // the shipped profile's path
	}
	ext, names := "", "health_check, weft_store, weft_query"
	if pprof != "" {
		ext, names = "  pprof:\n    endpoint: "+pprof+"\n", names+", pprof"
	}
	return []string{"{{pprof}}", ext, "{{extensions}}", names, "{{health}}", health, "{{data}}", data, "{{query}}", api, "{{target}}", target,
		"{{interval}}", promDuration(h.o.MemInterval), "{{timeout}}", promDuration(min(10*time.Second, h.o.MemInterval*9/10)),
		"{{exemplars}}", strconv.Itoa(memoryExemplars), "{{maxseries}}", strconv.Itoa(max(100_000, 2*n)),
		"{{native}}", native}
}

// memoryExemplars is the exemplar buffer of both sides: weft_store's
// max_exemplars default, and Prometheus's max_exemplars default once
// exemplar storage is on.
const memoryExemplars = 100_000

// memoryWeftConfig is weft as the shipped profile stores scraped samples
// (pod_scrape → weft_store, 30-minute retention, WAL directory, exemplar
// storage, which weft_store always has), weft_query for the checks.
// max_series is raised above the payload (its default, 100000, would
// refuse the larger size's last series).
const memoryWeftConfig = `extensions:
  health_check:
    endpoint: {{health}}
  weft_store:
    directory: {{data}}
    metrics_retention: 30m
    max_exemplars: {{exemplars}}
    max_series: {{maxseries}}
  weft_query:
    http:
      endpoint: {{query}}
    store: weft_store
{{pprof}}receivers:
  pod_scrape:
{{native}}    scrape_configs:
      - job_name: store-memory
        scrape_interval: {{interval}}
        scrape_timeout: {{timeout}}
        static_configs:
          - targets: [{{target}}]
` + weftStorePipeline

// memoryPromConfig is Prometheus 2.42 with its defaults (2h head block,
// 15d retention) and exemplar storage of the same size
// (--enable-feature=exemplar-storage).
const memoryPromConfig = `global:
  scrape_interval: {{interval}}
  scrape_timeout: {{timeout}}
storage:
  exemplars:
    max_exemplars: {{exemplars}}
scrape_configs:
  - job_name: store-memory
    static_configs:
      - targets: [{{target}}]
`

// countExemplars counts the exemplars query_exemplars returns for q over
// [start, end].
func countExemplars(ctx context.Context, base, q string, start, end time.Time) (int, error) {
	u := base + "/api/v1/query_exemplars?query=" + url.QueryEscape(q) +
		"&start=" + strconv.FormatFloat(float64(start.UnixMilli())/1e3, 'f', 3, 64) +
		"&end=" + strconv.FormatFloat(float64(end.UnixMilli())/1e3, 'f', 3, 64)
	var body struct {
		Status string `json:"status"`
		Data   []struct {
			Exemplars []json.RawMessage `json:"exemplars"`
		} `json:"data"`
	}
	if err := getJSON(ctx, u, &body); err != nil {
		return 0, err
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("query_exemplars %s: status %q", q, body.Status)
	}
	n := 0
	for _, d := range body.Data {
		n += len(d.Exemplars)
	}
	return n, nil
}

// memorySizeLabel writes a series count short: 10k, 1.5k, 100k, 750.
func memorySizeLabel(n int) string {
	if n < 1000 || n%100 != 0 {
		return strconv.Itoa(n)
	}
	return strconv.FormatFloat(float64(n)/1000, 'f', -1, 64) + "k"
}

// targetsNote names the targets a size was split over, when more than one.
func targetsNote(n int) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf(", %d targets", n)
}

// describeStoreMemory is the workload's paragraph in the report.
func describeStoreMemory(o options) string {
	split, targets := "", "target"
	if o.MemTargets > 1 {
		split, targets = fmt.Sprintf(", each split evenly over %d targets, as over the sidecars of a node", o.MemTargets), "targets"
	}
	path := "`pod_scrape` with `appendables: [weft_store]`, `pdata: false` (the shipped profile's path for scraped samples)"
	if !o.WeftNative {
		path = "`pod_scrape` → pdata → the `weft_store` exporter (-weft-native=false)"
	}
	return fmt.Sprintf("Each side stores an Envoy-like payload in its local TSDB, nothing forwarded: a quarter Istio request-duration histograms (20 buckets, sum, count), the rest Envoy upstream request counters, served as OpenMetrics text (`%s`) so both keep its exemplars: every counter `_total` and histogram `_bucket` series carries an exemplar (trace_id, span_id) on every second scrape. "+
		"For each size (%s and %s series%s) a fresh process scrapes its own %s every %s; once %d scrapes are queryable (a counter in each payload holds the scrape's number) the harness reads VmRSS and RssAnon from /proc. "+
		"Slope = (RSS at the larger size − RSS at the smaller) / the difference in series: what one more active series costs, the binary's pages and fixed costs cancelled. "+
		"weft: %s into `weft_store` (metrics_retention 30m, WAL directory, exemplar storage with max_exemplars %d; max_series raised above the payload), `weft_query` for the checks. "+
		"Prometheus 2.42: its defaults (2h head block) with `--enable-feature=exemplar-storage`, max_exemplars %d. "+
		"CPU per sample: both sizes' windows (first scrape until the last was queryable) over the samples scraped. Verified: through each side's query API, the payload series counted = the series served, all series = those + the scrape loop's %d own per target, and exemplars held (each marker counter's latest, and at least a third of the series' count or the buffer's size), at both sizes.",
		openMetricsType, memorySizeLabel(o.MemSeriesSmall), memorySizeLabel(o.MemSeriesLarge), split, targets, o.MemInterval, o.MemScrapes,
		path, memoryExemplars, memoryExemplars, memorySelfSeries)
}

// storeMemoryTable is the workload's table: per side the RSS at each
// size, the slopes and CPU per sample (medians of the runs, slopes also
// min–max), the ratio weft / peer, and the goal line.
func storeMemoryTable(ws, ps []sample) string {
	type sideFig struct {
		small, large            memorySize
		rss, anon, cpu, rsSmall stats
		rsLarge, anSmall        stats
		anLarge, peak           stats
		ok, runs                int
	}
	fig := func(ss []sample) (f sideFig) {
		var rss, anon, cpu, rs0, rs1, an0, an1, peak []float64
		for _, s := range ss {
			if len(s.Memory) != 2 {
				continue
			}
			f.runs++
			if s.Verified {
				f.ok++
			}
			a, b := s.Memory[0], s.Memory[1]
			f.small, f.large = a, b
			r, an := memorySlope(a, b)
			rss, anon = append(rss, r), append(anon, an)
			cpu = append(cpu, s.CPUPerItem)
			rs0, rs1, an0, an1 = append(rs0, a.RSSMiB), append(rs1, b.RSSMiB), append(an0, a.AnonMiB), append(an1, b.AnonMiB)
			peak = append(peak, b.PeakMiB)
		}
		f.rss, f.anon, f.cpu = summarize(rss), summarize(anon), summarize(cpu)
		f.rsSmall, f.rsLarge, f.anSmall, f.anLarge, f.peak = summarize(rs0), summarize(rs1), summarize(an0), summarize(an1), summarize(peak)
		return f
	}
	w, p := fig(ws), fig(ps)
	lo, hi := "smaller size", "larger size"
	if w.runs > 0 {
		lo, hi = memorySizeLabel(w.small.Series), memorySizeLabel(w.large.Series)
	} else if p.runs > 0 {
		lo, hi = memorySizeLabel(p.small.Series), memorySizeLabel(p.large.Series)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| side | runs | verified: series stored = served | VmRSS at %s MiB | VmRSS at %s MiB | **slope VmRSS, B/series**, median (min–max) | RssAnon at %s MiB | RssAnon at %s MiB | slope RssAnon, B/series, median (min–max) | CPU per sample | peak RSS at %s MiB |\n", lo, hi, lo, hi, hi)
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	row := func(name string, f sideFig) {
		if f.runs == 0 {
			return
		}
		fmt.Fprintf(&b, "| %s | %d | %d/%d (%d + %d series%s) | %.1f | %.1f | **%.0f** (%.0f–%.0f) | %.1f | %.1f | %.0f (%.0f–%.0f) | %s | %.1f |\n",
			name, f.runs, f.ok, f.runs, f.small.Series, f.large.Series, targetsNote(f.large.Targets), f.rsSmall.Median, f.rsLarge.Median,
			f.rss.Median, f.rss.Min, f.rss.Max, f.anSmall.Median, f.anLarge.Median, f.anon.Median, f.anon.Min, f.anon.Max,
			cpuFormat("sample", f.cpu.Median), f.peak.Median)
	}
	row("weft", w)
	row("Prometheus 2.42", p)
	fmt.Fprintf(&b, "| **ratio weft / peer** | | | %s | %s | **%s** | %s | %s | %s | %s | %s |\n\n",
		ratio(w.rsSmall.Median, p.rsSmall.Median), ratio(w.rsLarge.Median, p.rsLarge.Median), ratio(w.rss.Median, p.rss.Median),
		ratio(w.anSmall.Median, p.anSmall.Median), ratio(w.anLarge.Median, p.anLarge.Median), ratio(w.anon.Median, p.anon.Median),
		ratio(w.cpu.Median, p.cpu.Median), ratio(w.peak.Median, p.peak.Median))
	if w.runs > 0 {
		met := "met"
		if w.rss.Median > memoryGoalBytes {
			met = "**not met**"
		}
		fmt.Fprintf(&b, "Goal (issue #21): weft slope ≤ 2 KiB per series (VmRSS, median of the runs): %.0f B = %.2f KiB per series: %s (RssAnon slope %.0f B).\n\n",
			w.rss.Median, w.rss.Median/1024, met, w.anon.Median)
	}
	return b.String()
}
