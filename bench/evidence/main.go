// Command evidence measures issue #20's claim side by side: with pins
// shared by gossip and consistent sampling on the trace ID, every node
// keeps an error trace's spans, so error traces arrive complete and no
// trace arrives as a fragment; contrib's tail_sampling on every node
// (no second tier) keeps the failing node's span only.
//
// The same workload runs twice, each on its own three children and its
// own OTLP/HTTP sink in this process (spans counted per trace ID):
//
//   - weft: three agents (bin/weft built from ./cmd/weft) with weft_pins
//     gossiping on loopback (a generated key) and evidence_sampling at
//     10 %;
//   - tail_sampling: three collectors built from bench/tailpeer
//     (tailsamplingprocessor v0.161.0), policies status ERROR, 5xx, 10 %.
//
// Each node sees one hop of every request (n1 → n2 → n3, one span per
// hop), at a steady rate, 1 % of the requests failing on one hop. Then,
// for weft alone, the pins' network cost (weft_pins.gossip_bytes over the
// run) and the decision buffer's memory at -mem-rate spans/s into one
// agent, with and without evidence_sampling (buffer self-metrics,
// /proc/PID/status VmRSS and VmHWM).
//
//	go run ./bench/evidence -rate 1500 -duration 60s
//
// The results are printed and written as markdown to -out.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/weftobs/weft/internal/gobuild"
)

// options is the harness configuration (one flag each).
type options struct {
	WeftBin      string        // weft binary; built from ./cmd/weft when empty
	PeerBin      string        // tailpeer binary; built from bench/tailpeer when empty
	Sides        string        // "weft,peer", "weft" or "peer"
	Rate         int           // requests per second (3 spans each, one per node)
	Duration     time.Duration // sending time per side
	DecisionWait time.Duration // both sides' decision_wait
	MemRate      int           // spans per second into one agent for the memory runs
	MemDuration  time.Duration // sending time of each memory run; 0 skips them
	Seed         uint64        // trace ID seed; 0 picks one
	Out          string        // markdown written here when set
	WorkDir      string        // binaries, configs and logs; a temporary directory when empty
}

func (o options) validate() error {
	var errs []error
	if o.Rate < 10 {
		errs = append(errs, fmt.Errorf("-rate: at least 10 requests/s, got %d", o.Rate))
	}
	if o.Duration < time.Second {
		errs = append(errs, fmt.Errorf("-duration: at least 1s, got %s", o.Duration))
	}
	if o.DecisionWait < time.Second || o.DecisionWait > 10*time.Minute {
		errs = append(errs, fmt.Errorf("-decision-wait: between 1s and 10m (tail_sampling decides once a second), got %s", o.DecisionWait))
	}
	if o.MemDuration > 0 && o.MemRate < hops*10 {
		errs = append(errs, fmt.Errorf("-mem-rate: at least %d spans/s, got %d", hops*10, o.MemRate))
	}
	if o.MemDuration < 0 {
		errs = append(errs, fmt.Errorf("-mem-duration: 0 (skip) or positive, got %s", o.MemDuration))
	}
	if !o.runs("weft") && !o.runs("peer") {
		errs = append(errs, fmt.Errorf("-sides: weft, peer or weft,peer, got %q", o.Sides))
	}
	for s := range strings.SplitSeq(o.Sides, ",") {
		if s = strings.TrimSpace(s); s != "weft" && s != "peer" {
			errs = append(errs, fmt.Errorf("-sides: unknown side %q (weft, peer)", s))
		}
	}
	return errors.Join(errs...)
}

// runs says whether side is among -sides.
func (o options) runs(side string) bool {
	for s := range strings.SplitSeq(o.Sides, ",") {
		if strings.TrimSpace(s) == side {
			return true
		}
	}
	return false
}

func main() {
	var o options
	flag.StringVar(&o.WeftBin, "weft", "", "weft binary (default: go build ./cmd/weft into the work directory)")
	flag.StringVar(&o.PeerBin, "tailpeer", "", "tailpeer binary (default: go build in bench/tailpeer into the work directory)")
	flag.StringVar(&o.Sides, "sides", "weft,peer", "sides to run: weft, peer, or weft,peer")
	flag.IntVar(&o.Rate, "rate", 1500, "requests per second through the 3 nodes (one span per node each)")
	flag.DurationVar(&o.Duration, "duration", 60*time.Second, "sending time per side (then the drain)")
	flag.DurationVar(&o.DecisionWait, "decision-wait", 10*time.Second, "decision_wait of evidence_sampling and tail_sampling")
	flag.IntVar(&o.MemRate, "mem-rate", 5000, "spans per second into one agent for the decision buffer's memory")
	flag.DurationVar(&o.MemDuration, "mem-duration", 30*time.Second, "sending time of each memory run (with and without evidence_sampling); 0 skips them")
	flag.Uint64Var(&o.Seed, "seed", 0, "trace ID seed (0: random)")
	flag.StringVar(&o.Out, "out", "bench/evidence/results/evidence.md", "write the markdown here (empty: print only)")
	flag.StringVar(&o.WorkDir, "workdir", "", "keep binaries, configs and logs here (default: a temporary directory, removed)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "evidence:", err)
		os.Exit(1)
	}
	md := res.markdown()
	fmt.Print(md)
	if o.Out != "" {
		err := os.MkdirAll(filepath.Dir(o.Out), 0o755)
		if err == nil {
			err = os.WriteFile(o.Out, []byte(md), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "evidence: write -out:", err)
			os.Exit(1)
		}
	}
}

// run builds what is missing, then runs the sides and the memory runs.
func run(ctx context.Context, o options, logw io.Writer) (*results, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64() | 1
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "evidence-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		o.WorkDir = dir
	}
	res := &results{Started: time.Now()}
	if err := build(ctx, &o, res, logw); err != nil {
		return nil, err
	}
	res.Options = o
	var err error
	if o.runs("weft") {
		if res.Weft, err = runWeft(ctx, o, logw); err != nil {
			return nil, fmt.Errorf("weft side: %w (logs in %s)", err, o.WorkDir)
		}
	}
	if o.runs("peer") {
		if res.Peer, err = runPeer(ctx, o, logw); err != nil {
			return nil, fmt.Errorf("tail_sampling side: %w (logs in %s)", err, o.WorkDir)
		}
	}
	if o.MemDuration > 0 {
		for _, sampling := range []bool{true, false} {
			m, err := runMemory(ctx, o, sampling, logw)
			if err != nil {
				return nil, fmt.Errorf("memory run: %w (logs in %s)", err, o.WorkDir)
			}
			if sampling {
				res.MemWith = m
			} else {
				res.MemWithout = m
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.LoadAverage = strings.TrimSpace(string(b))
	}
	return res, nil
}

// build runs `go build` for the binaries not given, timing each.
func build(ctx context.Context, o *options, res *results, logw io.Writer) error {
	needWeft := o.WeftBin == "" && (o.runs("weft") || o.MemDuration > 0)
	needPeer := o.PeerBin == "" && o.runs("peer")
	if !needWeft && !needPeer {
		return nil
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(o.WorkDir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	if needWeft {
		o.WeftBin = filepath.Join(bin, "weft")
		t := time.Now()
		if err := goBuild(ctx, root, o.WeftBin, "./cmd/weft", logw); err != nil {
			return err
		}
		res.BuildWeft = time.Since(t)
	}
	if needPeer {
		o.PeerBin = filepath.Join(bin, "tailpeer")
		t := time.Now()
		if err := goBuild(ctx, filepath.Join(root, "bench", "tailpeer"), o.PeerBin, ".", logw); err != nil {
			return err
		}
		res.BuildPeer = time.Since(t)
	}
	return nil
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
			return "", errors.New("run from inside the weft repository, or pass -weft and -tailpeer")
		}
		dir = parent
	}
}

// goBuild builds pkg in dir into out with the release build's flags
// (internal/gobuild), weft and the peer alike.
func goBuild(ctx context.Context, dir, out, pkg string, logw io.Writer) error {
	fmt.Fprintf(logw, "building %s in %s ...\n", pkg, dir)
	cmd := gobuild.Command(ctx, dir, out, pkg, "")
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s in %s: %w", pkg, dir, err)
	}
	return nil
}
