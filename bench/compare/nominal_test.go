package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The nominal payload is the Envoy payload, the rules' counters (a fifth)
// and the marker gauge: exactly n distinct series, the marker last with
// the scrape's 1-based number.
func TestNominalPayload(t *testing.T) {
	for _, n := range []int{5000, 50_000} {
		var b, scratch bytes.Buffer
		nominalPayload(&b, &scratch, n, 200, 6)
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		series, rules, seen := 0, 0, map[string]bool{}
		for _, line := range lines {
			if strings.HasPrefix(line, "#") {
				continue
			}
			key := line[:strings.LastIndexByte(line, ' ')]
			require.False(t, seen[key], "series %s twice", key)
			seen[key] = true
			series++
			if strings.HasPrefix(line, "http_requests_total{") {
				rules++
			}
		}
		assert.Equal(t, n, series)
		assert.Equal(t, n/5, rules)
		assert.Equal(t, markerMetric+" 7", lines[len(lines)-1])
	}
	assert.Equal(t, 200, nominalRuleSeries(500, 200), "at least one counter per rule")
}

// The load of a window follows the rates and the interval; freshness has
// its own number of scrapes.
func TestNominalSizes(t *testing.T) {
	o := defaultOptions()
	scrapes, lines, spans, window := o.nominalSizes("nominal")
	assert.Equal(t, []int{4, 600_000, 300_000}, []int{scrapes, lines, spans})
	assert.Equal(t, time.Minute, window)
	scrapes, lines, _, window = o.nominalSizes("freshness")
	assert.Equal(t, 8, scrapes)
	assert.Equal(t, 1_200_000, lines)
	assert.Equal(t, 2*time.Minute, window)
	o.smoke()
	o.TraceRate = 1234
	scrapes, lines, spans, window = o.nominalSizes("freshness")
	assert.Equal(t, 2, scrapes)
	assert.Equal(t, 4*time.Second, window)
	assert.Equal(t, 40_000, lines)
	assert.Equal(t, 4900, spans, "whole requests of traceBatch spans")
}

func noPlaceholders(t *testing.T, cfg string) {
	t.Helper()
	assert.NotContains(t, cfg, "{{", cfg)
	assert.NotContains(t, cfg, "\t", "YAML indents with spaces")
}

var nominalVars = []string{"{{health}}", "127.0.0.1:1", "{{data}}", "/d", "{{rules}}", "/r.yaml",
	"{{interval}}", "15000ms", "{{timeout}}", "10000ms", "{{query}}", "127.0.0.1:2", "{{otlp}}", "127.0.0.1:3",
	"{{dir}}", "/pods", "{{target}}", "127.0.0.1:4", "{{wal}}", "/wal",
	"{{sinkHTTP}}", "127.0.0.1:5", "{{sinkGRPC}}", "127.0.0.1:6", "{{sink}}", "http://127.0.0.1:7/api/v1/write"}

// freshness's weft keeps everything in its store; nominal's also forwards
// as the shipped profile does (forward connector, export pipelines,
// remote write with its WAL beside the store).
func TestRenderNominalWeft(t *testing.T) {
	local := renderNominalWeft(false, false, nominalVars...)
	noPlaceholders(t, local)
	for _, want := range []string{
		"      receivers: [container_logs]\n      processors: [memory_limiter, trace_context]\n      exporters: [weft_store]\n",
		"      receivers: [otlp]\n      processors: [memory_limiter]\n      exporters: [weft_store]\n",
		"      receivers: [pod_scrape]\n      processors: [memory_limiter]\n      exporters: [weft_store]\n",
		"rule_files: [/r.yaml]", "evaluation_interval: 15000ms", "include: [/pods/*/*/*.log]",
		"extensions: [health_check, weft_store, weft_rules, weft_query]",
	} {
		assert.Contains(t, local, want)
	}
	for _, not := range []string{"forward", "otlp_http", "prometheus_remote_write", "127.0.0.1:5"} {
		assert.NotContains(t, local, not)
	}

	fwd := renderNominalWeft(true, false, nominalVars...)
	noPlaceholders(t, fwd)
	for _, want := range []string{
		"connectors:\n  forward: {}\nexporters:\n  weft_store: {}\n  otlp_http:\n    endpoint: http://127.0.0.1:5\n",
		"  trace_context: {}\n  weft_store: {}\nconnectors:\n",
		"      processors: [memory_limiter, trace_context, weft_store]\n      exporters: [forward]\n",
		"      receivers: [otlp]\n      processors: [memory_limiter, weft_store]\n      exporters: [forward]\n",
		"      receivers: [pod_scrape]\n      processors: [memory_limiter]\n      exporters: [weft_store, prometheus_remote_write]\n",
		"    traces/export:\n      receivers: [forward]\n      exporters: [otlp_grpc]\n",
		"    logs/export:\n      receivers: [forward]\n      exporters: [otlp_http]\n",
		"    endpoint: http://127.0.0.1:7/api/v1/write\n    max_batch_request_parallelism: 1\n    wal:\n      directory: /wal\n",
	} {
		assert.Contains(t, fwd, want)
	}
}

// With native (the shipped profile's path), pod_scrape appends to
// weft_store and, when forwarding, to weft_remote_write; the pipeline and
// the exporters carry no scraped samples.
func TestRenderNominalWeftNative(t *testing.T) {
	local := renderNominalWeft(false, true, nominalVars...)
	noPlaceholders(t, local)
	assert.Contains(t, local, "  pod_scrape:\n    appendables: [weft_store]\n    pdata: false\n    scrape_configs:\n")
	assert.Contains(t, local, "extensions: [health_check, weft_store, weft_rules, weft_query]")
	assert.NotContains(t, local, "weft_remote_write")

	fwd := renderNominalWeft(true, true, nominalVars...)
	noPlaceholders(t, fwd)
	for _, want := range []string{
		"    appendables: [weft_store, weft_remote_write]\n    pdata: false\n",
		"  weft_remote_write:\n    wal:\n      directory: /wal\n    endpoints:\n      - url: http://127.0.0.1:7/api/v1/write\n",
		"extensions: [health_check, weft_store, weft_remote_write, weft_rules, weft_query]",
		"      receivers: [pod_scrape]\n      processors: [memory_limiter]\n      exporters: [weft_store]\n",
		"    logs/export:\n      receivers: [forward]\n      exporters: [otlp_http]\n",
	} {
		assert.Contains(t, fwd, want)
	}
	assert.NotContains(t, fwd, "prometheus_remote_write")
}

// The peer's collector forwards the same loads with the same exporters;
// its Prometheus scrapes its own target, not the collector's.
func TestRenderNominalPeer(t *testing.T) {
	peer := replaceAll(nominalPeerConfig, nominalVars...)
	noPlaceholders(t, peer)
	for _, want := range []string{"  file_log:\n    include: [/pods/*/*/*.log]", "format: containerd",
		"            - targets: [127.0.0.1:4]", "      receivers: [prometheus]\n      processors: [memory_limiter]\n      exporters: [prometheus_remote_write]\n",
		"      receivers: [file_log]\n      processors: [memory_limiter]\n      exporters: [otlp_http]\n", "directory: /wal"} {
		assert.Contains(t, peer, want)
	}
	prom := replaceAll(nominalPromConfig, append([]string{"{{target}}", "127.0.0.1:9"}, nominalVars...)...)
	noPlaceholders(t, prom)
	assert.Contains(t, prom, "      - targets: [127.0.0.1:9]")
	assert.Contains(t, prom, "evaluation_interval: 15000ms")
	assert.Contains(t, prom, "rule_files: [/r.yaml]")
}

// A group's figures are the sums of its processes': this process counted
// twice reads twice its memory and CPU.
func TestGroupSumsProcesses(t *testing.T) {
	self := procReader{pid: os.Getpid(), clkTck: clockTicks()}
	one, err := group{self}.status("VmRSS", "RssAnon")
	require.NoError(t, err)
	cpu1, err := group{self}.cpu()
	require.NoError(t, err)
	two, err := group{self, self}.status("VmRSS", "RssAnon")
	require.NoError(t, err)
	cpu2, err := group{self, self}.cpu()
	require.NoError(t, err)
	assert.InEpsilon(t, 2*one[0], two[0], 0.1)
	assert.InEpsilon(t, 2*one[1], two[1], 0.1)
	assert.GreaterOrEqual(t, cpu2, 2*cpu1, "CPU time only grows")
	_, err = group{self, {pid: 1 << 30, clkTck: 100}}.status("VmRSS")
	assert.Error(t, err, "a process gone is an error, not a smaller sum")

	smp, err := startSampler(group{self, self}, 10*time.Millisecond)
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond) // a few sampler ticks
	_, _, pts := smp.finish()
	require.NotEmpty(t, pts)
	assert.InEpsilon(t, 2*one[0], pts[len(pts)-1].RSSMiB, 0.2)
}

// Markers: a latency per marker found, counted once; ids never marked and
// ids marked twice change nothing; pending is oldest first.
func TestMarkers(t *testing.T) {
	m := newMarkers()
	t0 := time.Unix(1000, 0)
	for i := range int64(5) {
		m.mark(i, t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	m.mark(2, t0.Add(time.Hour)) // marked before: ignored
	assert.Equal(t, []int64{0, 1, 2}, m.pending(3))
	m.found(t0.Add(250*time.Millisecond), 0, 2, 99)
	m.found(t0.Add(time.Hour), 0) // found before: ignored
	assert.Equal(t, []int64{1, 3, 4}, m.pending(10))
	m.mark(0, t0) // found, then marked again: ignored
	f := m.result(signalLogs, 1, 7, 0.5)
	assert.Equal(t, 5, f.Markers)
	assert.Equal(t, 2, f.Found)
	assert.InDeltaSlice(t, []float64{0.25, 0.05}, f.Latency, 1e-9)
	assert.Equal(t, int64(7), f.Polls)
}

// A marker line is a CRI line whose body carries its number as the load's
// lines do, in its own pod directory.
func TestMarkerLog(t *testing.T) {
	dir := t.TempDir()
	ml, err := newMarkerLog(dir)
	require.NoError(t, err)
	at, err := ml.write(41)
	require.NoError(t, err)
	require.NoError(t, ml.f.Close())
	files, err := filepath.Glob(filepath.Join(dir, "bench_"+markerPod+"_*", "app", "0.log"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	ts, rest, ok := strings.Cut(string(b), " ")
	require.True(t, ok)
	parsed, err := time.Parse(time.RFC3339Nano, ts)
	require.NoError(t, err)
	assert.True(t, parsed.Equal(at))
	body, ok := strings.CutPrefix(rest, "stdout F ")
	require.True(t, ok, rest)
	n, ok := logSeq(body)
	assert.True(t, ok)
	assert.Equal(t, int64(41), n)
	assert.True(t, strings.HasSuffix(body, "\n"))
}

// The pollers read weft_query's three answers: the marker pod's lines, the
// traces found among the pending IDs, the marker gauge's value.
func TestFreshProbePolls(t *testing.T) {
	o := defaultOptions()
	o.FreshScrapes = 3
	h := &harness{o: o}
	var probe *freshProbe
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/logs", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "bench", r.FormValue("namespace"))
		assert.Equal(t, markerPod, r.FormValue("pod"))
		_, _ = w.Write([]byte(`{"status":"success","data":[{"body":"seq=2 freshness marker"},{"body":"seq=0 freshness marker"},{"body":"other"}]}`))
	})
	mux.HandleFunc("GET /api/traces", func(w http.ResponseWriter, r *http.Request) {
		ids := r.URL.Query()["traceID"]
		assert.Len(t, ids, 2)
		// Only the second is known; written without leading zeros.
		found := strings.TrimLeft(markerTraceID(probe.prefix, 1).String(), "0")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": []map[string]string{{"traceID": found}}})
	})
	mux.HandleFunc("GET /api/v1/query", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, markerMetric, r.FormValue("query"))
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"2"]}]}}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	probe = newFreshProbe(h, strings.TrimPrefix(srv.URL, "http://"))
	now := time.Now()
	for i := range int64(3) {
		probe.logs.mark(i, now)
	}
	probe.spans.mark(0, now)
	probe.spans.mark(1, now)
	tgt := &target{}
	for range 4 { // four scrapes served: the window's three are markers
		tgt.times = append(tgt.times, now)
		tgt.served.Add(1)
	}
	ctx := t.Context()
	probe.pollLogs(ctx)
	probe.pollSpans(ctx)
	probe.pollSamples(ctx, tgt)
	assert.Equal(t, []int64{1}, probe.logs.pending(10))
	assert.Equal(t, []int64{0}, probe.spans.pending(10))
	assert.Equal(t, []int64{3}, probe.smpls.pending(10), "the gauge says 2: scrapes 1 and 2 are queryable")
	assert.Equal(t, 3, probe.smpls.result(signalSamples, 16, 0, 0).Markers, "the fourth scrape is past the window")
	assert.False(t, probe.settled())
	assert.Equal(t, int64(1), probe.polls[signalSpans])
	assert.Empty(t, probe.errs)
}

// The freshness table pools every run's markers per signal and fails a
// goal on a late p99 or on a marker never found.
func TestFreshnessTable(t *testing.T) {
	lat := func(v ...float64) []float64 { return v }
	ss := []sample{
		{WallSec: 10, CPUSec: 2, Freshness: []freshness{
			{Signal: signalLogs, Markers: 3, Found: 3, Goal: 1, Latency: lat(0.02, 0.03, 0.04), Polls: 100, PollSec: 0.2, PollCPU: 0.002},
			{Signal: signalSamples, Markers: 2, Found: 2, Goal: 16, Latency: lat(0.5, 1)},
			{Signal: signalSpans, Markers: 2, Found: 1, Goal: 1, Latency: lat(0.01)},
		}},
		{WallSec: 10, CPUSec: 2, Freshness: []freshness{
			{Signal: signalLogs, Markers: 1, Found: 1, Goal: 1, Latency: lat(1.5), Polls: 100, PollSec: 0.2, PollCPU: 0.001},
		}},
	}
	md := freshnessTable(ss)
	rows := strings.Split(strings.TrimSpace(md), "\n")
	require.Len(t, rows, 5, md)
	for _, r := range rows {
		assert.Equal(t, 11, strings.Count(r, "|"), "every row has the header's 10 columns: %s", r)
	}
	// 100 polls at 2 ms and 100 at 1 ms of weft's 4 s: 7.5 %.
	assert.Contains(t, md, "| logs | 4 / 4 | 30 ms | 1500 ms | 1500 ms | 1000 ms | **fail** | 200, 2.0 ms | 1.50 ms | 7.5 % |")
	assert.Contains(t, md, "| samples | 2 / 2 | 500 ms | 1000 ms | 1000 ms | 16.0 s | pass |")
	assert.Contains(t, md, "| spans | 1 / 2 | 10 ms | 10 ms | 10 ms | 1000 ms | **fail** |")
}

// A workload without a peer is reported as weft alone: no peer row, no
// ratio, no bar in the ratios chart; nominal's goals are judged.
func TestMarkdownWeftAloneAndGoals(t *testing.T) {
	rep := &report{Options: defaultOptions()}
	rep.Samples = append(rep.Samples,
		sample{Workload: "freshness", Side: sideWeft, Order: 1, Unit: "second", Sent: 3, Received: 3, Verified: true, CPUPerItem: 0.3, PeakRSSMiB: 200, WallSec: 10,
			Freshness: []freshness{{Signal: signalLogs, Markers: 3, Found: 3, Goal: 1, Latency: []float64{0.1, 0.2, 0.3}}},
			Points:    []point{{T: 0, RSSMiB: 100}, {T: 1, RSSMiB: 200}}},
		sample{Workload: "nominal", Side: sideWeft, Order: 1, Unit: "window of load", Sent: 9, Received: 9, Verified: true, CPUPerItem: 4, PeakRSSMiB: 300,
			Points: []point{{T: 0, RSSMiB: 100}, {T: 1, RSSMiB: 300}}},
		sample{Workload: "nominal", Side: sidePeer, Order: 2, Unit: "window of load", Sent: 9, Received: 9, Verified: true, CPUPerItem: 10, PeakRSSMiB: 500,
			Points: []point{{T: 0, RSSMiB: 100}, {T: 1, RSSMiB: 500}}},
	)
	md := markdown(rep)
	assert.Contains(t, md, "### freshness:")
	assert.Contains(t, md, "Peer: none, weft alone")
	assert.Contains(t, md, "| logs | 3 / 3 | 200 ms | 300 ms |")
	assert.Contains(t, md, "| weft | 1 | 1/1 (3 = 3) | 30.00 %")
	assert.Equal(t, 1, strings.Count(md, "| **ratio weft / peer** |"), "nominal only")
	assert.Contains(t, md, "| otelcol contrib + Prometheus 2.42 | 1 | 1/1 (9 = 9) | 10.00 s (10.00 s–10.00 s) | 500.0 (500.0–500.0) |")
	assert.Contains(t, md, "Goal (issue #21): CPU ≤ 0.5× (0.40×: pass), peak RSS ≤ 0.5× (0.60×: **fail**).")
	assert.NotContains(t, md, "NOT VERIFIED")

	dir := t.TempDir()
	files, err := writeCharts(dir, rep)
	require.NoError(t, err)
	assert.Contains(t, files, "ratios.png")
	assert.Contains(t, files, "rss-freshness.png")
}

func TestOptionsValidateFreshness(t *testing.T) {
	o := defaultOptions()
	o.Workloads = []string{"freshness", "nominal"}
	require.NoError(t, o.validate())
	o.FreshPoll = time.Second // slower than the markers
	assert.ErrorContains(t, o.validate(), "-freshness-poll")
	o = defaultOptions()
	o.Workloads = []string{"nominal"}
	o.ScrapeSeries = 300 // 200 rules need 401 series
	assert.ErrorContains(t, o.validate(), "-scrape-series")
	o.Workloads = []string{"scrape"}
	assert.NoError(t, o.validate(), "the bound is the nominal load's only")
}

// The poll cost is weft's CPU per request of each poller's shape, the rest
// rate taken off: a server that burns CPU per request shows it.
func TestPollCost(t *testing.T) {
	burn := func() {
		deadline := time.Now().Add(2 * time.Millisecond)
		for x := 0.0; time.Now().Before(deadline); x++ {
			_ = x * x
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) {
		burn() // 2 ms of CPU per request, in this process
		_, _ = w.Write([]byte(`{}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	probe := newFreshProbe(&harness{o: defaultOptions()}, strings.TrimPrefix(srv.URL, "http://"))
	self := group{{pid: os.Getpid(), clkTck: clockTicks()}}
	cost, err := probe.pollCost(t.Context(), self)
	require.NoError(t, err)
	for _, sig := range []string{signalLogs, signalSpans, signalSamples} {
		// This process is the client too: at least the 2 ms burnt, and
		// not many times more.
		assert.GreaterOrEqual(t, cost[sig], 0.0015, sig)
		assert.Less(t, cost[sig], 0.02, sig)
	}
	assert.Equal(t, int64(3*pollCostRequests), probe.polls["cost"])
}

// -weft-index-bytes sets both of weft_store's budgets in its extension
// (not in the exporter of the same name); 0 leaves the shipped defaults.
func TestWithIndexBytes(t *testing.T) {
	cfg := renderNominalWeft(true, true, nominalVars...)
	assert.Equal(t, cfg, withIndexBytes(cfg, 0))
	set := withIndexBytes(cfg, 65536)
	assert.Contains(t, set, "extensions:\n  health_check:\n    endpoint: 127.0.0.1:1\n  weft_store:\n    traces_max_bytes: 65536\n    logs_max_bytes: 65536\n    directory: /d\n")
	assert.Equal(t, 1, strings.Count(set, "traces_max_bytes"))
	assert.Contains(t, set, "exporters:\n  weft_store: {}\n")
	assert.Contains(t, indexBytesNote(options{WeftIndexBytes: 65536}), "65536 B each")
	assert.Empty(t, indexBytesNote(options{}))
}
