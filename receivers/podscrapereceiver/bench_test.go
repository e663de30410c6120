package podscrapereceiver

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
)

var benchSizes = []int{10000, 50000}

// BenchmarkAppendBody is the parse → pdata path of one scrape in steady
// state (series already known, as from the second scrape on), streamed
// through the parse window as scrapes do.
func BenchmarkAppendBody(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("envoy-%dk", n/1000), func(b *testing.B) {
			body := envoyPayload(n)
			a := newAppender(labels.FromStrings("job", "envoy", "instance", "10.0.0.1:15090"), false, scrapeLimits{honorTimestamps: true}, nil)
			now := time.Unix(1700000000, 0)
			var (
				samples int
				c       chunker
				r       bytes.Reader
			)
			run := func() {
				md := pmetric.NewMetrics()
				ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
				r.Reset(body)
				st, err := a.appendStream(&c, &r, ctText, now, ms, int64(len(body)), false)
				if err != nil {
					b.Fatal(err)
				}
				samples = st.scraped
				now = now.Add(15 * time.Second)
			}
			run()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			m0 := mallocs()
			for b.Loop() {
				run()
			}
			b.StopTimer()
			ops := float64(b.N)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/ops/float64(samples), "ns/sample")
			b.ReportMetric(float64(mallocs()-m0)/ops/float64(samples), "allocs/sample")
		})
	}
}

// BenchmarkScrape is one scrape end to end: HTTP GET from a loopback
// server, parse, pdata, self metrics, hand-over to a consumer.
func BenchmarkScrape(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("envoy-%dk", n/1000), func(b *testing.B) {
			body := envoyPayload(n)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain; version=0.0.4")
				_, _ = w.Write(body)
			}))
			defer srv.Close()
			tg, samples := benchTarget(b, srv.URL+"/stats/prometheus")
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			m0 := mallocs()
			for b.Loop() {
				tg.scrapeOnce(context.Background())
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(samples), "ns/sample")
			b.ReportMetric(float64(mallocs()-m0)/float64(b.N)/float64(samples), "allocs/sample")
		})
	}
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

func benchTarget(b *testing.B, rawURL string) (*target, int) {
	b.Helper()
	client, err := newHTTPClient(TLSConfig{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(client.CloseIdleConnections)
	j := &job{name: "envoy", interval: 15 * time.Second, timeout: 10 * time.Second, accept: acceptHeader(nil)}
	tg := &target{
		job: j, url: rawURL, resource: map[string]string{"job": "envoy", "instance": "x"},
		app:    newAppender(labels.FromStrings("job", "envoy", "instance", "x"), false, scrapeLimits{honorTimestamps: true}, nil),
		client: client, next: consumertest.NewNop(), logger: zap.NewNop(), started: time.Now(),
		failures: map[string]float64{}, done: make(chan struct{}),
	}
	tg.scrapeOnce(context.Background())
	return tg, len(tg.app.series)
}

// BenchmarkRetainedPerSeries measures the heap a target keeps between
// scrapes (series cache, point state, parse buffer), per active series.
func BenchmarkRetainedPerSeries(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("envoy-%dk", n/1000), func(b *testing.B) {
			body := envoyPayload(n)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain; version=0.0.4")
				_, _ = w.Write(body)
			}))
			defer srv.Close()
			var perSeries float64
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				tg, samples := benchTarget(b, srv.URL+"/")
				tg.scrapeOnce(context.Background())
				runtime.GC()
				runtime.ReadMemStats(&after)
				perSeries = float64(after.HeapAlloc-before.HeapAlloc) / float64(samples)
				runtime.KeepAlive(tg)
			}
			b.ReportMetric(perSeries, "B/series")
		})
	}
}

// BenchmarkTextparseOnly is the floor: Prometheus's text parser alone
// (Next and Series per sample, no labels), on the same payloads.
func BenchmarkTextparseOnly(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("envoy-%dk", n/1000), func(b *testing.B) {
			body := envoyPayload(n)
			st := labels.NewSymbolTable()
			samples := 0
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				p, _ := textparse.New(body, ctText, st, textparse.ParserOptions{})
				samples = 0
				for {
					e, err := p.Next()
					if err != nil {
						break
					}
					if e == textparse.EntrySeries {
						_, _, _ = p.Series()
						samples++
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(samples), "ns/sample")
		})
	}
}

// BenchmarkRSSPerSeries measures the process's resident memory that 4
// targets of the payload keep after two scrapes each (memory returned to
// the OS before both readings), per active series.
func BenchmarkRSSPerSeries(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("envoy-%dk", n/1000), func(b *testing.B) {
			body := envoyPayload(n)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain; version=0.0.4")
				_, _ = w.Write(body)
			}))
			defer srv.Close()
			const targets = 4
			var perSeries float64
			for b.Loop() {
				debug.FreeOSMemory()
				before := rss(b)
				tgs := make([]*target, targets)
				series := 0
				for i := range tgs {
					tg, s := benchTarget(b, srv.URL+"/")
					tg.scrapeOnce(context.Background())
					tgs[i], series = tg, series+s
				}
				debug.FreeOSMemory()
				perSeries = float64(rss(b)-before) / float64(series)
				runtime.KeepAlive(tgs)
			}
			b.ReportMetric(perSeries, "RSS-B/series")
		})
	}
}

// rss reads the resident set size of this process from /proc.
func rss(b *testing.B) int64 {
	b.Helper()
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}
