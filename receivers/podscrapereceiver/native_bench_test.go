package podscrapereceiver

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
)

// discard is an Appendable that takes every sample and keeps none: the
// cost of the receiver's side of the native path alone.
type discard struct{ next storage.SeriesRef }

func (d *discard) Appender(context.Context) storage.Appender { return discardAppender{d: d} }

type discardAppender struct {
	storage.Appender
	d *discard
}

func (a discardAppender) Append(ref storage.SeriesRef, _ labels.Labels, _ int64, _ float64) (storage.SeriesRef, error) {
	if ref == 0 {
		a.d.next++
		ref = a.d.next
	}
	return ref, nil
}

func (discardAppender) AppendExemplar(ref storage.SeriesRef, _ labels.Labels, _ exemplar.Exemplar) (storage.SeriesRef, error) {
	return ref, nil
}
func (discardAppender) Commit() error   { return nil }
func (discardAppender) Rollback() error { return nil }

// BenchmarkAppendBodyNative is BenchmarkAppendBody's parse with the native
// output only (pdata: false) into an appendable that keeps nothing.
func BenchmarkAppendBodyNative(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("envoy-%dk", n/1000), func(b *testing.B) {
			body := envoyPayload(n)
			a := newAppender(labels.FromStrings("job", "envoy", "instance", "10.0.0.1:15090"), false, scrapeLimits{honorTimestamps: true}, nil)
			a.out = newNativeOut([]string{"discard"}, []storage.Appendable{&discard{}})
			a.pdata = false
			now := time.Unix(1700000000, 0)
			var (
				samples int
				c       chunker
				r       bytes.Reader
			)
			run := func() {
				a.out.begin(context.Background())
				r.Reset(body)
				st, err := a.appendStream(&c, &r, ctText, now, pmetric.MetricSlice{}, int64(len(body)), false)
				if err != nil {
					b.Fatal(err)
				}
				if err := a.out.commit(); err != nil {
					b.Fatal(err)
				}
				samples = st.scraped
				now = now.Add(15 * time.Second)
			}
			run()
			reportPerSample(b, body, &samples, run)
		})
	}
}

// reportPerSample runs run b.N times and reports time, CPU time (the
// process's user+system time: GC and the store's goroutines included,
// and less disturbed than wall time by other processes on a shared
// machine) and allocations per sample.
func reportPerSample(b *testing.B, body []byte, samples *int, run func()) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	m0, cpu0 := mallocs(), cpuTime(b)
	for b.Loop() {
		run()
	}
	b.StopTimer()
	ops := float64(b.N)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/ops/float64(*samples), "ns/sample")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/ops/float64(*samples), "cpu-ns/sample")
	b.ReportMetric(float64(mallocs()-m0)/ops/float64(*samples), "allocs/sample")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScrapeToStore is a scrape's parse and its write into a real
// weft_store (in-memory TSDB), steady state: pdata, then the store's
// translator (what the weft_store exporter does), against the native path
// through the store's Appendable with pdata off.
func BenchmarkScrapeToStore(b *testing.B) {
	for _, n := range benchSizes {
		for _, mode := range []string{"pdata", "native"} {
			b.Run(fmt.Sprintf("envoy-%dk/%s", n/1000, mode), func(b *testing.B) {
				body := envoyPayload(n)
				st := weftstoretest.Start(b, nil)
				a := newAppender(labels.FromStrings("job", "envoy", "instance", "10.0.0.1:15090"), false, scrapeLimits{honorTimestamps: true}, nil)
				if mode == "native" {
					a.out = newNativeOut([]string{"weft_store"}, []storage.Appendable{st.Appendable()})
					a.pdata = false
				}
				var (
					samples int
					c       chunker
					r       bytes.Reader
					last    int64
				)
				run := func() {
					now := nextNow(&last)
					if a.out != nil {
						samples = nativeScrape(b, a, &c, &r, body, ctText, now)
						return
					}
					r.Reset(body)
					md := pmetric.NewMetrics()
					rm := md.ResourceMetrics().AppendEmpty()
					rm.Resource().Attributes().PutStr("service.name", "envoy")
					rm.Resource().Attributes().PutStr("service.instance.id", "10.0.0.1:15090")
					sm := rm.ScopeMetrics().AppendEmpty()
					sm.Scope().SetName(scopeName)
					stats, err := a.appendStream(&c, &r, ctText, now, sm.Metrics(), int64(len(body)), false)
					if err != nil {
						b.Fatal(err)
					}
					if err := st.AppendMetrics(context.Background(), md); err != nil {
						b.Fatal(err)
					}
					samples = stats.scraped
				}
				run()
				reportPerSample(b, body, &samples, run)
				if mode == "native" && len(a.out.failures) > 0 {
					b.Fatalf("samples refused: %v", a.out.failures)
				}
			})
		}
	}
}

// nextNow is the current time, or a millisecond after the last one
// returned (*last, in ms) if the clock has not moved on since.
func nextNow(last *int64) time.Time {
	now := time.Now()
	if now.UnixMilli() <= *last {
		now = time.UnixMilli(*last + 1)
	}
	*last = now.UnixMilli()
	return now
}

// nativeScrape parses body (of content type ct) into a's native output in
// one transaction and returns the samples scraped.
func nativeScrape(b *testing.B, a *appender, c *chunker, r *bytes.Reader, body []byte, ct string, now time.Time) int {
	r.Reset(body)
	a.out.begin(context.Background())
	stats, err := a.appendStream(c, r, ct, now, pmetric.MetricSlice{}, int64(len(body)), false)
	if err != nil {
		b.Fatal(err)
	}
	if err := a.out.commit(); err != nil {
		b.Fatal(err)
	}
	return stats.scraped
}

// BenchmarkRetainedPerSeriesNative is BenchmarkRetainedPerSeries for a
// target with the native output only (pdata: false, one appendable that
// keeps nothing): the series cache with each series' labels and ref.
func BenchmarkRetainedPerSeriesNative(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("envoy-%dk", n/1000), func(b *testing.B) {
			body := envoyPayload(n)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain; version=0.0.4")
				_, _ = w.Write(body)
			}))
			defer srv.Close()
			client, err := newHTTPClient(TLSConfig{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer client.CloseIdleConnections()
			var perSeries float64
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				j := &job{name: "envoy", interval: 15 * time.Second, timeout: 10 * time.Second, accept: acceptHeader(nil)}
				tg := &target{
					job: j, url: srv.URL + "/", resource: map[string]string{"job": "envoy", "instance": "x"},
					app:    newAppender(labels.FromStrings("job", "envoy", "instance", "x"), false, scrapeLimits{honorTimestamps: true}, nil),
					client: client, next: consumertest.NewNop(), logger: zap.NewNop(), started: time.Now(),
					failures: map[string]float64{}, done: make(chan struct{}),
					out: newNativeOut([]string{"discard"}, []storage.Appendable{&discard{}}), nativeOnly: true,
				}
				tg.app.out, tg.app.pdata = tg.out, false
				tg.scrapeOnce(context.Background())
				tg.scrapeOnce(context.Background())
				runtime.GC()
				runtime.ReadMemStats(&after)
				perSeries = float64(after.HeapAlloc-before.HeapAlloc) / float64(len(tg.app.series))
				runtime.KeepAlive(tg)
			}
			b.ReportMetric(perSeries, "B/series")
		})
	}
}
