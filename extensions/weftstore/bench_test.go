package weftstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

const benchBatch = 100

// perItem reports the cost per span, record or sample besides per batch.
func perItem(b *testing.B, unit string) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/"+unit)
}

// BenchmarkAppendSpans measures the span index insert cost: one op is a
// batch of 100 simnode-like spans of one pod (serialize, index, evict).
func BenchmarkAppendSpans(b *testing.B) {
	st := newTestStore(b, nil)
	var seq uint64
	td := spanBatch(&seq, benchBatch)
	var m ptrace.ProtoMarshaler
	b.SetBytes(int64(m.TracesSize(td)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := st.AppendTraces(context.Background(), td); err != nil {
			b.Fatal(err)
		}
	}
	perItem(b, "span")
}

// BenchmarkAppendLogs measures the log index insert cost: one op is a batch
// of 100 JSON log records of one pod.
func BenchmarkAppendLogs(b *testing.B) {
	st := newTestStore(b, nil)
	var seq uint64
	ld := logBatch(&seq, benchBatch)
	var m plog.ProtoMarshaler
	b.SetBytes(int64(m.LogsSize(ld)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := st.AppendLogs(context.Background(), ld); err != nil {
			b.Fatal(err)
		}
	}
	perItem(b, "record")
}

// gauges returns 100 gauge points of one pod, one per series; series
// differ by a route attribute, prefixed with gen (a new gen: new series).
func gauges(gen int, ts time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	testPods[1].resource(rm.Resource())
	rm.Resource().Attributes().PutStr("service.instance.id", "10.0.0.7:9080")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("http.server.active_requests")
	pts := m.SetEmptyGauge().DataPoints()
	for i := range benchBatch {
		dp := pts.AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		dp.SetDoubleValue(float64(i))
		dp.Attributes().PutStr("http.route", "/r"+strconv.Itoa(gen)+"/"+strconv.Itoa(i))
		dp.Attributes().PutStr("http.request.method", "GET")
		dp.Attributes().PutInt("http.response.status_code", 200)
	}
	return md
}

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
		md := gauges(0, start)
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
		perItem(b, "sample")
		if n := st.Stats().SeriesCreated; n != benchBatch {
			b.Fatalf("known series created %d series, want %d", n, benchBatch)
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
					batches = append(batches, gauges(i, ts))
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
		perItem(b, "sample")
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
	reqs, td, ld, md := simulate(newRand(9), 20000, time.Now().Add(-10*time.Minute))
	for _, err := range []error{st.AppendTraces(ctx, td), st.AppendLogs(ctx, ld), st.AppendMetrics(ctx, md)} {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		c, err := st.Correlate(ctx, reqs[i%len(reqs)].traceID)
		if err != nil || len(c.Exemplars) != 2 {
			b.Fatalf("correlate: %v, %d exemplars", err, len(c.Exemplars))
		}
		i++
	}
}
