// Command compare runs weft and its peers side by side on identical
// workloads and sinks (issue #10) and writes the comparison:
//
//	go run . -out ..            # from bench/compare: full run, results under bench/
//	go run . -smoke -json x.json # a few seconds per workload, nothing else written
//
// Each side runs as a child process with the same GOMAXPROCS and GOMEMLIMIT,
// alternately in ABBA order (weft, peer, peer, weft, ...). The harness
// samples the child's CPU seconds (utime+stime of /proc/<pid>/stat) and
// resident set (VmRSS of /proc/<pid>/status; the peak is VmHWM) and serves
// the sinks itself: an OTLP gRPC/HTTP sink and a remote-write sink that
// count every item and check that what was sent arrived exactly once.
//
// Workloads and peers:
//
//	logs-10k, logs-max  container_logs vs filelog+container operator   (bench/peer -tags contrib)
//	scrape              pod_scrape vs prometheus receiver, remote write (bench/peer -tags contrib)
//	scrape-wal          the same with the exporter's WAL on both sides    (bench/peer -tags contrib)
//	scrape-agent        weft with WAL vs Prometheus agent mode            (prometheus on PATH)
//	scrape-otlp         the same into an OTLP/gRPC sink                  (bench/peer -tags contrib)
//	traces              OTLP in, OTLP out                                (bench/peer, minimal build)
//	idle                receivers listening, no data                     (bench/peer -tags contrib)
//	rules               weft_store+weft_rules vs Prometheus 2.42          (prometheus on PATH)
//	freshness           weft alone: time until weft_query returns a line, sample, span
//	nominal             all loads in one weft vs otelcol contrib + Prometheus 2.42, summed
//	store-memory        RSS per stored series with exemplars: weft_store vs Prometheus 2.42
//
// A separate mode with its own flags, `go run . storeapi [flags]`, measures
// weft's Thanos StoreAPI against Prometheus 2.42 + thanos sidecar, and query
// latency through Thanos Query over 1/3/10 agents (issue #18; storeapi.go).
//
// This is its own Go module (bench/compare/go.mod), so its plotting library
// never becomes a dependency of weft.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// options is the harness configuration (one flag each).
type options struct {
	WeftBin        string `json:"-"` // weft binary; built from ./cmd/weft when empty
	PeerCoreBin    string `json:"-"` // bench/peer core build; built when empty
	PeerContribBin string `json:"-"` // bench/peer -tags contrib; built when empty
	// PeerContribTags are the build tags of the contrib peer: "contrib";
	// the smoke adds remove_all_sd (the prometheus receiver then links only
	// the service discoveries it imports itself: static, file, http and
	// kubernetes; the others cost minutes of a cold make test and are
	// never configured here).
	PeerContribTags string        `json:",omitempty"`
	PrometheusBin   string        // Prometheus 2.42 for the rules workload
	Workloads       []string      // which workloads run, in order
	Rounds          int           // ABBA rounds; each side runs once per round
	GoMaxProcs      string        // GOMAXPROCS of every child
	GoMemLimit      string        // GOMEMLIMIT of every child
	Sample          time.Duration // /proc sampling interval
	DrainTimeout    time.Duration // how long to wait for the sinks to hold everything
	LogLines        int           // lines per run, logs-10k
	LogRate         int           // lines per second, logs-10k
	LogMaxLines     int           // lines per run, logs-max
	LogMaxAhead     int           // logs-max: the writer stays at most this many lines ahead of the sink
	LogFiles        int           // container log files written in parallel
	LogLineBytes    int           // bytes per CRI line, newline included
	RotateBytes     int64         // kubelet containerLogMaxSize
	RotateKeep      int           // rotated files kept (kubelet containerLogMaxFiles - 1)
	ScrapeSeries    int           // series in the Envoy payload
	ScrapeInterval  time.Duration // scrape interval of the scrape workload
	ScrapeCount     int           // scrapes measured per run
	TraceSpans      int           // spans per run
	TraceRate       int           // spans per second
	IdleFor         time.Duration // idle window
	RuleSeries      int           // series the rules read
	RuleCount       int           // alerting rules
	RuleInterval    time.Duration // scrape and evaluation interval of the rules workload
	RuleCycles      int           // evaluation cycles measured per run
	FreshScrapes    int           // freshness: scrape intervals per run (a sample marker each)
	FreshEvery      time.Duration // freshness: a log line and a span marker this often
	FreshPoll       time.Duration // freshness: each poller asks weft_query this often
	MemSeriesSmall  int           // store-memory: series of the smaller size
	MemSeriesLarge  int           // store-memory: series of the larger size
	MemInterval     time.Duration // store-memory: scrape interval
	MemScrapes      int           // store-memory: scrapes before RSS is read
	MemTargets      int           // store-memory: targets each size's series are split over
	OutDir          string        `json:"-"` // bench/ directory: RESULTS.md section, compare/results/*
	JSONPath        string        `json:"-"` // raw samples also written here when set
	WorkDir         string        `json:"-"` // binaries, configs, logs, data; a temporary one when empty
	Keep            bool          // keep WorkDir
	Only            string        // run only this side (debugging a workload; no comparison)
	Commit          string        // weft commit measured, for the report (default: git rev-parse of the repository)
	ProfileDir      string        `json:"-"` // scrape workloads and store-memory: weft's CPU and heap profiles of each window go here
	WeftNative      bool          // weft scrapes on the shipped profile's native path (pod_scrape appendables, no pdata): scrape-wal, scrape-agent, rules, freshness, nominal
	// WeftIndexBytes, if > 0, sets weft_store's traces_max_bytes and
	// logs_max_bytes in freshness and nominal (0: weft_store's defaults,
	// the shipped profile's 64 MiB each).
	WeftIndexBytes int64 `json:",omitempty"`
}

func defaultOptions() options {
	return options{
		PeerContribTags: "contrib",
		Workloads:       []string{"logs-10k", "logs-max", "scrape", "scrape-wal", "scrape-agent", "scrape-otlp", "traces", "idle", "rules", "freshness", "nominal", "store-memory"},
		WeftNative:      true,
		Rounds:          3, GoMaxProcs: "2", GoMemLimit: "768MiB", Sample: 250 * time.Millisecond,
		DrainTimeout: 90 * time.Second,
		LogLines:     200_000, LogRate: 10_000, LogMaxLines: 1_000_000, LogMaxAhead: 100_000,
		LogFiles: 10, LogLineBytes: 200, RotateBytes: 10 << 20, RotateKeep: 4,
		ScrapeSeries: 50_000, ScrapeInterval: 15 * time.Second, ScrapeCount: 4,
		TraceSpans: 150_000, TraceRate: 5_000,
		IdleFor:    60 * time.Second,
		RuleSeries: 50_000, RuleCount: 200, RuleInterval: 15 * time.Second, RuleCycles: 4,
		FreshScrapes: 8, FreshEvery: 100 * time.Millisecond, FreshPoll: 20 * time.Millisecond,
		MemSeriesSmall: 10_000, MemSeriesLarge: 100_000, MemInterval: 15 * time.Second, MemScrapes: 4, MemTargets: 1,
	}
}

// contribTags are the contrib peer's build tags ("contrib" unless set:
// reports written before the field existed leave it empty).
func (o options) contribTags() string {
	if o.PeerContribTags == "" {
		return "contrib"
	}
	return o.PeerContribTags
}

// smoke shrinks every workload to a few seconds and one round.
func (o *options) smoke() {
	o.Rounds = 1
	o.PeerContribTags = "contrib,remove_all_sd"
	o.DrainTimeout = 45 * time.Second
	o.LogLines, o.LogMaxLines, o.LogMaxAhead = 20_000, 60_000, 20_000
	o.RotateBytes = 1 << 20 // rotations happen within the smoke's 60k lines
	o.ScrapeSeries, o.ScrapeInterval, o.ScrapeCount = 5_000, 2*time.Second, 2
	o.TraceSpans = 10_000
	o.IdleFor = 3 * time.Second
	o.RuleSeries, o.RuleInterval, o.RuleCycles = 5_000, 2*time.Second, 2
	o.FreshScrapes = 2 // freshness and nominal: the loads at full rate, 5k series, 4 s
	o.MemSeriesSmall, o.MemSeriesLarge, o.MemInterval, o.MemScrapes = 1_000, 5_000, time.Second, 2
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "storeapi" {
		storeAPIMain(os.Args[2:]) // its own flags: see storeapi.go
		return
	}
	o := defaultOptions()
	smoke := flag.Bool("smoke", false, "a few seconds per workload, one round (CI)")
	workloads := flag.String("workloads", strings.Join(o.Workloads, ","), "comma-separated workloads to run")
	flag.StringVar(&o.WeftBin, "weft", "", "weft binary (default: go build ./cmd/weft)")
	flag.StringVar(&o.PeerCoreBin, "peer-core", "", "bench/peer core build (default: built)")
	flag.StringVar(&o.PeerContribBin, "peer-contrib", "", "bench/peer -tags contrib build (default: built)")
	flag.StringVar(&o.PrometheusBin, "prometheus", "", "Prometheus 2.42 binary (default: $WEFT_PROMETHEUS or prometheus on PATH)")
	flag.IntVar(&o.Rounds, "rounds", o.Rounds, "ABBA rounds (each side runs once per round)")
	flag.StringVar(&o.GoMaxProcs, "gomaxprocs", o.GoMaxProcs, "GOMAXPROCS of every child")
	flag.StringVar(&o.GoMemLimit, "gomemlimit", o.GoMemLimit, "GOMEMLIMIT of every child")
	flag.DurationVar(&o.Sample, "sample", o.Sample, "/proc sampling interval")
	flag.DurationVar(&o.DrainTimeout, "drain-timeout", o.DrainTimeout, "wait at most this long for the sinks to hold everything")
	flag.IntVar(&o.LogLines, "log-lines", o.LogLines, "lines per run of logs-10k")
	flag.IntVar(&o.LogRate, "log-rate", o.LogRate, "lines/s of logs-10k")
	flag.IntVar(&o.LogMaxLines, "log-max-lines", o.LogMaxLines, "lines per run of logs-max")
	flag.IntVar(&o.LogMaxAhead, "log-max-ahead", o.LogMaxAhead, "logs-max: most lines written but not yet received")
	flag.IntVar(&o.LogFiles, "log-files", o.LogFiles, "container log files")
	flag.Int64Var(&o.RotateBytes, "rotate-bytes", o.RotateBytes, "rotate a log file at this size")
	flag.IntVar(&o.RotateKeep, "rotate-keep", o.RotateKeep, "rotated files kept per container")
	flag.IntVar(&o.ScrapeSeries, "scrape-series", o.ScrapeSeries, "series in the Envoy payload")
	flag.DurationVar(&o.ScrapeInterval, "scrape-interval", o.ScrapeInterval, "scrape interval")
	flag.IntVar(&o.ScrapeCount, "scrapes", o.ScrapeCount, "scrapes measured per run")
	flag.IntVar(&o.TraceSpans, "trace-spans", o.TraceSpans, "spans per run")
	flag.IntVar(&o.TraceRate, "trace-rate", o.TraceRate, "spans/s")
	flag.DurationVar(&o.IdleFor, "idle", o.IdleFor, "idle window")
	flag.IntVar(&o.RuleSeries, "rule-series", o.RuleSeries, "series the rules read")
	flag.IntVar(&o.RuleCount, "rules", o.RuleCount, "alerting rules")
	flag.DurationVar(&o.RuleInterval, "rule-interval", o.RuleInterval, "scrape and evaluation interval of the rules workload")
	flag.IntVar(&o.RuleCycles, "rule-cycles", o.RuleCycles, "evaluation cycles measured per run")
	flag.IntVar(&o.FreshScrapes, "freshness-scrapes", o.FreshScrapes, "freshness: scrape intervals per run, one sample marker each")
	flag.DurationVar(&o.FreshEvery, "freshness-every", o.FreshEvery, "freshness: write a marker line and send a marker span this often")
	flag.DurationVar(&o.FreshPoll, "freshness-poll", o.FreshPoll, "freshness: each signal's poller asks weft_query this often")
	flag.IntVar(&o.MemSeriesSmall, "memory-series-small", o.MemSeriesSmall, "store-memory: series of the smaller size")
	flag.IntVar(&o.MemSeriesLarge, "memory-series-large", o.MemSeriesLarge, "store-memory: series of the larger size")
	flag.DurationVar(&o.MemInterval, "memory-interval", o.MemInterval, "store-memory: scrape interval")
	flag.IntVar(&o.MemScrapes, "memory-scrapes", o.MemScrapes, "store-memory: scrapes before RSS is read")
	flag.IntVar(&o.MemTargets, "memory-targets", o.MemTargets, "store-memory: split each size's series over this many targets (sidecars of a node)")
	flag.StringVar(&o.OutDir, "out", "", "bench/ directory to write RESULTS.md's section, charts and raw JSON into (nothing when empty)")
	flag.StringVar(&o.JSONPath, "json", "", "also write the raw samples as JSON here")
	flag.StringVar(&o.WorkDir, "workdir", "", "work directory (default: temporary, removed at the end)")
	flag.BoolVar(&o.Keep, "keep", false, "keep the work directory")
	flag.StringVar(&o.Commit, "commit", "", "weft commit measured, for the report (default: `git rev-parse --short HEAD` of the repository)")
	flag.Int64Var(&o.WeftIndexBytes, "weft-index-bytes", 0, "freshness and nominal: weft_store's traces_max_bytes and logs_max_bytes, each (0: its defaults, as shipped); how much of weft's RSS its recent spans and logs take")
	flag.BoolVar(&o.WeftNative, "weft-native", o.WeftNative, "weft's scraped samples on the shipped profile's native path (pod_scrape appendables → weft_store / weft_remote_write, no pdata) in scrape-wal, scrape-agent, rules, freshness, nominal; false: pdata → weft_store / prometheus_remote_write")
	flag.StringVar(&o.ProfileDir, "profile-dir", "", "scrape workloads, store-memory and nominal: write weft's pprof CPU profile of each window and its heap profile at the window's end here")
	flag.StringVar(&o.Only, "only", "", "run only this side, weft or peer (to debug a workload)")
	render := flag.String("render", "", "do not run: re-render the report (and with -out, RESULTS.md's section and the charts) from this samples JSON")
	flag.Parse()
	if *render != "" {
		if err := rerender(*render, o.OutDir); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
		return
	}
	if *smoke {
		wl := o.Workloads
		o.smoke()
		o.Workloads = wl
	}
	o.Workloads = strings.Split(*workloads, ",")
	if err := runMain(context.Background(), o, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func runMain(ctx context.Context, o options, logw io.Writer) error {
	rep, err := run(ctx, o, logw)
	if rep != nil && o.JSONPath != "" {
		if werr := writeJSON(o.JSONPath, rep); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if err != nil {
		return err
	}
	fmt.Print(markdown(rep))
	if o.OutDir != "" {
		return writeOutputs(o.OutDir, rep)
	}
	return nil
}

// rerender prints the report of a samples JSON written by an earlier run
// and, when out is set, writes RESULTS.md's section and the charts again.
func rerender(path, out string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Print(markdown(&rep))
	if out == "" {
		return nil
	}
	return writeOutputs(out, &rep)
}

// harness is the state shared by every run.
type harness struct {
	o      options
	clkTck int
	logw   io.Writer
}

// machine describes where the figures were taken.
type machine struct {
	NProc   string `json:"nproc"`
	CPU     string `json:"cpu_model"`
	Kernel  string `json:"kernel"`
	Go      string `json:"go"`
	LoadAvg string `json:"loadavg_at_start"`
	Started string `json:"started_utc"`
}

// report is everything one harness run produced.
type report struct {
	Options options  `json:"options"`
	Machine machine  `json:"machine"`
	CLKTCK  int      `json:"clk_tck"`
	Peers   []string `json:"peers"`
	// BinaryMB is the size of each binary that ran, in MB (10^6 bytes).
	BinaryMB map[string]float64 `json:"binary_mb"`
	Samples  []sample           `json:"samples"`
}

// sample is one run of one side of one workload.
type sample struct {
	Workload    string  `json:"workload"`
	Side        string  `json:"side"`   // weft or peer
	Binary      string  `json:"binary"` // what ran
	Round       int     `json:"round"`
	Order       int     `json:"order"` // position in the ABBA sequence of this workload
	Unit        string  `json:"unit"`
	Sent        int64   `json:"sent"`
	Received    int64   `json:"received"`
	Duplicates  int64   `json:"duplicates"`
	Invalid     int64   `json:"invalid"`
	Verified    bool    `json:"verified"` // sent = received, nothing else arrived
	Detail      string  `json:"detail"`
	Items       float64 `json:"items"` // what CPU is divided by
	CPUSec      float64 `json:"cpu_s"`
	WallSec     float64 `json:"wall_s"`
	CPUPerItem  float64 `json:"cpu_s_per_item"`
	ReadyRSSMiB float64 `json:"ready_rss_mib"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`      // VmHWM
	PeakAnonMiB float64 `json:"peak_rss_anon_mib"` // largest RssAnon sampled in the window
	ItemsPerSec float64 `json:"items_per_s"`
	Points      []point `json:"points"`
	// Freshness is the freshness workload's markers per signal.
	Freshness []freshness `json:"freshness,omitempty"`
	// Memory is the store-memory workload's figures per size, smaller first.
	Memory []memorySize `json:"store_memory,omitempty"`
}

const (
	sideWeft = "weft"
	sidePeer = "peer"
)

// workload is one comparison.
type workload struct {
	name  string
	title string
	unit  string
	peer  func(h *harness) string // description of the peer binary; nil: weft alone
	run   func(ctx context.Context, h *harness, side string, s *sample) error
}

// weftAlone says whether the workload measures weft without a peer (no
// other program answers the same queries): one run per round.
func (w workload) weftAlone() bool { return w.peer == nil }

func workloads() []workload {
	contrib := func(h *harness) string {
		return "otelcol contrib components (bench/peer -tags " + h.o.contribTags() + ")"
	}
	return []workload{
		{"logs-10k", "CRI log files at 10k lines/s → OTLP/HTTP sink", "line", contrib, runLogsPaced},
		{"logs-max", "CRI log files at the highest rate each side keeps up with, kubelet-style rotation → OTLP/HTTP sink", "line", contrib, runLogsMax},
		{"scrape", "Envoy payload scraped into a remote-write sink", "sample", contrib, runScrape},
		{"scrape-wal", "the same scrape with a write-ahead log on both sides (remote-write exporter's WAL, as weft's shipped profile)", "sample", contrib, runScrapeWAL},
		{"scrape-agent", "weft with its WAL vs Prometheus in agent mode (scrape → WAL → remote write), same target and sink", "sample", func(*harness) string {
			return "Prometheus 2.42 --enable-feature=agent (Debian package)"
		}, runScrapeAgent},
		{"scrape-otlp", "the same scrape into an OTLP/gRPC sink (cheaper exporter: the receivers weigh more)", "sample", contrib, runScrapeOTLP},
		{"traces", "OTLP/gRPC traces at 5k spans/s → OTLP/gRPC sink", "span", func(*harness) string {
			return "otelcol minimal: the path's components only (bench/peer, default build)"
		}, runTraces},
		{"idle", "OTLP receiver and a log receiver on an empty directory, nobody sending", "second", contrib, runIdle},
		{"rules", "200 alerting rules over 50k scraped series", "evaluation cycle", func(*harness) string { return "Prometheus 2.42 (Debian package)" }, runRules},
		{"freshness", "time from a log line written, a sample served, a span received until weft_query returns it, at the nominal load", "second", nil, runFreshness},
		{"nominal", "the nominal load in one weft (logs, spans, scrape, 200 rules; stored, evaluated, forwarded) vs the two programs it replaces", "window of load", peerNominal, runNominal},
		{"store-memory", "RSS per active series of the local TSDB with exemplars (slope between two sizes)", "sample", func(*harness) string {
			return "Prometheus 2.42 --enable-feature=exemplar-storage (Debian package)"
		}, runStoreMemory},
	}
}

func findWorkload(name string) (workload, bool) {
	for _, w := range workloads() {
		if w.name == name {
			return w, true
		}
	}
	return workload{}, false
}

func (o options) validate() error {
	for _, w := range o.Workloads {
		if _, ok := findWorkload(w); !ok {
			return fmt.Errorf("unknown workload %q", w)
		}
	}
	switch {
	case o.Rounds <= 0:
		return errors.New("-rounds must be positive")
	case o.LogFiles <= 0 || o.LogLineBytes < 64 || o.LogLines <= 0 || o.LogMaxLines <= 0 || o.LogRate <= 0:
		return errors.New("log workload sizes must be positive (line at least 64 bytes)")
	case o.ScrapeSeries < 100 || o.ScrapeCount <= 0 || o.ScrapeInterval < time.Second:
		return errors.New("-scrape-series ≥ 100, -scrapes > 0, -scrape-interval ≥ 1s")
	case o.TraceSpans <= 0 || o.TraceSpans%traceBatch != 0 || o.TraceRate <= 0:
		return fmt.Errorf("-trace-spans must be a positive multiple of %d, -trace-rate positive", traceBatch)
	case o.RuleCount <= 0 || o.RuleSeries < o.RuleCount || o.RuleCycles <= 0 || o.RuleInterval < time.Second:
		return errors.New("-rules > 0, -rule-series ≥ -rules, -rule-cycles > 0, -rule-interval ≥ 1s")
	case o.FreshScrapes <= 0 || o.FreshEvery < 10*time.Millisecond || o.FreshPoll < time.Millisecond || o.FreshPoll > o.FreshEvery:
		return errors.New("-freshness-scrapes > 0, -freshness-every ≥ 10ms, 1ms ≤ -freshness-poll ≤ -freshness-every")
	case o.ScrapeSeries < 2*o.RuleCount+1 && (slices.Contains(o.Workloads, "freshness") || slices.Contains(o.Workloads, "nominal")):
		return errors.New("freshness and nominal: -scrape-series must be more than twice -rules (a fifth of the series, at least one per rule, are the rules' counters)")
	case o.MemTargets <= 0 || o.MemSeriesSmall < memoryMinSeries*o.MemTargets || o.MemSeriesLarge <= o.MemSeriesSmall || o.MemScrapes <= 0 || o.MemInterval < time.Second:
		return fmt.Errorf("-memory-targets > 0, -memory-series-small ≥ %d per target, -memory-series-large > -memory-series-small, -memory-scrapes > 0, -memory-interval ≥ 1s", memoryMinSeries)
	}
	return nil
}

func run(ctx context.Context, o options, logw io.Writer) (*report, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "bench-compare-")
		if err != nil {
			return nil, err
		}
		if !o.Keep {
			defer os.RemoveAll(dir)
		}
		o.WorkDir = dir
	}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, err
	}
	if o.ProfileDir != "" {
		if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
			return nil, err
		}
	}
	h := &harness{o: o, clkTck: clockTicks(), logw: logw}
	if err := h.build(ctx); err != nil {
		return nil, err
	}
	if h.o.Commit == "" {
		if root, err := repoRoot(); err == nil {
			if out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
				h.o.Commit = strings.TrimSpace(string(out))
			}
		}
	}
	rep := &report{Options: h.o, Machine: describeMachine(), CLKTCK: h.clkTck, BinaryMB: map[string]float64{}}
	for name, bin := range map[string]string{"weft": h.o.WeftBin, "otelcol minimal (bench/peer)": h.o.PeerCoreBin,
		"otelcol contrib (bench/peer -tags " + h.o.contribTags() + ")": h.o.PeerContribBin, "Prometheus": h.o.PrometheusBin} {
		if fi, err := os.Stat(bin); bin != "" && err == nil {
			rep.BinaryMB[name] = float64(fi.Size()) / 1e6
		}
	}
	for _, name := range o.Workloads {
		w, _ := findWorkload(name)
		if w.weftAlone() {
			rep.Peers = append(rep.Peers, w.name+": none, weft alone")
		} else {
			rep.Peers = append(rep.Peers, w.name+": "+w.peer(h))
		}
		order := 0
		for round := range o.Rounds {
			sides := []string{sideWeft, sidePeer}
			if round%2 == 1 {
				sides = []string{sidePeer, sideWeft}
			}
			if w.weftAlone() {
				sides = []string{sideWeft}
			}
			for _, side := range sides {
				if o.Only != "" && side != o.Only {
					continue
				}
				order++
				s := sample{Workload: w.name, Side: side, Round: round + 1, Order: order, Unit: w.unit}
				s.Binary = "weft (go build ./cmd/weft)"
				if side == sidePeer {
					s.Binary = w.peer(h)
				}
				fmt.Fprintf(logw, "%s round %d/%d: %s ...\n", w.name, round+1, o.Rounds, side)
				if err := w.run(ctx, h, side, &s); err != nil {
					return rep, fmt.Errorf("%s round %d, %s: %w (logs in %s)", w.name, round+1, side, err, o.WorkDir)
				}
				if s.Items > 0 {
					s.CPUPerItem = s.CPUSec / s.Items
				}
				if s.WallSec > 0 {
					s.ItemsPerSec = s.Items / s.WallSec
				}
				fmt.Fprintf(logw, "  %s: %.3g CPU s per %s, CPU %.2f s over %.1f s, RSS ready %.1f MiB, peak %.1f MiB; sent %d received %d dup %d invalid %d verified=%v %s\n",
					side, s.CPUPerItem, s.Unit, s.CPUSec, s.WallSec, s.ReadyRSSMiB, s.PeakRSSMiB, s.Sent, s.Received, s.Duplicates, s.Invalid, s.Verified, s.Detail)
				rep.Samples = append(rep.Samples, s)
			}
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
			return "", errors.New("run from inside the weft repository, or pass -weft, -peer-core and -peer-contrib")
		}
		dir = parent
	}
}

// needs reports which binaries the selected workloads use.
func (o options) needs() (core, contrib, prom bool) {
	for _, w := range o.Workloads {
		switch w {
		case "traces":
			core = true
		case "rules", "scrape-agent", "store-memory":
			prom = true
		case "freshness": // weft alone
		case "nominal":
			contrib, prom = true, true
		default:
			contrib = true
		}
	}
	return
}

func (h *harness) build(ctx context.Context) error {
	core, contrib, prom := h.o.needs()
	build := func(dir, out string, args ...string) error {
		fmt.Fprintf(h.logw, "building %s ...\n", out)
		cmd := goBuild(ctx, dir, out, args...)
		cmd.Stdout, cmd.Stderr = h.logw, h.logw
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build in %s: %w", dir, err)
		}
		return nil
	}
	var root string
	if h.o.WeftBin == "" || (core && h.o.PeerCoreBin == "") || (contrib && h.o.PeerContribBin == "") {
		r, err := repoRoot()
		if err != nil {
			return err
		}
		root = r
	}
	if h.o.WeftBin == "" {
		h.o.WeftBin = filepath.Join(h.o.WorkDir, "weft")
		if err := build(root, h.o.WeftBin, "./cmd/weft"); err != nil {
			return err
		}
	}
	if core && h.o.PeerCoreBin == "" {
		h.o.PeerCoreBin = filepath.Join(h.o.WorkDir, "peer-core")
		if err := build(filepath.Join(root, "bench", "peer"), h.o.PeerCoreBin, "."); err != nil {
			return err
		}
	}
	if contrib && h.o.PeerContribBin == "" {
		h.o.PeerContribBin = filepath.Join(h.o.WorkDir, "peer-contrib")
		if err := build(filepath.Join(root, "bench", "peer"), h.o.PeerContribBin, "-tags", h.o.contribTags(), "."); err != nil {
			return err
		}
	}
	if prom && h.o.PrometheusBin == "" {
		p := os.Getenv("WEFT_PROMETHEUS")
		if p == "" {
			var err error
			if p, err = exec.LookPath("prometheus"); err != nil {
				return errors.New("the rules, scrape-agent, nominal and store-memory workloads need Prometheus 2.42: run hack/install-debian-tools.sh (Debian package prometheus), or set $WEFT_PROMETHEUS or -prometheus")
			}
		}
		h.o.PrometheusBin = p
	}
	return nil
}

// goBuild returns `go build` of args into out, run in dir, with the release
// build's flags (CGO_ENABLED=0, -trimpath; the same as weft's
// internal/gobuild, which this module cannot import): weft and the peers
// are measured as the image ships weft, and make test compiles every
// package once for all its builds.
func goBuild(ctx context.Context, dir, out string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-trimpath", "-o", out}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	return cmd
}

func describeMachine() machine {
	m := machine{Go: goVersion(), Started: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	if out, err := exec.Command("nproc").Output(); err == nil {
		m.NProc = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		m.LoadAvg = strings.Join(f[:min(3, len(f))], " ")
	}
	return m
}

func goVersion() string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func writeJSON(path string, rep *report) error {
	b, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		return err
	}
	// A point (an array of numbers) on one line, not one number per line.
	b = numberArray.ReplaceAllFunc(b, func(m []byte) []byte { return space.ReplaceAll(m, nil) })
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

var (
	numberArray = regexp.MustCompile(`\[(\s*-?[0-9][0-9.e+-]*,)*\s*-?[0-9][0-9.e+-]*\s*\]`)
	space       = regexp.MustCompile(`\s+`)
)

// sidesOf returns the samples of one workload and side.
func sidesOf(rep *report, wl, side string) []sample {
	var out []sample
	for _, s := range rep.Samples {
		if s.Workload == wl && s.Side == side {
			out = append(out, s)
		}
	}
	return out
}

// workloadsIn lists the workloads present in rep, in run order.
func workloadsIn(rep *report) []string {
	var out []string
	for _, s := range rep.Samples {
		if !slices.Contains(out, s.Workload) {
			out = append(out, s.Workload)
		}
	}
	return out
}
