package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// sideFigures are the medians (and ranges) of one side's runs.
type sideFigures struct {
	rate, bps, base, inc, peak, cpu []float64
	each                            [][]float64 // per process: base RSS
	msgs                            int64
}

func (s *streamResult) figures(side string, batch int64) sideFigures {
	var f sideFigures
	for _, r := range s.Runs {
		if r.Side != side || r.Batch != batch || r.Err != "" {
			continue
		}
		f.rate = append(f.rate, r.seriesPerSec())
		f.bps = append(f.bps, r.bytesPerSeries())
		f.base = append(f.base, r.BaseRSS)
		for i, m := range r.BaseEach {
			if i >= len(f.each) {
				f.each = append(f.each, nil)
			}
			f.each[i] = append(f.each[i], m)
		}
		f.inc = append(f.inc, r.rssIncrease())
		f.peak = append(f.peak, r.PeakRSS)
		f.cpu = append(f.cpu, r.CPUSec)
		f.msgs = r.Messages
	}
	return f
}

func rng(xs []float64, format string) string {
	if len(xs) == 0 {
		return "–"
	}
	return fmt.Sprintf(format+" (%s–%s)", median(xs), fmt.Sprintf(format, slices.Min(xs)), fmt.Sprintf(format, slices.Max(xs)))
}

func (r *storeReport) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	o := r.Opts
	w("# weft StoreAPI vs Thanos sidecar (issue #18) — %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"))
	w("Command: `cd bench/compare && %s`; weft at %s (working tree as built); %s; %s.\n\n", r.Command, r.Commit, r.Versions["thanos"], r.Versions["prometheus"])
	w("Machine: %d cores %s, %s, kernel %s, %s; load %s at the start, %s at the end. Every child runs with GOMAXPROCS=%s",
		r.Machine.NProc, r.Machine.CPU, r.Machine.MemTotal, r.Machine.Kernel, r.Machine.Go, r.Machine.LoadStart, r.Machine.LoadEnd, o.GoMaxProcs)
	if o.GoMemLimit != "" {
		w(", GOMEMLIMIT=%s", o.GoMemLimit)
	}
	w(".\n\n")
	if s := r.Stream; s != nil {
		r.streamMarkdown(&b, s)
	}
	if len(r.Latency) > 0 {
		r.latencyMarkdown(&b, r.Latency)
	}
	if len(r.Errors) > 0 {
		w("## Errors\n\n")
		for _, e := range r.Errors {
			w("- %s\n", e)
		}
		w("\n")
	}
	return b.String()
}

func (r *storeReport) streamMarkdown(b *strings.Builder, s *streamResult) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	o := r.Opts
	w("## Streaming every series: one Series call for `{__name__=~\".+\"}`\n\n")
	w("weft (`pod_scrape` → `weft_store` → `weft_query` StoreAPI) and Prometheus 2.42 + `thanos sidecar` each scrape their own copy of the same Envoy-like target "+
		"(%d series: upstream counters, a membership gauge, Istio request-duration histograms of 20 buckets) every %s, external label `node=\"n1\"` on both. "+
		"Once both hold %d scrapes, a Go client (Thanos's generated storepb client, gogo codec) streams every series from "+
		"before the first scrape to half an interval after the %d-th, %d rounds in ABBA order (weft, sidecar, sidecar, weft, …) for each response_batch_size (%v; Thanos Query v0.42 sends 64). "+
		"Both sides keep scraping during the runs (the same background load on both). "+
		"Series/s = series received / time from the call to the end of the stream; bytes = the sum of the decoded gRPC messages (without gRPC and HTTP/2 framing); "+
		"RSS = VmRSS of the serving processes (weft; the sidecar + Prometheus summed, since the sidecar serves through Prometheus's remote read) "+
		"read just before the call (before) and every %s during it (peak); CPU = utime + stime of the same processes during the call.\n\n",
		s.Series, o.Interval, s.Scrapes, s.Scrapes, o.Rounds, o.Batches, o.Sample)
	w("| response_batch_size | side | series/s, median (min–max) | bytes/series | messages | RSS before, MiB | peak RSS increase during the stream, MiB | peak RSS, MiB | CPU per stream, s |\n|---|---|---|---|---|---|---|---|---|\n")
	ratio := func(a, b []float64) string {
		if len(a) == 0 || len(b) == 0 || median(b) == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f×", median(a)/median(b))
	}
	var goals []string
	for _, batch := range o.Batches {
		figs := map[string]sideFigures{}
		for _, side := range []string{sideWeft, sideSidecar} {
			f := s.figures(side, batch)
			figs[side] = f
			w("| %d | %s | %s | %s | %d | %s | %s | %s | %s |\n", batch, side, rng(f.rate, "%.0f"), rng(f.bps, "%.1f"), f.msgs, rng(f.base, "%.1f"), rng(f.inc, "%.1f"), rng(f.peak, "%.1f"), rng(f.cpu, "%.2f"))
		}
		fw, fs := figs[sideWeft], figs[sideSidecar]
		w("| %d | **weft / sidecar** | **%s** | %s | | %s | %s | **%s** | %s |\n", batch, ratio(fw.rate, fs.rate), ratio(fw.bps, fs.bps), ratio(fw.base, fs.base), ratio(fw.inc, fs.inc), ratio(fw.peak, fs.peak), ratio(fw.cpu, fs.cpu))
		if len(fw.rate) > 0 && len(fs.rate) > 0 {
			goals = append(goals, fmt.Sprintf("response_batch_size %d: series/s %s (%s); memory %s on peak RSS during the stream (%s), %s on the peak increase alone (%s)", batch,
				metStr(median(fw.rate) >= median(fs.rate)), ratio(fw.rate, fs.rate),
				metStr(median(fw.peak) <= 0.5*median(fs.peak)), ratio(fw.peak, fs.peak),
				metStr(median(fw.inc) <= 0.5*median(fs.inc)), ratio(fw.inc, fs.inc)))
		}
	}
	w("\n")
	if f := s.figures(sideSidecar, o.Batches[0]); len(f.each) == 2 {
		w("The sidecar side's RSS before a stream, median: thanos sidecar %.1f MiB + Prometheus %.1f MiB.\n\n", median(f.each[0]), median(f.each[1]))
	}
	if len(goals) > 0 {
		w("Goal (weft ≥ 1× the sidecar's series/s at ≤ 0.5× the memory): %s.\n\n", strings.Join(goals, "; "))
	}
	w("<details><summary>every run, in order</summary>\n\n| # | side | batch | series | wall, s | series/s | bytes | bytes/series | chunks | samples in the chunks | RSS before → peak, MiB (readings) | CPU, s | error |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range s.Runs {
		w("| %d | %s | %d | %d | %.3f | %.0f | %d | %.1f | %d | %d | %.1f → %.1f (%d) | %.2f | %s |\n", x.Order, x.Side, x.Batch, x.Series, x.WallSec, x.seriesPerSec(), x.Bytes, x.bytesPerSeries(),
			x.Chunks, x.Samples, x.BaseRSS, x.PeakRSS, x.Readings, x.CPUSec, x.Err)
	}
	w("\n</details>\n\n")
	w("Sent = received (%s). Decoded in full (labels, every chunk through Prometheus's chunkenc) before and after the runs:\n\n", verifiedStr(s.Verified))
	w("| side | Info: component, label sets, min–max time | series (payload + scrapers' own) | payload samples in range (want %d) | samples outside the range that came with overlapping chunks | sorted, duplicates, bad chunks | example payload series |\n|---|---|---|---|---|---|---|\n", int64(s.Series)*int64(s.Scrapes))
	for _, side := range []string{sideWeft, sideSidecar} {
		chk := s.Sides[side]
		if chk == nil || chk.Before == nil {
			continue
		}
		ct := chk.Before
		inf := chk.InfoErr
		if inf == "" {
			inf = fmt.Sprintf("%s, %s, %s–%s", chk.Info.Component, strings.Join(chk.Info.LabelSets, " "), msTime(chk.Info.MinTime), msTime(chk.Info.MaxTime))
		}
		sorted := "sorted"
		if ct.Unsorted != "" {
			sorted = "NOT sorted: " + ct.Unsorted
		}
		w("| %s | %s | %d (%d + %d: %s) | %d | %d | %s, %d, %d | `%s` |\n", side, inf, ct.Series, ct.PayloadSeries, ct.SyntheticSeries, strings.Join(ct.SyntheticNames, ", "),
			ct.PayloadSamples, ct.OutOfRange, sorted, ct.Duplicates, len(ct.BadChunks), ct.Example)
	}
	w("\n")
	if len(s.Diff) > 0 {
		w("Label sets (instance aside) or in-range sample counts that differ between the sides (first %d):\n\n", len(s.Diff))
		for _, d := range s.Diff {
			w("- %s\n", d)
		}
		w("\n")
	}
	if len(s.Problems) > 0 {
		w("Problems:\n\n")
		for _, p := range s.Problems {
			w("- %s\n", p)
		}
		w("\n")
	}
}

func (r *storeReport) latencyMarkdown(b *strings.Builder, ls []*latencyResult) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	o := r.Opts
	l0 := ls[0]
	w("## Query latency through Thanos Query\n\n")
	w("%d agents run at once as processes on loopback, each scraping its own target of %d series (the stream phase's payload at a tenth of its size, the node's share) every %s under its own `node` label; "+
		"all keep scraping throughout. The agents are weft (`pod_scrape` → `weft_store` → StoreAPI) and, as the reference, Prometheus 2.42 + `thanos sidecar` pairs (one after the other, never at once). "+
		"For each agent count n, a fresh stock `thanos query` (default engine, static endpoints) fans out over the first n agents; "+
		"once every agent holds %d scrapes, each query runs once untimed, then %d times in turn, instant, at one fixed evaluation time half an interval after the last agent's %d-th scrape. "+
		"Latency = HTTP request to decoded JSON answer, from the harness; p99 is the nearest rank.\n\n",
		slices.Max(o.Agents), l0.AgentSeries, o.Interval, l0.Scrapes, o.Reps, l0.Scrapes)
	w("| agents | series behind Query | query | results |")
	for _, l := range ls {
		w(" %s p50, ms | %s p99, ms |", l.Over, l.Over)
	}
	w("\n|---|---|---|---|")
	for range ls {
		w("---|---|")
	}
	w("\n")
	for i, x := range l0.Rows {
		w("| %d | %d | %s | %d |", x.Agents, x.Agents*l0.AgentSeries, x.Query, x.Results)
		for _, l := range ls {
			if i < len(l.Rows) {
				w(" %.1f | %.1f |", l.Rows[i].P50, l.Rows[i].P99)
			} else {
				w(" – | – |")
			}
		}
		w("\n")
	}
	w("\nQueries:\n\n")
	for _, q := range latencyQueries {
		w("- %s: `%s`\n", q.Name, q.Expr)
	}
	for _, l := range ls {
		w("\nVerified over %s (%s): for each agent count, `count by (node) (envoy_cluster_upstream_rq_total)` answers every agent with its %d upstream counters; every query answered with results and without warnings.\n",
			l.Over, verifiedStr(l.Verified), upstreamCounters(l.AgentSeries))
		if len(l.Problems) > 0 {
			w("\nProblems:\n\n")
			for _, p := range l.Problems {
				w("- %s\n", p)
			}
		}
	}
	w("\n")
}

func metStr(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func verifiedStr(ok bool) string {
	if ok {
		return "yes"
	}
	return "**NO**"
}

func msTime(ms int64) string {
	if ms <= -1<<62 || ms >= 1<<62 {
		return fmt.Sprint(ms)
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}
