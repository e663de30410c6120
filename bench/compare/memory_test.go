package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parsedScrape is one scrape of the store-memory payload as Prometheus's
// OpenMetrics parser reads it.
type parsedScrape struct {
	values    map[string]float64           // series (labels as a string) → value
	exemplars map[string]exemplar.Exemplar // series → its exemplar, if it has one
	types     map[string]string            // family → type
}

func parseOpenMetrics(t *testing.T, b []byte) parsedScrape {
	t.Helper()
	p, err := textparse.New(b, openMetricsType, labels.NewSymbolTable(), textparse.ParserOptions{})
	require.NoError(t, err)
	out := parsedScrape{values: map[string]float64{}, exemplars: map[string]exemplar.Exemplar{}, types: map[string]string{}}
	for {
		et, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		switch et {
		case textparse.EntryType:
			name, typ := p.Type()
			out.types[string(name)] = string(typ)
		case textparse.EntrySeries:
			_, _, v := p.Series()
			var l labels.Labels
			p.Labels(&l)
			key := l.String()
			_, dup := out.values[key]
			require.False(t, dup, "series %s twice", key)
			out.values[key] = v
			var e exemplar.Exemplar
			if p.Exemplar(&e) {
				out.exemplars[key] = e
			}
		}
	}
}

// The payload is valid OpenMetrics with exactly n series of counters and
// histograms; every _total and _bucket series carries an exemplar in
// exactly one of two consecutive scrapes, each with its own trace ID; the
// marker counts the scrapes and has an exemplar every time.
func TestMemoryPayload(t *testing.T) {
	for _, n := range []int{memoryMinSeries, 1_000, 10_001} {
		t.Run(memorySizeLabel(n), func(t *testing.T) {
			b0 := memoryPayload(nil, n, 0)
			b1 := memoryPayload(b0[len(b0):], n, 1) // appends after b0, leaves it alone
			assert.True(t, strings.HasSuffix(string(b0), "\n# EOF\n"))
			s0, s1 := parseOpenMetrics(t, b0), parseOpenMetrics(t, b1)
			require.Len(t, s0.values, n)
			require.Len(t, s1.values, n)
			assert.Equal(t, map[string]string{"envoy_cluster_upstream_rq": "counter",
				"istio_request_duration_milliseconds": "histogram", "bench_store_memory_scrapes": "counter"}, s0.types)

			marker := `{__name__="` + memoryMarker + `"}`
			assert.Equal(t, 1.0, s0.values[marker])
			assert.Equal(t, 2.0, s1.values[marker])
			assert.Contains(t, s0.exemplars, marker)
			assert.Contains(t, s1.exemplars, marker)

			carriers, hists, traces := 0, 0, map[string]bool{}
			for key, v0 := range s0.values {
				v1, ok := s1.values[key]
				require.True(t, ok, "%s in both scrapes", key)
				assert.GreaterOrEqual(t, v1, v0, key)
				_, e0 := s0.exemplars[key]
				_, e1 := s1.exemplars[key]
				switch {
				case key == marker:
				case strings.Contains(key, `"envoy_cluster_upstream_rq_total"`), strings.Contains(key, `"istio_request_duration_milliseconds_bucket"`):
					carriers++
					assert.True(t, e0 != e1, "%s: an exemplar in exactly one of two scrapes", key)
				default:
					assert.False(t, e0 || e1, "%s: no exemplar on _sum and _count", key)
				}
				if strings.Contains(key, `le="+Inf"`) {
					hists++
				}
				for _, e := range []exemplar.Exemplar{s0.exemplars[key], s1.exemplars[key]} {
					if e.Labels.IsEmpty() {
						continue
					}
					id := e.Labels.Get("trace_id")
					assert.Len(t, id, 32, key)
					assert.Len(t, e.Labels.Get("span_id"), 16, key)
					assert.False(t, traces[id], "trace ID %s twice", id)
					traces[id] = true
					assert.False(t, e.HasTs, "the side stamps the exemplar with the scrape's time")
				}
			}
			assert.Equal(t, n-1-2*hists, carriers, "every series but the marker, _sum and _count carries exemplars")
			assert.Equal(t, (n-1)/4/memoryHistSeries, hists)
			assert.Positive(t, hists)
			assert.Len(t, traces, carriers+2, "one exemplar per carrier over two scrapes, the marker's two")
		})
	}
}

// The target serves the payload as OpenMetrics and numbers its scrapes.
func TestMemoryTarget(t *testing.T) {
	tgt, err := startMemoryTarget(memoryMinSeries)
	require.NoError(t, err)
	defer tgt.close()
	for k := range 2 {
		resp, err := http.Get("http://" + tgt.Addr + "/metrics")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, openMetricsType, resp.Header.Get("Content-Type"))
		assert.Equal(t, string(memoryPayload(nil, memoryMinSeries, k)), string(body))
	}
	// The handler counts a scrape once its body is written, which the
	// client can have read in full a moment before.
	assert.Eventually(t, func() bool { return tgt.served.Load() == 2 }, 5*time.Second, time.Millisecond)
	require.NoError(t, tgt.waitFirst(context.Background(), &child{done: make(chan struct{})}, time.Second))
}

func TestMemorySlope(t *testing.T) {
	a := memorySize{Series: 10_000, RSSMiB: 100, AnonMiB: 40}
	b := memorySize{Series: 100_000, RSSMiB: 100 + 90_000*1536.0/(1<<20), AnonMiB: 40 + 90_000*1024.0/(1<<20)}
	rss, anon := memorySlope(a, b)
	assert.InDelta(t, 1536, rss, 1e-6)
	assert.InDelta(t, 1024, anon, 1e-6)
	rss, anon = memorySlope(a, a)
	assert.Zero(t, rss)
	assert.Zero(t, anon)
	// Less RSS at the larger size (a GC between the readings) is a
	// negative slope, reported as measured.
	rss, _ = memorySlope(b, memorySize{Series: 190_000, RSSMiB: b.RSSMiB - 1})
	assert.Less(t, rss, 0.0)
}

func TestMemorySizeVerified(t *testing.T) {
	ok := memorySize{Series: 1000, Stored: 1000, Total: 1000 + memorySelfSeries, Exemplars: 4, AllExemplars: 1960}
	assert.True(t, ok.verified())
	full := memorySize{Series: 300_000, Stored: 300_000, Total: 300_000 + memorySelfSeries, Exemplars: 1, AllExemplars: memoryExemplars}
	assert.True(t, full.verified(), "a full exemplar buffer has overwritten the marker's older exemplars")
	for name, m := range map[string]memorySize{
		"series missing":       {Series: 1000, Stored: 999, Total: 999 + memorySelfSeries, Exemplars: 4, AllExemplars: 1960},
		"extra series":         {Series: 1000, Stored: 1000, Total: 1001 + memorySelfSeries, Exemplars: 4, AllExemplars: 1960},
		"marker's lost":        {Series: 1000, Stored: 1000, Total: 1000 + memorySelfSeries, AllExemplars: 1960},
		"only a few exemplars": {Series: 1000, Stored: 1000, Total: 1000 + memorySelfSeries, Exemplars: 4, AllExemplars: 300},
		"a check failed":       {Series: 1000, Stored: 1000, Total: 1000 + memorySelfSeries, Exemplars: 4, AllExemplars: 1960, Error: "timeout"},
		"nothing answered":     {Series: 1000},
	} {
		assert.False(t, m.verified(), name)
	}
}

// Split over several targets, every target adds its own scrape series
// and its own marker.
func TestMemorySizeVerifiedTargets(t *testing.T) {
	m := memorySize{Series: 10_000, Targets: 50, Stored: 10_000, Total: 10_000 + 50*memorySelfSeries, Exemplars: 50, AllExemplars: 19_000}
	assert.True(t, m.verified())
	m.Exemplars = 49
	assert.False(t, m.verified(), "a target's marker without its exemplar")
	m.Exemplars, m.Total = 50, 10_000+memorySelfSeries
	assert.False(t, m.verified(), "scrape series of one target only")
}

func TestSplitSeries(t *testing.T) {
	assert.Equal(t, []int{100_000}, splitSeries(100_000, 1))
	assert.Equal(t, []int{34, 33, 33}, splitSeries(100, 3))
	parts := splitSeries(100_000, 7)
	sum := 0
	for _, p := range parts {
		sum += p
		assert.InDelta(t, 100_000/7, p, 1)
	}
	assert.Equal(t, 100_000, sum)
}

func TestMemorySizeLabel(t *testing.T) {
	for n, want := range map[int]string{10_000: "10k", 100_000: "100k", 1_500: "1.5k", 750: "750", 10_001: "10001"} {
		assert.Equal(t, want, memorySizeLabel(n))
	}
}

// The report's store-memory section: RSS at both sizes, the slopes
// (median, min–max), their ratio, and the goal against weft's median
// VmRSS slope.
func TestStoreMemoryReport(t *testing.T) {
	mib := func(bytesPerSeries float64) float64 { return 90_000 * bytesPerSeries / (1 << 20) }
	run := func(side string, order int, base, slope, anonSlope float64) sample {
		small := memorySize{Series: 10_000, Stored: 10_000, Total: 10_005, Exemplars: 4, AllExemplars: 19_550, RSSMiB: base, AnonMiB: base / 2, PeakMiB: base}
		large := memorySize{Series: 100_000, Stored: 100_000, Total: 100_005, Exemplars: 3, AllExemplars: memoryExemplars,
			RSSMiB: base + mib(slope), AnonMiB: base/2 + mib(anonSlope), PeakMiB: base + mib(slope) + 10}
		return sample{Workload: "store-memory", Side: side, Order: order, Round: (order + 1) / 2, Unit: "sample",
			Sent: 110_000, Received: 110_000, Verified: true, CPUPerItem: 2e-6, Memory: []memorySize{small, large}, Detail: "d",
			PeakRSSMiB: large.PeakMiB, Points: []point{{T: 0, RSSMiB: base}, {T: 1, RSSMiB: large.RSSMiB}}}
	}
	o := defaultOptions()
	o.Rounds = 2
	rep := &report{Options: o, Machine: machine{NProc: "2"}, Samples: []sample{
		run(sideWeft, 1, 100, 1500, 1200), run(sidePeer, 2, 150, 4000, 3500),
		run(sidePeer, 3, 150, 5000, 3500), run(sideWeft, 4, 100, 1700, 1400),
	}}
	md := markdown(rep)
	assert.Contains(t, md, "### store-memory:")
	assert.Contains(t, md, "| side | runs | verified: series stored = served | VmRSS at 10k MiB | VmRSS at 100k MiB | **slope VmRSS, B/series**, median (min–max) |")
	assert.Contains(t, md, "| weft | 2 | 2/2 (10000 + 100000 series) | 100.0 | 237.3 | **1600** (1500–1700) | 50.0 | 161.6 | 1300 (1200–1400) | 2.00 µs |")
	assert.Contains(t, md, "| Prometheus 2.42 | 2 | 2/2 (10000 + 100000 series) | 150.0 | 536.2 | **4500** (4000–5000) |")
	assert.Contains(t, md, "| **ratio weft / peer** | | | 0.67× | 0.44× | **0.36×** | 0.67× | 0.43× | 0.37× | 1.00× | 0.45× |")
	assert.Contains(t, md, "weft slope ≤ 2 KiB per series (VmRSS, median of the runs): 1600 B = 1.56 KiB per series: met (RssAnon slope 1300 B)")
	assert.Contains(t, md, "--enable-feature=exemplar-storage")
	assert.Equal(t, 1, strings.Count(md, "| **ratio weft / peer** |"), "one ratio row, as every compared workload")
	assert.NotContains(t, md, "NOT VERIFIED")

	// Split over targets: the table and the text say so.
	for i := range rep.Samples {
		rep.Samples[i].Memory[0].Targets, rep.Samples[i].Memory[1].Targets = 50, 50
	}
	rep.Options.MemTargets = 50
	md = markdown(rep)
	assert.Contains(t, md, "| weft | 2 | 2/2 (10000 + 100000 series, 50 targets) |")
	assert.Contains(t, md, "each split evenly over 50 targets")

	rep.Samples[0] = run(sideWeft, 1, 100, 2500, 1200)
	rep.Samples[3] = run(sideWeft, 4, 100, 2300, 1400)
	rep.Samples[3].Verified = false
	rep.Samples[3].Detail = "100000 series: 99990 stored"
	md = markdown(rep)
	assert.Contains(t, md, "2400 B = 2.34 KiB per series: **not met**")
	assert.Contains(t, md, "NOT VERIFIED: weft round 2: 100000 series: 99990 stored")
}

// weft stores on the shipped profile's path with 30-minute retention and
// room for the payload's series; Prometheus turns on exemplar storage of
// the same size; pprof only when profiles are asked for.
func TestMemoryConfigs(t *testing.T) {
	h := &harness{o: defaultOptions()}
	vars := h.memoryVars(100_000, "/data", "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "")
	weft := replaceAll(memoryWeftConfig, vars...)
	noPlaceholders(t, weft)
	for _, want := range []string{
		"  weft_store:\n    directory: /data\n    metrics_retention: 30m\n    max_exemplars: 100000\n    max_series: 200000\n",
		"  pod_scrape:\n    appendables: [weft_store]\n    pdata: false\n    scrape_configs:\n",
		"scrape_interval: 15000ms", "scrape_timeout: 10000ms", "targets: [127.0.0.1:3]",
		"extensions: [health_check, weft_store, weft_query]\n",
		"      receivers: [pod_scrape]\n      processors: [memory_limiter]\n      exporters: [weft_store]\n",
	} {
		assert.Contains(t, weft, want)
	}
	assert.NotContains(t, weft, "pprof")
	assert.NotContains(t, weft, "remote_write")

	prom := replaceAll(memoryPromConfig, vars...)
	noPlaceholders(t, prom)
	assert.Contains(t, prom, "storage:\n  exemplars:\n    max_exemplars: 100000\n")
	assert.Contains(t, prom, "scrape_interval: 15000ms\n  scrape_timeout: 10000ms\n")

	small := replaceAll(memoryWeftConfig, h.memoryVars(1_000, "/d", "a", "b", "c", "127.0.0.1:4")...)
	noPlaceholders(t, small)
	assert.Contains(t, small, "max_series: 100000\n", "never below weft_store's default")
	assert.Contains(t, small, "  pprof:\n    endpoint: 127.0.0.1:4\n")
	assert.Contains(t, small, "extensions: [health_check, weft_store, weft_query, pprof]\n")

	h.o.WeftNative = false
	pdata := replaceAll(memoryWeftConfig, h.memoryVars(1_000, "/d", "a", "b", "c", "")...)
	assert.NotContains(t, pdata, "appendables")
}
