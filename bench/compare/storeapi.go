package main

// The storeapi mode (`go run . storeapi [flags]`) benchmarks weft's Thanos
// StoreAPI (issue #18): series/s, bytes/series and the serving side's memory
// while streaming every series, against a Thanos sidecar over Prometheus 2.42
// holding the same series; and PromQL latency through stock Thanos Query over
// 1, 3 and 10 agents. See README.md, section "storeapi".

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

type storeOptions struct {
	Series      int
	Scrapes     int
	Interval    time.Duration
	Rounds      int
	Batches     []int64
	Agents      []int
	AgentSeries int
	Reps        int
	Phases      map[string]bool
	Only        string   // one side alone (debugging)
	QueryOver   []string // what Thanos Query fans out over, in turn: weft agents, Prometheus + sidecar pairs
	Sample      time.Duration
	GoMaxProcs  string
	GoMemLimit  string

	WeftBin, ThanosBin, PromBin string
	Repo                        string
	WorkDir                     string
	Keep                        bool
	Out                         string // results directory; empty: stdout only
	JSON                        string
	Command                     string // recorded in the report

	clkTck int
}

func logf(format string, args ...any) { log.Printf(format, args...) }

// storeAPIMain runs the storeapi mode with its own flags (the arguments
// after "storeapi"); it exits with 2 on bad flags and 1 on a failed or
// unverified run.
func storeAPIMain(args []string) {
	log.SetFlags(log.Ltime)
	o, err := parseStoreFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := runStoreAPI(ctx, o)
	if rep != nil {
		md := rep.markdown()
		fmt.Print(md)
		if o.Out != "" {
			path := filepath.Join(o.Out, "storeapi-"+rep.Started.UTC().Format("2006-01-02T1504Z")+".md")
			if werr := os.WriteFile(path, []byte(md), 0o644); werr != nil {
				err = errors.Join(err, werr)
			} else {
				logf("wrote %s", path)
			}
		}
		if o.JSON != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			if werr := os.WriteFile(o.JSON, b, 0o644); werr != nil {
				err = errors.Join(err, werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "storeapi:", err)
		os.Exit(1)
	}
	if !rep.verified() {
		fmt.Fprintln(os.Stderr, "storeapi: not verified (see Problems in the report)")
		os.Exit(1)
	}
}

func parseStoreFlags(args []string) (*storeOptions, error) {
	fs := flag.NewFlagSet("storeapi", flag.ContinueOnError)
	o := &storeOptions{}
	home, _ := os.UserHomeDir()
	thanos := os.Getenv("WEFT_THANOS")
	if thanos == "" {
		thanos = filepath.Join(home, ".cache", "weft", "tools", "thanos-v0.42.4")
	}
	prom := os.Getenv("WEFT_PROMETHEUS")
	if prom == "" {
		prom = "prometheus"
	}
	fs.IntVar(&o.Series, "series", 50000, "series of the scrape target in the stream phase (weft and Prometheus each scrape their own copy)")
	fs.IntVar(&o.Scrapes, "scrapes", 6, "scrapes every store holds before anything is measured")
	fs.DurationVar(&o.Interval, "interval", 5*time.Second, "scrape interval")
	fs.IntVar(&o.Rounds, "rounds", 6, "stream rounds; each round streams from both sides, in ABBA order")
	batches := fs.String("batch", "64,0", "SeriesRequest.response_batch_size values measured, each for -rounds rounds (64: what Thanos Query v0.42 sends; 0: one series per message)")
	agents := fs.String("agents", "1,3,10", "agent counts Thanos Query fans out over in the query phase")
	fs.IntVar(&o.AgentSeries, "agent-series", 0, "series per agent in the query phase (0: series/10)")
	fs.IntVar(&o.Reps, "reps", 100, "timed runs of each query per agent count")
	phases := fs.String("phases", "stream,query", "phases to run")
	fs.StringVar(&o.Only, "only", "", "stream phase: run one side alone, weft or sidecar (debugging; no ratio)")
	queryOver := fs.String("query-over", "weft,sidecar", "query phase: Thanos Query over weft agents (weft), then over Prometheus + sidecar pairs (sidecar, the reference)")
	fs.DurationVar(&o.Sample, "sample", 50*time.Millisecond, "RSS sampling interval during a stream")
	fs.StringVar(&o.GoMaxProcs, "gomaxprocs", strconv.Itoa(runtime.NumCPU()), "GOMAXPROCS of every child (weft, Prometheus, Thanos)")
	fs.StringVar(&o.GoMemLimit, "gomemlimit", "", "GOMEMLIMIT of every child (empty: none)")
	fs.StringVar(&o.WeftBin, "weft", "", "prebuilt weft binary (empty: go build ./cmd/weft in -repo)")
	fs.StringVar(&o.ThanosBin, "thanos", thanos, "Thanos v0.42.4 binary ($WEFT_THANOS)")
	fs.StringVar(&o.PromBin, "prometheus", prom, "Prometheus 2.42 binary ($WEFT_PROMETHEUS)")
	fs.StringVar(&o.Repo, "repo", "../..", "weft's repository root")
	fs.StringVar(&o.WorkDir, "workdir", "", "configs, data and child logs (empty: a temporary directory)")
	fs.BoolVar(&o.Keep, "keep", false, "keep -workdir's temporary directory")
	fs.StringVar(&o.Out, "out", "results", "directory of the dated results file results/storeapi-<date>.md (empty: stdout only)")
	fs.StringVar(&o.JSON, "json", "", "also write every run as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var errs []error
	o.Phases = map[string]bool{}
	for p := range strings.SplitSeq(*phases, ",") {
		if p != "stream" && p != "query" {
			errs = append(errs, fmt.Errorf("-phases: %q is not stream or query", p))
		}
		o.Phases[p] = true
	}
	for a := range strings.SplitSeq(*batches, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("-batch: %q is not a batch size", a))
			continue
		}
		o.Batches = append(o.Batches, n)
	}
	for a := range strings.SplitSeq(*agents, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(a))
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("-agents: %q is not a positive count", a))
			continue
		}
		o.Agents = append(o.Agents, n)
	}
	if o.Only != "" && o.Only != sideWeft && o.Only != sideSidecar {
		errs = append(errs, fmt.Errorf("-only: %q is not weft or sidecar", o.Only))
	}
	for q := range strings.SplitSeq(*queryOver, ",") {
		if q != sideWeft && q != sideSidecar {
			errs = append(errs, fmt.Errorf("-query-over: %q is not weft or sidecar", q))
		}
		o.QueryOver = append(o.QueryOver, q)
	}
	if o.AgentSeries == 0 {
		o.AgentSeries = o.Series / 10
	}
	if o.Series < 100 || o.AgentSeries < 100 {
		errs = append(errs, errors.New("-series and -agent-series: at least 100"))
	}
	if o.Scrapes < 2 {
		errs = append(errs, errors.New("-scrapes: at least 2 (rate needs two samples)"))
	}
	if o.Rounds < 1 || o.Reps < 1 {
		errs = append(errs, errors.New("-rounds and -reps: at least 1"))
	}
	if o.Interval < 500*time.Millisecond {
		errs = append(errs, errors.New("-interval: at least 500ms"))
	}
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = a
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			shown[i] = strconv.Quote(a)
		}
	}
	o.Command = strings.TrimSpace("go run . storeapi " + strings.Join(shown, " "))
	return o, errors.Join(errs...)
}

// report is everything one invocation measured.
type storeReport struct {
	Started  time.Time         `json:"started"`
	Command  string            `json:"command"`
	Commit   string            `json:"commit"`
	Machine  storeMachine      `json:"machine"`
	Opts     *storeOptions     `json:"options"`
	Versions map[string]string `json:"versions"`
	Stream   *streamResult     `json:"stream,omitempty"`
	Latency  []*latencyResult  `json:"latency,omitempty"`
	Errors   []string          `json:"errors,omitempty"`
}

func (r *storeReport) verified() bool {
	for _, l := range r.Latency {
		if !l.Verified {
			return false
		}
	}
	return len(r.Errors) == 0 && (r.Stream == nil || r.Stream.Verified)
}

// run builds what is missing, runs the phases and returns the report (also
// when a phase failed: the error is in it and returned).
func runStoreAPI(ctx context.Context, o *storeOptions) (*storeReport, error) {
	o.clkTck = clockTicks()
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "weft-storeapi-")
		if err != nil {
			return nil, err
		}
		o.WorkDir = dir
		if !o.Keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, err
	}
	if o.WeftBin == "" {
		o.WeftBin = filepath.Join(o.WorkDir, "weft")
		logf("building weft in %s", o.Repo)
		cmd := goBuild(ctx, o.Repo, o.WeftBin, "./cmd/weft")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/weft: %w\n%s", err, out)
		}
	}
	for _, b := range []*string{&o.ThanosBin, &o.PromBin} {
		p, err := exec.LookPath(*b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (make tools builds Thanos; hack/install-debian-tools.sh installs Prometheus 2.42)", *b, err)
		}
		*b = p
	}
	tags, err := checkThanos(o.ThanosBin)
	if err != nil {
		return nil, err
	}
	rep := &storeReport{Started: time.Now(), Command: o.Command, Opts: o, Machine: describeStoreMachine(), Versions: map[string]string{}}
	if out, err := exec.Command("git", "-C", o.Repo, "rev-parse", "--short", "HEAD").Output(); err == nil {
		rep.Commit = strings.TrimSpace(string(out))
	}
	rep.Versions["thanos"] = fmt.Sprintf("Thanos %s (build tags %s)", filepath.Base(o.ThanosBin), tags)
	for name, args := range map[string][]string{"prometheus": {o.PromBin, "--version"}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err == nil {
			rep.Versions[name] = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
		}
	}
	var errs []error
	if o.Phases["stream"] {
		s, err := runStream(ctx, o)
		rep.Stream = s
		if err != nil {
			errs = append(errs, fmt.Errorf("stream: %w", err))
		}
	}
	if o.Phases["query"] && ctx.Err() == nil {
		for _, over := range o.QueryOver {
			l, err := runLatency(ctx, o, over)
			if l != nil {
				rep.Latency = append(rep.Latency, l)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("query over %s: %w", over, err))
			}
		}
	}
	rep.Machine.LoadEnd = loadAvg()
	for _, e := range errs {
		rep.Errors = append(rep.Errors, e.Error())
	}
	return rep, errors.Join(errs...)
}

type storeMachine struct {
	NProc     int    `json:"nproc"`
	CPU       string `json:"cpu"`
	Kernel    string `json:"kernel"`
	MemTotal  string `json:"mem_total"`
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
	Go        string `json:"go"`
}

func describeStoreMachine() storeMachine {
	m := storeMachine{NProc: runtime.NumCPU(), LoadStart: loadAvg(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kib, err := parseStatusKiB(b, "MemTotal"); err == nil {
			m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
		}
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// checkThanos refuses a Thanos binary built without the slicelabels build
// tag, which Thanos's own release builds set (.promu.yml): labelpb's
// converters cast Prometheus labels with unsafe and assume that layout;
// without the tag the sidecar's Info answer is garbage (v0.42.4 panics
// marshalling it: "index out of range [64] with length 63" in grpc's
// buffer pool) and Query's label handling reads garbage.
func checkThanos(bin string) (string, error) {
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return "", fmt.Errorf("go version -m %s: %w", bin, err)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "-tags=") {
			tags := strings.TrimPrefix(f[1], "-tags=")
			if slices.Contains(strings.Split(tags, ","), "slicelabels") {
				return tags, nil
			}
		}
	}
	return "", fmt.Errorf("%s was built without -tags slicelabels (Thanos's release builds set it in .promu.yml): remove it and run `make tools`, which builds it with netgo,slicelabels", bin)
}
