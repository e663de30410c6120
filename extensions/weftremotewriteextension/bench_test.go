package weftremotewriteextension

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
)

// countingReceiver decodes every request, as a real receiver must, and
// counts the samples.
type countingReceiver struct{ samples atomic.Int64 }

func (c *countingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	comp, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, err := snappy.Decode(nil, comp)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var n int64
	for _, ts := range req.Timeseries {
		n += int64(len(ts.Samples))
	}
	c.samples.Add(n)
	w.WriteHeader(http.StatusNoContent)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAppendAndSend appends one scrape round of 50k Envoy-like series
// per iteration, as a scrape loop does (series refs kept between rounds),
// and waits until the receiver decoded every sample. cpu-s is the whole
// process's CPU time: the appends, the WAL, the queue and the receiver.
func BenchmarkAppendAndSend(b *testing.B) {
	const series = 50_000
	recv := &countingReceiver{}
	srv := httptest.NewServer(recv)
	b.Cleanup(srv.Close)
	cfg := testConfig(b.TempDir(), srv.URL+"/api/v1/write")
	cfg.Endpoints[0].QueueConfig = QueueConfig{BatchSendDeadline: 100 * time.Millisecond}
	rw := startRW(b, cfg, 0)
	waitLive(b, rw)

	lsets := make([]labels.Labels, series)
	for i := range lsets {
		lsets[i] = labels.FromStrings(
			"__name__", "envoy_cluster_upstream_rq_total",
			"envoy_cluster_name", "outbound|9080||svc-"+strconv.Itoa(i/50)+".ns.svc.cluster.local",
			"envoy_response_code", strconv.Itoa(200+i%50),
			"namespace", "ns", "pod", "pod-"+strconv.Itoa(i%7))
	}
	refs := make([]storage.SeriesRef, series)
	base := futureBase()
	a := rw.Appendable()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, wall0 := cpuTime(), time.Now()
	for i := range b.N {
		app := a.Appender(context.Background())
		ts := base + int64(i)
		for s := range lsets {
			ref, err := app.Append(refs[s], lsets[s], ts, float64(i))
			if err != nil {
				b.Fatal(err)
			}
			refs[s] = ref
		}
		require.NoError(b, app.Commit())
		want := int64(i+1) * series
		for recv.samples.Load() < want {
			time.Sleep(time.Millisecond)
		}
	}
	b.StopTimer()
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	total := float64(b.N) * series
	b.ReportMetric(total/cpu.Seconds(), "samples/cpu-s")
	b.ReportMetric(total/wall.Seconds(), "samples/s")
}
