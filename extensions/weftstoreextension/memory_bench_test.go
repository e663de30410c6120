package weftstoreextension

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
)

// BenchmarkMemoryPerSeries measures what one active series costs the
// store: the growth of the live heap and of the RSS between 10,000 and
// 100,000 series (the slope, so the binary's pages and the empty store do
// not count), each series holding 20 samples 15 s apart (5 minutes of
// scrapes) with Envoy-like labels. One op is the whole run.
//
//	go test -run '^$' -bench MemoryPerSeries -benchtime 1x -count 3 ./extensions/weftstoreextension/
func BenchmarkMemoryPerSeries(b *testing.B) {
	const lo, hi, samples = 10_000, 100_000, 20
	for b.Loop() {
		st := newTestStore(b, func(c *Config) { c.MaxSeries = 0 })
		start := time.Now().Add(-time.Duration(samples) * 15 * time.Second)
		fill := func(from, to int) {
			for i := from; i < to; i += 1000 {
				md := envoyLikeSeries(i, min(1000, to-i))
				for s := range samples {
					setAllTimestamps(md, pcommon.NewTimestampFromTime(start.Add(time.Duration(s)*15*time.Second)))
					if err := st.AppendMetrics(context.Background(), md); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		fill(0, lo)
		heapLo, rssLo := simtest.HeapAlloc(), simtest.RSSAfterFree(b)
		fill(lo, hi)
		heapHi, rssHi := simtest.HeapAlloc(), simtest.RSSAfterFree(b)
		if n := st.Stats().SeriesCreated; n != hi {
			b.Fatalf("%d series created, want %d", n, hi)
		}
		noRejections(b, st)
		b.ReportMetric(float64(int64(heapHi)-int64(heapLo))/(hi-lo), "heap-B/series")
		b.ReportMetric(float64(rssHi-rssLo)/(hi-lo), "RSS-B/series")
		b.StopTimer()
		_ = st.Shutdown(context.Background())
		b.StartTimer()
	}
}

// envoyLikeSeries returns n counter points of one sidecar, series first..
// first+n, labelled as Envoy's cluster stats are.
func envoyLikeSeries(first, n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	simtest.Pods[2].Resource(rm.Resource())
	rm.Resource().Attributes().PutStr("service.instance.id", "10.0.4.17:15090")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("envoy_cluster_upstream_rq")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i := first; i < first+n; i++ {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetDoubleValue(float64(i))
		a := dp.Attributes()
		a.PutStr("cluster_name", "outbound|9080||svc-"+strconv.Itoa(i/10)+".bookinfo.svc.cluster.local")
		a.PutStr("response_code", strconv.Itoa(200+i%10))
		a.PutStr("response_code_class", "2xx")
	}
	return md
}

// setAllTimestamps moves every point of md's first metric to ts and bumps
// its value, as a new scrape would.
func setAllTimestamps(md pmetric.Metrics, ts pcommon.Timestamp) {
	pts := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints()
	for i := range pts.Len() {
		pts.At(i).SetTimestamp(ts)
		pts.At(i).SetDoubleValue(pts.At(i).DoubleValue() + 1)
	}
}
