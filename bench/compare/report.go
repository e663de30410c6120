package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// stats is the median and range of a set of figures.
type stats struct{ Median, Min, Max float64 }

func summarize(v []float64) stats {
	if len(v) == 0 {
		return stats{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{Median: m, Min: s[0], Max: s[len(s)-1]}
}

// sideStats summarizes one side of one workload.
type sideStats struct {
	Runs, Verified   int
	CPU, Peak, Ready stats
	Anon             stats
	Rate             stats
	Sent, Received   []int64
}

func summarizeSide(ss []sample) sideStats {
	var c, p, r, q, a []float64
	st := sideStats{Runs: len(ss)}
	for _, s := range ss {
		c = append(c, s.CPUPerItem)
		p = append(p, s.PeakRSSMiB)
		r = append(r, s.ReadyRSSMiB)
		q = append(q, s.ItemsPerSec)
		a = append(a, s.PeakAnonMiB)
		st.Sent = append(st.Sent, s.Sent)
		st.Received = append(st.Received, s.Received)
		if s.Verified {
			st.Verified++
		}
	}
	st.CPU, st.Peak, st.Ready, st.Rate, st.Anon = summarize(c), summarize(p), summarize(r), summarize(q), summarize(a)
	return st
}

// cpuFormat picks a readable scale for CPU seconds per item of a unit.
func cpuFormat(unit string, v float64) string {
	switch {
	case unit == "second":
		return fmt.Sprintf("%.2f %%", v*100)
	case v == 0:
		return "0"
	case v < 1e-3:
		return fmt.Sprintf("%.2f µs", v*1e6)
	case v < 1:
		return fmt.Sprintf("%.1f ms", v*1e3)
	default:
		return fmt.Sprintf("%.2f s", v)
	}
}

func rateHeader(unit string) string {
	if unit == "window of load" {
		return "rate"
	}
	return unit + "s/s (median)"
}

func cpuHeader(unit string) string {
	if unit == "second" {
		return "CPU, % of one core"
	}
	return "CPU per " + unit
}

func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func sentReceived(st sideStats) string {
	same := true
	for i := range st.Sent {
		if st.Sent[i] != st.Sent[0] || st.Received[i] != st.Received[0] {
			same = false
		}
	}
	if len(st.Sent) > 0 && same {
		return fmt.Sprintf("%d/%d (%d = %d)", st.Verified, st.Runs, st.Sent[0], st.Received[0])
	}
	var parts []string
	for i := range st.Sent {
		parts = append(parts, fmt.Sprintf("%d = %d", st.Sent[i], st.Received[i]))
	}
	return fmt.Sprintf("%d/%d (%s)", st.Verified, st.Runs, strings.Join(parts, ", "))
}

// markdown is the comparison: the machine, then one section per workload.
func markdown(rep *report) string {
	var b strings.Builder
	m, o := rep.Machine, rep.Options
	fmt.Fprintf(&b, "Run %s on %s CPU(s), %s, %s, %s. Load average at the start: %s. "+
		"Every child ran with GOMAXPROCS=%s GOMEMLIMIT=%s, %d ABBA round(s) per workload (weft, peer, peer, weft, …). "+
		"CPU = utime+stime of the child over the measurement window (/proc/<pid>/stat), peak RSS = VmHWM, ready = VmRSS when health_check (Prometheus: /-/ready) first answered.\n\n",
		m.Started, m.NProc, m.CPU, m.Kernel, m.Go, m.LoadAvg, o.GoMaxProcs, o.GoMemLimit, o.Rounds)
	if o.Commit != "" {
		fmt.Fprintf(&b, "weft and bench/peer built from commit %s.\n\n", o.Commit)
	}
	if len(rep.BinaryMB) > 0 {
		names := make([]string, 0, len(rep.BinaryMB))
		for n := range rep.BinaryMB {
			names = append(names, n)
		}
		sort.Strings(names)
		b.WriteString("Binary sizes (file-backed pages of the binary count in RSS, not in anon RSS):")
		for i, n := range names {
			sep := ","
			if i == len(names)-1 {
				sep = "."
			}
			fmt.Fprintf(&b, " %s %.0f MB%s", n, rep.BinaryMB[n], sep)
		}
		b.WriteString("\n\n")
	}
	titles := map[string]workload{}
	for _, w := range workloads() {
		titles[w.name] = w
	}
	for _, wl := range workloadsIn(rep) {
		w := titles[wl]
		ws, ps := sidesOf(rep, wl, sideWeft), sidesOf(rep, wl, sidePeer)
		wst, pst := summarizeSide(ws), summarizeSide(ps)
		if w.weftAlone() {
			fmt.Fprintf(&b, "### %s: %s\n\n", wl, w.title)
			fmt.Fprintf(&b, "Peer: none, weft alone (no other program answers these queries). %s\n\n", describeWorkload(wl, o))
			b.WriteString(freshnessTable(ws))
			fmt.Fprintf(&b, "| side | runs | verified: markers = found | %s, median (min–max) | peak RSS MiB, median (min–max) | peak anon RSS MiB, sampled (median) | RSS when ready MiB (median) |\n", cpuHeader(w.unit))
			b.WriteString("|---|---|---|---|---|---|---|\n")
			fmt.Fprintf(&b, "| weft | %d | %s | %s (%s–%s) | %.1f (%.1f–%.1f) | %.1f | %.1f |\n\n", wst.Runs, sentReceived(wst),
				cpuFormat(w.unit, wst.CPU.Median), cpuFormat(w.unit, wst.CPU.Min), cpuFormat(w.unit, wst.CPU.Max),
				wst.Peak.Median, wst.Peak.Min, wst.Peak.Max, wst.Anon.Median, wst.Ready.Median)
		} else if wl == "store-memory" {
			fmt.Fprintf(&b, "### %s: %s\n\n", wl, w.title)
			fmt.Fprintf(&b, "Peer: %s. %s\n\n", w.peer(&harness{o: o}), describeWorkload(wl, o))
			b.WriteString(storeMemoryTable(ws, ps))
		} else {
			peer := w.peer(&harness{o: o})
			fmt.Fprintf(&b, "### %s: %s\n\n", wl, w.title)
			fmt.Fprintf(&b, "Peer: %s. %s\n\n", peer, describeWorkload(wl, o))
			fmt.Fprintf(&b, "| side | runs | verified: sent = received | %s, median (min–max) | peak RSS MiB, median (min–max) | peak anon RSS MiB, sampled (median) | RSS when ready MiB (median) | %s |\n", cpuHeader(w.unit), rateHeader(w.unit))
			b.WriteString("|---|---|---|---|---|---|---|---|\n")
			row := func(name string, st sideStats) {
				rate := fmt.Sprintf("%.0f", st.Rate.Median)
				if w.unit == "second" || w.unit == "evaluation cycle" || w.unit == "window of load" {
					rate = "—" // a clock, not a throughput
				}
				fmt.Fprintf(&b, "| %s | %d | %s | %s (%s–%s) | %.1f (%.1f–%.1f) | %.1f | %.1f | %s |\n", name, st.Runs, sentReceived(st),
					cpuFormat(w.unit, st.CPU.Median), cpuFormat(w.unit, st.CPU.Min), cpuFormat(w.unit, st.CPU.Max),
					st.Peak.Median, st.Peak.Min, st.Peak.Max, st.Anon.Median, st.Ready.Median, rate)
			}
			row("weft", wst)
			row(peerShort(wl), pst)
			fmt.Fprintf(&b, "| **ratio weft / peer** | | | **%s** | **%s** | %s | %s | |\n\n",
				ratio(wst.CPU.Median, pst.CPU.Median), ratio(wst.Peak.Median, pst.Peak.Median), ratio(wst.Anon.Median, pst.Anon.Median), ratio(wst.Ready.Median, pst.Ready.Median))
			if g, ok := ratioGoals[wl]; ok && pst.Runs > 0 && wst.Runs > 0 {
				fmt.Fprintf(&b, "Goal (issue #21): CPU ≤ %.2g× (%s: %s), peak RSS ≤ %.2g× (%s: %s).\n\n",
					g.CPU, ratio(wst.CPU.Median, pst.CPU.Median), passFail(safeRatio(wst.CPU.Median, pst.CPU.Median) <= g.CPU && pst.CPU.Median > 0),
					g.RSS, ratio(wst.Peak.Median, pst.Peak.Median), passFail(safeRatio(wst.Peak.Median, pst.Peak.Median) <= g.RSS && pst.Peak.Median > 0))
			}
		}
		for _, s := range append(ws, ps...) {
			if !s.Verified {
				fmt.Fprintf(&b, "- NOT VERIFIED: %s round %d: %s\n", s.Side, s.Round, s.Detail)
			}
		}
		switch {
		case len(ws) > 0 && w.weftAlone():
			fmt.Fprintf(&b, "Run details (first run): %s.\n\n", ws[0].Detail)
		case len(ws) > 0:
			fmt.Fprintf(&b, "Run details (first run of each side): weft: %s; peer: %s.\n\n", ws[0].Detail, firstDetail(ps))
		}
	}
	return b.String()
}

func firstDetail(ss []sample) string {
	if len(ss) == 0 {
		return "—"
	}
	return ss[0].Detail
}

func peerShort(wl string) string {
	switch wl {
	case "traces":
		return "otelcol minimal"
	case "rules", "store-memory":
		return "Prometheus 2.42"
	case "scrape-agent":
		return "Prometheus 2.42 agent"
	case "nominal":
		return "otelcol contrib + Prometheus 2.42"
	}
	return "otelcol contrib"
}

func describeWorkload(wl string, o options) string {
	switch wl {
	case "logs-10k":
		return fmt.Sprintf("%d CRI lines of %d B at %d lines/s over %d files (/var/log/pods layout); weft `container_logs`, peer `file_log` (alias filelog) with the `container` operator (format containerd); both start_at beginning, memory_limiter, `otlp_http` exporter (compression none, default sending queue) to the harness's sink, which checks every line number arrived once. Window: from ready until the sink holds every line.",
			o.LogLines, o.LogLineBytes, o.LogRate, o.LogFiles)
	case "logs-max":
		return fmt.Sprintf("%d lines written as fast as the side keeps up: the writer stays at most %d lines ahead of what the sink received; kubelet-style rotation (rename 0.log → 0.log.<time>, new 0.log) at %d MiB, %d rotated files kept, older ones deleted. Same pipelines as logs-10k.",
			o.LogMaxLines, o.LogMaxAhead, o.RotateBytes>>20, o.RotateKeep)
	case "scrape":
		return fmt.Sprintf("A %d-series Envoy /stats/prometheus text payload (upstream counters, membership gauges, Istio duration histograms; counters grow every scrape) scraped every %s; weft `pod_scrape` (static target), peer `prometheus` receiver; memory_limiter, `prometheus_remote_write` exporter (defaults) to the harness's sink, which decodes snappy+protobuf and checks every payload series arrived exactly once per scrape (up, scrape_* and target_info are counted apart). Window: from the first scrape until %d scrapes were served (later scrapes get 503) and all their samples arrived; CPU per sample.",
			o.ScrapeSeries, o.ScrapeInterval, o.ScrapeCount)
	case "scrape-wal":
		return "The payload, target and sink of `scrape`, with a write-ahead log on both sides: the `prometheus_remote_write` exporter's `wal` (truncate_frequency 5s, one request in flight), as weft's shipped profile configures it."
	case "scrape-agent":
		return "The payload, target and sink of `scrape`: weft as in `scrape-wal` against Prometheus 2.42 in agent mode (`--enable-feature=agent`: scrape → WAL → remote write; its remote_write defaults), the program a platform team would otherwise run on the node to scrape and forward. Prometheus agent has no mode without its WAL."
	case "scrape-otlp":
		return fmt.Sprintf("The payload and receivers of `scrape`, exported by `otlp_grpc` (compression none) to the OTLP sink instead: remote write's translation and snappy cost the same on both sides and dilute the receivers' difference. The sink counts samples as Prometheus would (a histogram point = its buckets + sum + count; up and scrape_* apart) and checks %d per scrape; it checks the total, not each series.",
			o.ScrapeSeries)
	case "traces":
		return fmt.Sprintf("%d spans in OTLP/gRPC requests of %d (10 attributes per span) at %d spans/s from 2 senders; memory_limiter, `otlp_grpc` exporter (compression none) to the sink, which checks every span ID arrived once. Window: from ready until the sink holds every span. The same minimal build as bench/otlpjaeger's default peer.",
			o.TraceSpans, traceBatch, o.TraceRate)
	case "idle":
		return fmt.Sprintf("An OTLP receiver (gRPC and HTTP) and the log receiver of logs-10k on an empty directory, exporters to the sink, nobody sending, for %s. Verified: nothing reaches the sink.", o.IdleFor)
	case "freshness":
		_, lines, spans, window := o.nominalSizes(wl)
		return fmt.Sprintf("The nominal load for %s from the first scrape: %d CRI lines of %d B at %d lines/s over %d files, %d spans by OTLP/gRPC at %d spans/s, a %d-series target (the Envoy payload of `scrape`, %d counters read by the rules, one marker gauge) scraped every %s, %d alerting rules evaluated every %s. weft as the shipped profile runs these, everything into its store: `container_logs` → `trace_context` → `weft_store`, `otlp` → `weft_store`, `pod_scrape` → `weft_store`, `weft_rules`, `weft_query`. "+
			"Markers: every %s a CRI line with its own number in a pod of its own (moment: the write) and a span with a fresh trace ID (moment: the export call returned); every scrape, the marker gauge = the scrape's number (moment: the target received the scrape). "+
			"One poller per signal asks `weft_query` every %s for what is pending (`/api/v1/logs?namespace=bench&pod=%s`, `/api/traces?traceID=…` with every pending ID, `/api/v1/query?query=%s`); a marker's latency ends when the first answer holding it arrived, so the resolution is the poll interval plus one round trip. "+
			"Latencies of all runs pooled; nearest-rank percentiles. Poll cost: after the window, %d requests of each poller's shape back to back, weft's CPU over them less its CPU at rest in as long just before, per request; times the window's poll requests, against weft's CPU in the window (which includes answering them). Goals (issue #21): p99 ≤ 1 s for logs and spans, ≤ one scrape interval + 1 s for samples. Verified: every marker found, count(http_requests_total) = the rule series, every rule evaluated with health ok.",
			window, lines, o.LogLineBytes, o.LogRate, o.LogFiles, spans, o.TraceRate, o.ScrapeSeries, nominalRuleSeries(o.ScrapeSeries, o.RuleCount), o.ScrapeInterval, o.RuleCount, o.ScrapeInterval,
			o.FreshEvery, o.FreshPoll, markerPod, markerMetric, pollCostRequests) + indexBytesNote(o)
	case "nominal":
		_, lines, spans, window := o.nominalSizes(wl)
		return fmt.Sprintf("The freshness workload's load for %s from the first scrape (%d lines, %d spans, %d series every %s, %d rules). weft: one process storing and evaluating as in `freshness`, and forwarding as the shipped profile does (logs and spans through the `forward` connector to `otlp_http` / `otlp_grpc` export pipelines, samples by `prometheus_remote_write` with its WAL beside `weft_store`). "+
			"Peer: the two programs a user would otherwise run on the node: otelcol contrib (`file_log` + `container` operator, `otlp`, `prometheus` receiver; the same exporters and settings, WAL included) and Prometheus 2.42 (its own scrape of a second target serving the same payload, its TSDB, the same rule file). "+
			"The peer's CPU is the sum of both processes' (sampled together), its peak RSS the sum of their VmHWM (what each needs reserved), its RSS points the sum of both. CPU is per window of load: the CPU seconds each side spent carrying the same load, however long it took to deliver it. "+
			"Window: from the first scrape until the loads were sent and every line, span and sample (%d scrapes; later ones get 503) arrived at the sinks. Verified: every line and span once, every series once per scrape, count(http_requests_total) through the side's query API at the last scrape = the rule series, every rule evaluated with health ok.",
			window, lines, spans, o.ScrapeSeries, o.ScrapeInterval, o.RuleCount, o.ScrapeCount) + indexBytesNote(o)
	case "store-memory":
		return describeStoreMemory(o)
	case "rules":
		return fmt.Sprintf("Both scrape the same %d counter series (shard × pod) every %s and evaluate the same %d alerting rules (`rate(http_requests_total{shard=\"N\",status=~\"5..\"}[5m]) > 0.2`, for 2m, 10 groups: the rule set of rules/bench_test.go) every %s. weft: `pod_scrape` → `weft_store` (WAL directory) + `weft_rules` + `weft_query`; Prometheus: its own scrape, TSDB and rules manager. Window: %d intervals from the first scrape; CPU per evaluation cycle is everything the process did in an interval (scrape, storage, rules). Verified: count(http_requests_total) through each side's query API = the series sent, and every rule evaluated with health ok.",
			o.RuleSeries, o.RuleInterval, o.RuleCount, o.RuleInterval, o.RuleCycles)
	}
	return ""
}

const (
	regionBegin = "<!-- bench-compare:begin (written by `make bench-compare`; edits inside are overwritten) -->"
	regionEnd   = "<!-- bench-compare:end -->"
)

// replaceRegion puts section between the markers of doc, appending the
// markers when doc has none.
func replaceRegion(doc, section string) string {
	block := regionBegin + "\n" + section + regionEnd + "\n"
	i := strings.Index(doc, regionBegin)
	j := strings.Index(doc, regionEnd)
	if i < 0 || j < i {
		if doc != "" && !strings.HasSuffix(doc, "\n") {
			doc += "\n"
		}
		return doc + "\n" + block
	}
	rest := doc[j+len(regionEnd):]
	rest = strings.TrimPrefix(rest, "\n")
	return doc[:i] + block + rest
}

// writeOutputs writes, under the bench/ directory out: the section of
// RESULTS.md, compare/results/samples.json and the charts.
func writeOutputs(out string, rep *report) error {
	resDir := filepath.Join(out, "compare", "results")
	if err := os.MkdirAll(resDir, 0o755); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(resDir, "samples.json"), rep); err != nil {
		return err
	}
	charts, err := writeCharts(resDir, rep)
	if err != nil {
		return err
	}
	var sec strings.Builder
	sec.WriteString("## Side by side: weft vs otelcol contrib/core and Prometheus (bench/compare)\n\n")
	sec.WriteString("Written by `make bench-compare` (harness: bench/compare; peers: bench/peer, built as core and with `-tags contrib`, and Prometheus 2.42; weft and the peers built with `CGO_ENABLED=0 go build -trimpath`, the flags of weft's image, since 2026-12-04). " +
		"The machine is shared with other engineers working at the same time: absolute figures drift with their load; the ratios compare runs interleaved in the same period.\n\n")
	sec.WriteString(markdown(rep))
	sec.WriteString("Charts: ")
	for i, c := range charts {
		if i > 0 {
			sec.WriteString(", ")
		}
		fmt.Fprintf(&sec, "[%s](compare/results/%s)", strings.TrimSuffix(c, ".png"), c)
	}
	sec.WriteString(". Raw samples (every run, with its RSS/CPU points): [compare/results/samples.json](compare/results/samples.json).\n\n")
	path := filepath.Join(out, "RESULTS.md")
	doc, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(path, []byte(replaceRegion(string(doc), sec.String())), 0o644)
}

// ratioGoal is a workload's goal for the weft / peer ratios of the medians.
type ratioGoal struct{ CPU, RSS float64 }

// ratioGoals are the goals issue #21 sets as ratios.
var ratioGoals = map[string]ratioGoal{"nominal": {CPU: 0.5, RSS: 0.5}}

func passFail(ok bool) string {
	if ok {
		return "pass"
	}
	return "**fail**"
}

// freshnessTable is the freshness workload's latencies per signal, the
// markers of every run pooled, against the goal for p99.
func freshnessTable(ss []sample) string {
	var b strings.Builder
	b.WriteString("| signal | markers found / marked | p50 | p99 | max | goal: p99 ≤ | pass | poll requests, mean round trip | weft CPU per poll request (measured) | weft CPU answering the polls, of its window CPU |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, sig := range []string{signalLogs, signalSamples, signalSpans} {
		var lat []float64
		var marked, found int
		var goal, pollSec, pollCPU, weftCPU float64
		var polls int64
		for _, s := range ss {
			weftCPU += s.CPUSec
			for _, f := range s.Freshness {
				if f.Signal != sig {
					continue
				}
				lat = append(lat, f.Latency...)
				marked += f.Markers
				found += f.Found
				goal = f.Goal
				polls += f.Polls
				pollSec += f.PollSec
				pollCPU += f.PollCPU * float64(f.Polls)
			}
		}
		if marked == 0 {
			continue
		}
		p99 := percentile(lat, 99)
		ok := found == marked && len(lat) > 0 && p99 <= goal
		rtt := 0.0
		if polls > 0 {
			rtt = pollSec / float64(polls)
		}
		fmt.Fprintf(&b, "| %s | %d / %d | %s | %s | %s | %s | %s | %d, %.1f ms | %.2f ms | %.1f %% |\n", sig, found, marked,
			seconds(percentile(lat, 50)), seconds(p99), seconds(percentile(lat, 100)), seconds(goal), passFail(ok),
			polls, rtt*1e3, 1e3*safeRatio(pollCPU, float64(polls)), 100*safeRatio(pollCPU, weftCPU))
	}
	b.WriteString("\n")
	return b.String()
}

// seconds writes a latency in ms below 10 s.
func seconds(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.0f ms", v*1e3)
	}
	return fmt.Sprintf("%.1f s", v)
}

// indexBytesNote says when weft_store's span and log budgets were not the
// shipped ones (-weft-index-bytes).
func indexBytesNote(o options) string {
	if o.WeftIndexBytes <= 0 {
		return ""
	}
	return fmt.Sprintf(" Not as shipped: weft_store's traces_max_bytes and logs_max_bytes %d B each (-weft-index-bytes; shipped: 64 MiB each).", o.WeftIndexBytes)
}
