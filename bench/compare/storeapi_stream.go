package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
)

// sideSidecar is Prometheus 2.42 + thanos sidecar, the storeapi mode's peer
// (the weft side is sideWeft).
const sideSidecar = "sidecar"

// streamRun is one measured Series call.
type streamRun struct {
	Order    int       `json:"order"`
	Side     string    `json:"side"`
	Batch    int64     `json:"batch"`
	WallSec  float64   `json:"wall_s"`
	Series   int64     `json:"series"`
	Chunks   int64     `json:"chunks"`
	Samples  int64     `json:"samples_in_chunks"`
	Bytes    int64     `json:"bytes"`
	Messages int64     `json:"messages"`
	BaseRSS  float64   `json:"base_rss_mib"`
	BaseEach []float64 `json:"base_rss_each_mib"` // weft; or sidecar, Prometheus
	PeakRSS  float64   `json:"peak_rss_mib"`
	Readings int       `json:"rss_readings"`
	CPUSec   float64   `json:"cpu_s"`
	Warnings int       `json:"warnings"`
	Err      string    `json:"error,omitempty"`
}

func (r streamRun) seriesPerSec() float64 { return float64(r.Series) / r.WallSec }
func (r streamRun) bytesPerSeries() float64 {
	return float64(r.Bytes) / float64(max(r.Series, 1))
}
func (r streamRun) rssIncrease() float64 { return r.PeakRSS - r.BaseRSS }

// sideCheck is the decoded content of one side before and after the runs.
type sideCheck struct {
	Info       info     `json:"info"`
	InfoErr    string   `json:"info_error,omitempty"`
	MinT, MaxT int64    `json:"-"`
	Before     *content `json:"before"`
	After      *content `json:"after"`
	Attempts   int      `json:"attempts"` // Series calls until the K-th scrape was served
}

// streamResult is the stream phase's outcome.
type streamResult struct {
	Series, Scrapes int
	Runs            []streamRun
	Sides           map[string]*sideCheck
	Diff            []string // label sets or sample counts that differ between the sides
	Verified        bool
	Problems        []string
}

// runStream: weft and Prometheus + sidecar scrape their own copy of the
// same target; once both hold K scrapes, Series calls for every series go
// to them in ABBA order.
func runStream(ctx context.Context, o *storeOptions) (*streamResult, error) {
	res := &streamResult{Series: o.Series, Scrapes: o.Scrapes, Sides: map[string]*sideCheck{}}
	start := time.Now()
	tw, err := startEnvoyTarget(o.Series)
	if err != nil {
		return nil, err
	}
	defer tw.close()
	tp, err := startEnvoyTarget(o.Series)
	if err != nil {
		return nil, err
	}
	defer tp.close()
	logf("stream: starting %v, %d series each", o.sides(), o.Series)
	groups := map[string]group{}
	addrs := map[string]string{}
	targets := map[string]*target{}
	var scrapers []*child
	if o.has(sideWeft) {
		w, err := startAgent(ctx, o, "stream-weft", "n1", tw)
		if err != nil {
			return nil, err
		}
		defer w.stop()
		groups[sideWeft], addrs[sideWeft], targets[sideWeft] = group{w.c.proc}, w.GRPC, tw
		scrapers = append(scrapers, w.c)
	}
	if o.has(sideSidecar) {
		sc, err := startSidecar(ctx, o, "stream", "n1", tp)
		if err != nil {
			return nil, err
		}
		defer sc.stop()
		groups[sideSidecar], addrs[sideSidecar], targets[sideSidecar] = group{sc.sidecar.proc, sc.prom.proc}, sc.GRPC, tp
		scrapers = append(scrapers, sc.prom, sc.sidecar)
	}
	var ts []*target
	for _, t := range targets {
		ts = append(ts, t)
	}
	timeout := time.Duration(o.Scrapes+2)*o.Interval + 60*time.Second
	if err := waitScrapes(ctx, timeout, o.Scrapes, ts, scrapers...); err != nil {
		return nil, err
	}
	conns := map[string]*grpc.ClientConn{}
	var latest int64
	for side, addr := range addrs {
		conn, err := dial(addr)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		conns[side] = conn
		// The range: from before the first scrape to half an interval after
		// the K-th, so both sides hold exactly K scrapes in it.
		tK, _ := targets[side].servedAt(o.Scrapes)
		res.Sides[side] = &sideCheck{MinT: start.Add(-time.Minute).UnixMilli(), MaxT: tK.Add(o.Interval / 2).UnixMilli()}
		latest = max(latest, res.Sides[side].MaxT)
	}
	// Wait until both ranges are over, then until both stores serve the
	// K-th scrape (weft's pipeline and Prometheus's commit are not instant).
	select {
	case <-time.After(time.Until(time.UnixMilli(latest))):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	want := int64(o.Series) * int64(o.Scrapes)
	for _, side := range o.sides() {
		chk := res.Sides[side]
		chk.Info, err = callInfo(ctx, conns[side])
		if err != nil {
			chk.InfoErr = err.Error()
		}
		deadline := time.Now().Add(30*time.Second + o.Interval)
		for {
			chk.Attempts++
			ct, err := readContent(ctx, conns[side], seriesRequest(chk.MinT, chk.MaxT, o.Batches[0]))
			chk.Before = ct
			if err != nil {
				// Measured anyway: the runs record their own errors.
				res.Problems = append(res.Problems, fmt.Sprintf("%s: verification call: %v", side, err))
				break
			}
			if ct.PayloadSeries >= int64(o.Series) && ct.PayloadSamples >= want || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond) // the store is still committing the last scrape
		}
		for _, batch := range o.Batches[1:] {
			ct, err := readContent(ctx, conns[side], seriesRequest(chk.MinT, chk.MaxT, batch))
			if err != nil {
				res.Problems = append(res.Problems, fmt.Sprintf("%s: verification call, response_batch_size %d: %v", side, batch, err))
				continue
			}
			if d := diffContent(chk.Before, ct, fmt.Sprintf("batch %d", o.Batches[0]), fmt.Sprintf("batch %d", batch), 5); len(d) > 0 || ct.Series != chk.Before.Series {
				res.Problems = append(res.Problems, fmt.Sprintf("%s: response_batch_size %d returns other series than %d: %d vs %d series; %v", side, batch, o.Batches[0], ct.Series, chk.Before.Series, d))
			}
		}
		logf("stream: %s holds %d series (%d payload, %d samples in range; want %d, %d) after %d call(s), %s since start",
			side, chk.Before.Series, chk.Before.PayloadSeries, chk.Before.PayloadSamples, o.Series, want, chk.Attempts, time.Since(start).Round(time.Second))
	}

	order := 0
	for _, batch := range o.Batches {
		for r := range o.Rounds {
			sides := o.sides()
			if r%2 == 1 {
				slices.Reverse(sides)
			}
			for _, side := range sides {
				order++
				run := measureStream(ctx, o, conns[side], groups[side], res.Sides[side], batch)
				run.Order, run.Side, run.Batch = order, side, batch
				res.Runs = append(res.Runs, run)
				logf("stream: run %d %s batch %d: %d series in %.3fs = %.0f series/s, %.1f B/series, RSS %.1f → %.1f MiB (%d readings), CPU %.2fs %s",
					order, side, batch, run.Series, run.WallSec, run.seriesPerSec(), run.bytesPerSeries(), run.BaseRSS, run.PeakRSS, run.Readings, run.CPUSec, run.Err)
			}
		}
	}
	for _, side := range o.sides() {
		chk := res.Sides[side]
		chk.After, err = readContent(ctx, conns[side], seriesRequest(chk.MinT, chk.MaxT, o.Batches[0]))
		if err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("%s: verification call after the runs: %v", side, err))
		}
	}
	res.verify(want)
	return res, nil
}

// measureStream runs one Series call for everything while sampling the
// serving processes' RSS.
func measureStream(ctx context.Context, o *storeOptions, conn *grpc.ClientConn, g group, chk *sideCheck, batch int64) streamRun {
	var run streamRun
	base, err := g.rssMiB()
	if err != nil {
		run.Err = err.Error()
		return run
	}
	for _, p := range g {
		m, _ := group{p}.rssMiB()
		run.BaseEach = append(run.BaseEach, m)
	}
	cpu0, _ := g.cpu()
	smp := startRSSSampler(g, o.Sample)
	st, err := streamSeries(ctx, conn, seriesRequest(chk.MinT, chk.MaxT, batch))
	peak, n := smp.finish()
	cpu1, _ := g.cpu()
	run.WallSec, run.Series, run.Chunks, run.Samples = st.Wall.Seconds(), st.Series, st.Chunks, st.Samples
	run.Bytes, run.Messages, run.Warnings = st.Bytes, st.Messages, len(st.Warnings)
	run.BaseRSS, run.PeakRSS, run.Readings, run.CPUSec = base, peak, n, cpu1-cpu0
	if err != nil {
		run.Err = err.Error()
	}
	return run
}

// verify: sent = received. Each side returns every payload series with
// exactly K samples in the range, the same label sets (instance aside) and
// the same samples per series as the other side, before and after the
// measured runs, and every measured run returned the same number of series.
func (res *streamResult) verify(want int64) {
	bad := func(format string, args ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, args...)) }
	for side, chk := range res.Sides {
		for _, pass := range []struct {
			name string
			ct   *content
		}{{"before", chk.Before}, {"after", chk.After}} {
			ct := pass.ct
			if ct.PayloadSeries != int64(res.Series) {
				bad("%s (%s the runs): %d payload series, want %d", side, pass.name, ct.PayloadSeries, res.Series)
			}
			if ct.PayloadSamples != want {
				bad("%s (%s the runs): %d payload samples in range, want %d", side, pass.name, ct.PayloadSamples, want)
			}
			if ct.Duplicates > 0 {
				bad("%s (%s the runs): %d label sets served twice", side, pass.name, ct.Duplicates)
			}
			if ct.Unsorted != "" {
				bad("%s (%s the runs): series not sorted by labels: %s", side, pass.name, ct.Unsorted)
			}
			if len(ct.BadChunks) > 0 {
				bad("%s (%s the runs): %d bad chunks, first: %s", side, pass.name, len(ct.BadChunks), ct.BadChunks[0])
			}
			if len(ct.Warnings) > 0 {
				bad("%s (%s the runs): warnings: %v", side, pass.name, ct.Warnings)
			}
		}
		if d := diffContent(chk.Before, chk.After, "before", "after", 5); len(d) > 0 {
			bad("%s: the content changed during the runs: %v", side, d)
		}
		for _, r := range res.Runs {
			if r.Side != side {
				continue
			}
			if r.Err != "" {
				bad("%s run %d: %s", side, r.Order, r.Err)
			}
			if r.Series != chk.Before.Series {
				bad("%s run %d: %d series, the verification call had %d", side, r.Order, r.Series, chk.Before.Series)
			}
		}
	}
	if len(res.Sides) < 2 {
		res.Verified = len(res.Problems) == 0
		return
	}
	w, s := res.Sides[sideWeft].Before, res.Sides[sideSidecar].Before
	res.Diff = diffContent(w, s, sideWeft, sideSidecar, 20)
	// The scrapers' own series (up, scrape_*) may differ in name set; only
	// the payload must match label for label.
	var payloadDiff []string
	for _, d := range res.Diff {
		isSynth := false
		for n := range scrapeSynthetic {
			if containsName(d, n) {
				isSynth = true
			}
		}
		if !isSynth {
			payloadDiff = append(payloadDiff, d)
		}
	}
	if len(payloadDiff) > 0 {
		bad("payload differs between the sides (first %d): %v", len(payloadDiff), payloadDiff)
	}
	res.Verified = len(res.Problems) == 0
}

func containsName(labelSet, name string) bool {
	return strings.Contains(labelSet, "__name__="+name+",") || strings.Contains(labelSet, "__name__="+name+"}")
}

// sides are the sides this invocation runs (-only).
func (o *storeOptions) sides() []string {
	if o.Only != "" {
		return []string{o.Only}
	}
	return []string{sideWeft, sideSidecar}
}

func (o *storeOptions) has(side string) bool { return slices.Contains(o.sides(), side) }
