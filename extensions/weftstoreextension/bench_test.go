package weftstoreextension

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
)

// setTimestamps moves every point of md to ts.
func setTimestamps(md pmetric.Metrics, ts pcommon.Timestamp) {
	pts := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints()
	for i := 0; i < pts.Len(); i++ {
		pts.At(i).SetTimestamp(ts)
	}
}

// BenchmarkAppendSamples measures the TSDB append cost per sample: one op
// is 100 samples in one transaction, of known series (the ref cache hits)
// or of new series (labels built, series created in the head).
func BenchmarkAppendSamples(b *testing.B) {
	b.Run("known_series", func(b *testing.B) {
		st := newTestStore(b, nil)
		// Within the retention (30m): an hour back, every sample would be
		// refused as out of bounds and the benchmark would time refusals.
		start := time.Now().Add(-10 * time.Minute)
		md := simtest.Gauges(0, start)
		if err := st.AppendMetrics(context.Background(), md); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			i++
			b.StopTimer()
			setTimestamps(md, pcommon.NewTimestampFromTime(start.Add(time.Duration(i)*time.Millisecond)))
			b.StartTimer()
			if err := st.AppendMetrics(context.Background(), md); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		simtest.PerItem(b, "sample")
		if n := st.Stats().SeriesCreated; n != simtest.Batch {
			b.Fatalf("known series created %d series, want %d", n, simtest.Batch)
		}
		noRejections(b, st)
	})
	b.Run("new_series", func(b *testing.B) {
		st := newTestStore(b, func(c *Config) { c.MaxSeries = 0 }) // b.N batches of new series
		ts := time.Now()
		batches := make([]pmetric.Metrics, 0, 1024)
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			b.StopTimer()
			if len(batches) == 0 {
				for range cap(batches) {
					i++
					batches = append(batches, simtest.Gauges(i, ts))
				}
			}
			md := batches[len(batches)-1]
			batches = batches[:len(batches)-1]
			b.StartTimer()
			if err := st.AppendMetrics(context.Background(), md); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		simtest.PerItem(b, "sample")
		noRejections(b, st)
	})
}

// noRejections fails the benchmark if it timed refusals instead of appends.
func noRejections(b *testing.B, st *Store) {
	b.Helper()
	for r, n := range st.Stats().RejectedSamples {
		if n != 0 {
			b.Fatalf("%d samples rejected (%s): the benchmark timed refusals", n, r)
		}
	}
}

// BenchmarkCorrelate measures one Correlate call on a store holding 20000
// simulated requests (40000 spans, 40000 log records, 40000 exemplars).
func BenchmarkCorrelate(b *testing.B) {
	st := newTestStore(b, nil)
	ctx := context.Background()
	reqs, td, ld, md := simtest.Simulate(simtest.NewRand(9), 20000, time.Now().Add(-10*time.Minute))
	for _, err := range []error{st.AppendTraces(ctx, td), st.AppendLogs(ctx, ld), st.AppendMetrics(ctx, md)} {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		c, err := st.Correlate(ctx, reqs[i%len(reqs)].TraceID)
		if err != nil || len(c.Exemplars) != 2 {
			b.Fatalf("correlate: %v, %d exemplars", err, len(c.Exemplars))
		}
		i++
	}
}
