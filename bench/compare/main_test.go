package main

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       uint64
		err        bool
	}{
		{"plain", "4242 (weft) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 100 0 0", 325, false},
		{"name with spaces and parens", "7 (my (odd) proc) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 0 0", 7, false},
		{"no name end", "7 weft R 1", 0, true},
		{"short", "7 (weft) R 1 2", 0, true},
		{"not a number", "7 (weft) R 1 7 7 0 -1 0 0 0 0 0 x 4 0", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.stat))
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseStatusKiB(t *testing.T) {
	status := "Name:\tweft\nVmHWM:\t   70000 kB\nVmRSS:\t   65536 kB\nRssAnon:\t  20480 kB\n"
	for field, want := range map[string]int{"VmHWM": 70000, "VmRSS": 65536, "RssAnon": 20480} {
		got, err := parseStatusKiB([]byte(status), field)
		require.NoError(t, err)
		assert.Equal(t, want, got, field)
	}
	_, err := parseStatusKiB([]byte(status), "VmSwap")
	assert.Error(t, err)
}

// The sampler reads this very process: CPU grows with work done, RSS is
// positive, the window's wall time is what passed. The loop runs until the
// kernel has counted 300 ms of CPU for the process, not for 300 ms of wall
// time: on a loaded machine the latter got as little as 50 ms.
func TestSamplerReadsOwnProcess(t *testing.T) {
	start := time.Now()
	smp, err := startSampler(group{{pid: os.Getpid(), clkTck: clockTicks()}}, 10*time.Millisecond)
	require.NoError(t, err)
	used := func() time.Duration {
		var ru syscall.Rusage
		require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	from := used()
	x := 0.0
	for used()-from < 300*time.Millisecond {
		for range 10000 {
			x += math.Sqrt(x + 1) // burn CPU
		}
	}
	cpu, wall, pts := smp.finish()
	elapsed := time.Since(start).Seconds()
	assert.Greater(t, x, 0.0)
	assert.GreaterOrEqual(t, cpu, 0.28, "300 ms of CPU burnt, read in clock ticks")
	assert.GreaterOrEqual(t, wall, cpu/float64(runtime.NumCPU()), "no more CPU than the machine has in the window")
	assert.LessOrEqual(t, wall, elapsed)
	require.Greater(t, len(pts), 5)
	for _, p := range pts {
		assert.Greater(t, p.RSSMiB, 1.0)
	}
	assert.Equal(t, cpu, pts[len(pts)-1].CPU)
}

func TestTracker(t *testing.T) {
	tr := newTracker(100)
	for i := range int64(100) {
		tr.mark(i, true)
	}
	assert.True(t, tr.complete(100))
	tr.mark(5, true)
	assert.False(t, tr.complete(100), "a duplicate fails the check")
	assert.Equal(t, int64(1), tr.dups.Load())

	tr = newTracker(10)
	tr.mark(10, true)
	tr.mark(3, false)
	assert.Equal(t, int64(2), tr.bad.Load())
	assert.False(t, tr.complete(0))
}

func TestLogSeq(t *testing.T) {
	for body, want := range map[string]int64{"seq=0 x": 0, "seq=123456 level=info": 123456, "seq=42": 42} {
		got, ok := logSeq(body)
		assert.True(t, ok, body)
		assert.Equal(t, want, got, body)
	}
	for _, body := range []string{"", "seq=", "seq=x1", "level=info seq=1", "2026-11-25T00:00:00Z stdout F seq=1"} {
		_, ok := logSeq(body)
		assert.False(t, ok, body)
	}
}

func TestAppendLineIsACRILineOfTheSetLength(t *testing.T) {
	b := appendLine(nil, "2026-11-25T22:00:00.123456789Z", 1234567, 200)
	require.Len(t, b, 200)
	assert.Equal(t, byte('\n'), b[199])
	ts, rest, _ := strings.Cut(string(b[:199]), " ")
	assert.Equal(t, "2026-11-25T22:00:00.123456789Z", ts)
	stream, rest, _ := strings.Cut(rest, " ")
	tag, msg, _ := strings.Cut(rest, " ")
	assert.Equal(t, "stdout", stream)
	assert.Equal(t, "F", tag)
	n, ok := logSeq(msg)
	assert.True(t, ok)
	assert.Equal(t, int64(1234567), n)
}

// Rotation renames 0.log away, starts a new one, and keeps only the newest
// rotated files; every line written is in exactly one remaining or deleted
// file, numbered in order.
func TestLogTreeRotatesLikeTheKubelet(t *testing.T) {
	dir := t.TempDir()
	tree, err := newLogTree(dir, 2, 100, 1000, 2)
	require.NoError(t, err)
	defer tree.close()
	for range 30 {
		require.NoError(t, tree.write(7))
	}
	// 210 lines of 100 B over 2 files: 10,500 B each, rotated every 1000 B
	// (each write adds 3 or 4 lines): at least 9 rotations per file.
	assert.GreaterOrEqual(t, tree.rotation, 18)
	logs, err := filepath.Glob(filepath.Join(dir, "*", "app", "0.log"))
	require.NoError(t, err)
	assert.Len(t, logs, 2)
	rotated, err := filepath.Glob(filepath.Join(dir, "*", "app", "0.log.*"))
	require.NoError(t, err)
	assert.Len(t, rotated, 4, "two kept per container")
	for _, l := range logs {
		assert.Regexp(t, `/bench_load-\d+-7d9f8b6c5-x2k4p_[0-9a-f-]{36}/app/0\.log$`, l, "the layout both readers take metadata from")
		b, err := os.ReadFile(l)
		require.NoError(t, err)
		assert.Less(t, len(b), 1000+4*100)
	}
	assert.Equal(t, int64(210), tree.seq)
}

func TestEnvoyPayloadHasExactlyNSeries(t *testing.T) {
	for _, n := range []int{100, 5000, 50_000} {
		var b bytes.Buffer
		envoyPayload(&b, n, 3)
		series, seen := 0, map[string]bool{}
		for line := range strings.SplitSeq(strings.TrimSuffix(b.String(), "\n"), "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			key := line[:strings.LastIndexByte(line, ' ')]
			require.False(t, seen[key], "series %s twice", key)
			seen[key] = true
			series++
		}
		assert.Equal(t, n, series)
	}
	var b0, b1 bytes.Buffer
	envoyPayload(&b0, 1000, 0)
	envoyPayload(&b1, 1000, 1)
	assert.NotEqual(t, b0.String(), b1.String(), "values move between scrapes")
}

func TestRulePayloadAndRuleFile(t *testing.T) {
	var b bytes.Buffer
	rulePayload(&b, 1000, 200, 2)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 1001)
	assert.Equal(t, `http_requests_total{shard="3",pod="pod-0",status="500"} 6`, lines[4])
	f := ruleFile(200)
	assert.Equal(t, 200, strings.Count(f, "- alert: A"))
	assert.Equal(t, 10, strings.Count(f, "- name: g"))
	assert.Contains(t, f, `expr: rate(http_requests_total{shard="199",status=~"5.."}[5m]) > 0.2`)
}

// The OTLP sink counts over both transports; a record without a number is
// counted as invalid.
func TestOTLPSinkGRPCAndHTTP(t *testing.T) {
	sink, err := startOTLPSink(10, 1)
	require.NoError(t, err)
	defer sink.close()
	logs := func(from, to int, extra string) plogotlp.ExportRequest {
		ld := plog.NewLogs()
		lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		for i := from; i < to; i++ {
			lrs.AppendEmpty().Body().SetStr("seq=" + string(rune('0'+i)) + " hello")
		}
		if extra != "" {
			lrs.AppendEmpty().Body().SetStr(extra)
		}
		return plogotlp.NewExportRequestFromLogs(ld)
	}
	conn, err := grpc.NewClient(sink.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	_, err = plogotlp.NewGRPCClient(conn).Export(context.Background(), logs(0, 5, ""))
	require.NoError(t, err)

	body, err := logs(5, 10, "no number").MarshalProto()
	require.NoError(t, err)
	resp, err := http.Post("http://"+sink.HTTPAddr+"/v1/logs", "application/x-protobuf", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	assert.Equal(t, int64(10), sink.logs.received.Load())
	assert.Equal(t, int64(1), sink.logs.bad.Load())
	assert.False(t, sink.logs.complete(10), "the record without a number spoils it")
	assert.Equal(t, int64(2), sink.requests.Load())
}

func TestRemoteWriteSinkCountsPerSeries(t *testing.T) {
	sink, err := startRWSink()
	require.NoError(t, err)
	defer sink.close()
	post := func(req *prompb.WriteRequest) int {
		raw, err := req.Marshal()
		require.NoError(t, err)
		resp, err := http.Post(sink.URL(), "application/x-protobuf", bytes.NewReader(snappy.Encode(nil, raw)))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	series := func(name, v string, samples ...float64) prompb.TimeSeries {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: name}, {Name: "k", Value: v}}}
		for i, s := range samples {
			ts.Samples = append(ts.Samples, prompb.Sample{Value: s, Timestamp: int64(i)})
		}
		return ts
	}
	for scrape := range 2 {
		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			series("a_total", "1", float64(scrape)), series("a_total", "2", float64(scrape)),
			series("up", "", 1), series("scrape_duration_seconds", "", 0.1),
		}}
		require.Equal(t, http.StatusNoContent, post(req))
	}
	ok, detail := sink.check(2, 2)
	assert.True(t, ok, detail)
	assert.Equal(t, int64(4), sink.samples.Load())
	assert.Equal(t, int64(4), sink.synth.Load())

	// A stale marker is not a sample; a third sample of one series breaks
	// "exactly once per scrape".
	stale := math.Float64frombits(staleNaN)
	require.Equal(t, http.StatusNoContent, post(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("a_total", "1", stale, 7)}}))
	assert.Equal(t, int64(1), sink.stale.Load())
	ok, detail = sink.check(2, 2)
	assert.False(t, ok)
	assert.Contains(t, detail, "1 with a sample count other than 2")

	resp, err := http.Post(sink.URL(), "application/x-protobuf", strings.NewReader("not snappy"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestReplaceRegion(t *testing.T) {
	doc := "# Results\n\nother section\n"
	once := replaceRegion(doc, "A\n")
	assert.Equal(t, doc+"\n"+regionBegin+"\nA\n"+regionEnd+"\n", once)
	twice := replaceRegion(once+"tail\n", "B\n")
	assert.Equal(t, doc+"\n"+regionBegin+"\nB\n"+regionEnd+"\ntail\n", twice, "the section is replaced, what follows kept")
}

func TestReplaceAllNested(t *testing.T) {
	assert.Equal(t, "r: a=/x\n", replaceAll("r: {{inner}}\n", "{{inner}}", "a={{dir}}", "{{dir}}", "/x"))
}

func TestSummarize(t *testing.T) {
	assert.Equal(t, stats{Median: 2, Min: 1, Max: 9}, summarize([]float64{9, 1, 2}))
	assert.Equal(t, stats{Median: 2.5, Min: 1, Max: 9}, summarize([]float64{9, 1, 2, 3}))
	assert.Equal(t, stats{}, summarize(nil))
}

// The report names each workload, both sides, the ratio of the medians and
// any run whose sent and received differ; the charts are PNG files.
func TestMarkdownAndCharts(t *testing.T) {
	rep := &report{Options: defaultOptions(), Machine: machine{NProc: "2", CPU: "Test CPU", Kernel: "Linux 6.1"}}
	add := func(side string, order int, cpu, rss float64, verified bool) {
		rep.Samples = append(rep.Samples, sample{Workload: "traces", Side: side, Order: order, Round: (order + 1) / 2, Unit: "span",
			Sent: 100, Received: map[bool]int64{true: 100, false: 99}[verified], Verified: verified, Items: 100,
			CPUPerItem: cpu, PeakRSSMiB: rss, Detail: "d", Points: []point{{T: 0, CPU: 0, RSSMiB: rss / 2, AnonMiB: rss / 4}, {T: 1, CPU: cpu * 100, RSSMiB: rss, AnonMiB: rss / 3}}})
	}
	add(sideWeft, 1, 10e-6, 60, true)
	add(sidePeer, 2, 8e-6, 40, true)
	add(sidePeer, 3, 12e-6, 50, false)
	add(sideWeft, 4, 14e-6, 62, true)
	md := markdown(rep)
	assert.Contains(t, md, "### traces:")
	assert.Contains(t, md, "| weft | 2 | 2/2 (100 = 100) | 12.00 µs (10.00 µs–14.00 µs) | 61.0 (60.0–62.0) |")
	assert.Contains(t, md, "| otelcol minimal | 2 | 1/2 (100 = 100, 100 = 99) | 10.00 µs (8.00 µs–12.00 µs) | 45.0 (40.0–50.0) |")
	assert.Contains(t, md, "| **ratio weft / peer** | | | **1.20×** | **1.36×** |")
	assert.Contains(t, md, "NOT VERIFIED: peer round 2")
	assert.Contains(t, md, "2 CPU(s), Test CPU, Linux 6.1")

	out := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(out, "RESULTS.md"), []byte("# Benchmark results\n"), 0o644))
	require.NoError(t, writeOutputs(out, rep))
	doc, err := os.ReadFile(filepath.Join(out, "RESULTS.md"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(doc), "# Benchmark results\n"))
	assert.Contains(t, string(doc), "[rss-traces](compare/results/rss-traces.png)")
	for _, f := range []string{"ratios.png", "cpu-traces.png", "rss-traces.png"} {
		b, err := os.ReadFile(filepath.Join(out, "compare", "results", f))
		require.NoError(t, err)
		assert.True(t, bytes.HasPrefix(b, []byte("\x89PNG")), f)
	}
	_, err = os.Stat(filepath.Join(out, "compare", "results", "samples.json"))
	assert.NoError(t, err)

	// -render reads the samples back and writes the same section.
	again := t.TempDir()
	require.NoError(t, rerender(filepath.Join(out, "compare", "results", "samples.json"), again))
	doc2, err := os.ReadFile(filepath.Join(again, "RESULTS.md"))
	require.NoError(t, err)
	assert.Equal(t, strings.TrimPrefix(string(doc), "# Benchmark results\n"), string(doc2))
}

func TestOptionsValidate(t *testing.T) {
	o := defaultOptions()
	require.NoError(t, o.validate())
	o.smoke()
	require.NoError(t, o.validate())
	bad := defaultOptions()
	bad.Workloads = []string{"logs-10k", "nope"}
	assert.ErrorContains(t, bad.validate(), `unknown workload "nope"`)
	bad = defaultOptions()
	bad.TraceSpans = 150
	assert.Error(t, bad.validate())
}

// Samples per OTLP metric as Prometheus counts them: a histogram point of
// 19 bounds is 20 buckets + sum + count; stale points count nothing.
func TestMetricSamples(t *testing.T) {
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	g := ms.AppendEmpty()
	g.SetName("envoy_cluster_membership_healthy")
	g.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(1)
	g.Gauge().DataPoints().AppendEmpty().SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	h := ms.AppendEmpty()
	h.SetName("istio_request_duration_milliseconds")
	dp := h.SetEmptyHistogram().DataPoints().AppendEmpty()
	dp.ExplicitBounds().FromRaw(make([]float64, 19))
	dp.BucketCounts().FromRaw(make([]uint64, 20))
	sm := ms.AppendEmpty()
	sm.SetName("up")
	sm.SetEmptySum().DataPoints().AppendEmpty().SetDoubleValue(1)
	assert.Equal(t, int64(1), metricSamples(g))
	assert.Equal(t, int64(22), metricSamples(h))
	assert.Equal(t, int64(1), metricSamples(sm))

	sink, err := startOTLPSink(1, 1)
	require.NoError(t, err)
	defer sink.close()
	conn, err := grpc.NewClient(sink.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	_, err = pmetricotlp.NewGRPCClient(conn).Export(context.Background(), pmetricotlp.NewExportRequestFromMetrics(md))
	require.NoError(t, err)
	assert.Equal(t, int64(23), sink.points.Load())
	assert.Equal(t, int64(1), sink.synthPoints.Load(), "up is counted apart")
}

// The contrib peer is built with the tags the options name, and the
// reports say which: the smoke leaves out the service discoveries no
// workload configures; reports written before the field existed read as
// plain "contrib".
func TestContribTags(t *testing.T) {
	o := defaultOptions()
	assert.Equal(t, "contrib", o.contribTags())
	assert.Contains(t, peerNominal(&harness{o: o}), "(bench/peer -tags contrib)")
	o.smoke()
	assert.Equal(t, "contrib,remove_all_sd", o.contribTags())
	assert.Contains(t, peerNominal(&harness{o: o}), "(bench/peer -tags contrib,remove_all_sd)")
	w, ok := findWorkload("scrape")
	require.True(t, ok)
	assert.Contains(t, w.peer(&harness{o: o}), "-tags contrib,remove_all_sd")
	assert.Equal(t, "contrib", options{}.contribTags())
}

// Every build the harness makes has the release build's flags: weft and
// the peers measured as the image ships weft.
func TestGoBuildFlags(t *testing.T) {
	cmd := goBuild(t.Context(), "d", "out", "-tags", "contrib", ".")
	assert.Equal(t, []string{"go", "build", "-trimpath", "-o", "out", "-tags", "contrib", "."}, cmd.Args)
	assert.Equal(t, "d", cmd.Dir)
	assert.Equal(t, "CGO_ENABLED=0", cmd.Env[len(cmd.Env)-1])
}
