//go:build integration

// The noisy-neighbour acceptance test of issue #16 (also alone: `make
// noisy`). It found that samples stamped an hour ahead, refused by
// weft_store, still left through remote write, where the receiving
// Prometheus answered 400 (out of bounds) to requests that also carried
// the normal targets' samples, and the exporter dropped those requests
// whole. The shipped profile now runs clock_guard first in every metrics
// pipeline, and scraped series take the native path (issue #21), where
// weft_store and weft_remote_write each refuse them at append (their
// max_future_skew): neither the store nor remote write keeps them. On
// that path it also found that a target over sample_limit must not reach
// the appendables at all (pod_scrape stages a scrape until its limits
// hold): the series its rolled-back appends created filled the store's
// series limit.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/weftobs/weft/internal/backends"
)

// noisyOverride points the shipped profile at the test's targets, log tree
// and rule evaluation interval; the limits are the profile's own.
const noisyOverride = `
extensions:
  weft_rules:
    evaluation_interval: 2s
receivers:
  container_logs:
    include: [{{.Pods}}/*/*/*.log]
  pod_scrape:
    scrape_interval: 2s
    scrape_configs:
{{- range .Jobs}}
      - job_name: {{.Name}}
        scrape_interval: {{.Interval}}
        static_configs:
          - targets: [{{.Addr}}]
{{- end}}
`

const noisyRules = `groups:
  - name: noisy-neighbour
    rules:
      - alert: HighErrorRate
        expr: sum by (job) (rate(app_errors_total[30s])) / sum by (job) (rate(app_requests_total[30s])) > 0.2
        for: 0s
        labels:
          severity: page
`

const (
	noisyLogFiles    = 2000 // files the noisy pod creates, one line each
	noisyLogBurst    = 200  // files per burst
	noisySeries      = 300000
	noisyHeapBudget  = 768 << 20 // the DaemonSet's memory limit
	noisyQueryWaves  = 3
	noisyMinDuration = time.Minute // of the noise, whatever finishes first
	noisyQueryBurst  = 50          // concurrent heavy queries per wave (2 run, 32 queue, the rest overflow)
)

type noisyJob struct{ Name, Interval, Addr string }

// noisyApp is a normal target: every scrape is one more batch of requests,
// errPerScrape of them failed.
type noisyApp struct {
	mu           sync.Mutex
	reqs, errs   float64
	errPerScrape float64
}

func (a *noisyApp) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	a.reqs += 10
	a.errs += a.errPerScrape
	reqs, errs := a.reqs, a.errs
	a.mu.Unlock()
	w.Header().Set("Content-Type", ctText)
	fmt.Fprintf(w, "# TYPE app_requests_total counter\napp_requests_total %g\n# TYPE app_errors_total counter\napp_errors_total %g\n", reqs, errs)
}

// TestNoisyNeighbour is issue #16's acceptance test: one agent running the
// shipped profile on a node where one pod misbehaves in every way at once
// (samples from the future by scrape and OTLP, 300k series, an endless
// body, thousands of new log files, heavy queries in parallel) while three
// normal targets and two normal pods go on. The normal data must keep
// arriving in weft_store and remote write, the alert must fire for the
// failing target only, every log line must be stored, the heap must stay
// under the memory budget, and every refusal must be counted by reason.
func TestNoisyNeighbour(t *testing.T) {
	t.Cleanup(http.DefaultClient.CloseIdleConnections) // for goleak, after everything stopped
	var ruStart syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ruStart))
	bin, err := backends.FindPrometheus()
	require.NoError(t, err)
	ctx := t.Context()
	sink, err := backends.StartPrometheus(ctx, bin, t.TempDir(), "", nil)
	require.NoError(t, err)
	t.Cleanup(sink.Stop)

	serve := func(h http.Handler) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	normal := map[string]*noisyApp{"app-a": {errPerScrape: 1}, "app-b": {errPerScrape: 1}, "app-bad": {errPerScrape: 5}}
	var jobs []noisyJob
	for _, name := range []string{"app-a", "app-b", "app-bad"} {
		jobs = append(jobs, noisyJob{Name: name, Interval: "2s", Addr: serve(normal[name])})
	}
	futureAddr := serve(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ctText)
		fmt.Fprintf(w, "# TYPE noisy_future gauge\nnoisy_future 1 %d\n", time.Now().Add(time.Hour).UnixMilli())
	}))
	var series bytes.Buffer
	series.WriteString("# TYPE noisy_series gauge\n")
	for i := range noisySeries {
		fmt.Fprintf(&series, "noisy_series{i=\"%06d\"} 1\n", i)
	}
	seriesBody := series.Bytes()
	var endlessBytes atomic.Int64
	jobs = append(jobs,
		noisyJob{Name: "noisy-future", Interval: "2s", Addr: futureAddr},
		noisyJob{Name: "noisy-series", Interval: "4s", Addr: serve(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", ctText)
			_, _ = w.Write(seriesBody)
		}))},
		noisyJob{Name: "noisy-endless", Interval: "4s", Addr: serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctText)
			buf := []byte("# TYPE noisy_endless gauge\n")
			// Distinct series forever (bounded at 1 GiB per request so a
			// scraper that never stops cannot hang the test).
			for i := int64(0); r.Context().Err() == nil; i++ {
				buf = append(buf, `noisy_endless{i="`...)
				buf = strconv.AppendInt(buf, i, 10)
				buf = append(buf, "\"} 1\n"...)
				if len(buf) < 64<<10 {
					continue
				}
				if _, err := w.Write(buf); err != nil || endlessBytes.Add(int64(len(buf))) > 1<<30 {
					return
				}
				buf = buf[:0]
			}
		}))},
	)

	podsDir := t.TempDir()
	rulesDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(rulesDir, "noisy.yaml"), []byte(noisyRules), 0o600))
	podIP := shippedProfileEnv(t, sink.RemoteWriteURL(), filepath.Join(rulesDir, "*.yaml"))

	// The agent runs in this process: its heap is this process's heap.
	// heapByWindow keeps the largest HeapInuse seen in each 5 s window
	// from the start, written by the sampler alone until heapDone.
	var peakHeap atomic.Uint64
	var heapByWindow []uint64
	var peakLive uint64 // heap marked live by the last GC
	t0 := time.Now()
	heapStop := make(chan struct{})
	heapDone := make(chan struct{})
	go func() {
		defer close(heapDone)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
			metrics.Read(live)
			if live[0].Value.Kind() == metrics.KindUint64 {
				peakLive = max(peakLive, live[0].Value.Uint64())
			}
			w := int(time.Since(t0) / (5 * time.Second))
			for len(heapByWindow) <= w {
				heapByWindow = append(heapByWindow, 0)
			}
			heapByWindow[w] = max(heapByWindow[w], ms.HeapInuse)
			select {
			case <-heapStop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-heapStop:
		default:
			close(heapStop)
		}
		<-heapDone
	})

	startShippedProfile(t, podIP, renderTemplate(t, noisyOverride, map[string]any{"Pods": podsDir, "Jobs": jobs}))
	ready := time.Since(t0)

	weftQuery := "http://" + podIP + ":8686"
	selfMetrics := "http://" + podIP + ":8888/metrics"

	// The normal targets are stored and remote-written before the noise
	// that is not a scrape target starts.
	stores := map[string]string{"weft_query": weftQuery, "remote-write sink": sink.URL()}
	// last is read and written by Eventually's condition goroutines, one
	// of which may outlive its Eventually after a timeout.
	var lastMu sync.Mutex
	last := map[string]float64{}
	for job := range normal {
		for name, base := range stores {
			q := fmt.Sprintf(`app_requests_total{job=%q}`, job)
			require.Eventuallyf(t, func() bool {
				v, ok := noisyValue(ctx, base, q)
				lastMu.Lock()
				defer lastMu.Unlock()
				last[name+" "+job] = v
				return ok
			}, 60*time.Second, 250*time.Millisecond, "%s has no samples of %s", name, job)
		}
	}

	noiseStart := time.Since(t0)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	stopNoise := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopNoise)
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}

	// (d) OTLP/HTTP metrics an hour ahead.
	var otlpSent, otlpStatus atomic.Int64
	wg.Go(func() {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "noisy-otlp")
		rm.Resource().Attributes().PutStr("service.instance.id", "noisy-otlp-0")
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("noisy_otlp_future")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetDoubleValue(1)
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for ; !stopped(); <-tick.C {
			dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(time.Hour)))
			body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
			if err != nil {
				t.Errorf("OTLP request: %v", err)
				return
			}
			code := noisyPost(ctx, "http://"+podIP+":4318/v1/metrics", "application/x-protobuf", body)
			otlpSent.Add(1)
			otlpStatus.Store(int64(code))
		}
	})

	// (e) thousands of log files in bursts, and two normal pods' logs.
	noisyLines := map[string]bool{}
	token := strconv.FormatUint(rand.Uint64(), 36)
	for i := range noisyLogFiles {
		noisyLines[fmt.Sprintf("noisy file %04d %s", i, token)] = true
	}
	var floodDone atomic.Bool
	wg.Go(func() {
		pod := filepath.Join(podsDir, "noisy_flood-0_6f1c3a52-0d5e-4c7b-9d3e-000000000001")
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for i := 0; i < noisyLogFiles && !stopped(); i++ {
			if i > 0 && i%noisyLogBurst == 0 {
				<-tick.C // pace the bursts
			}
			dir := filepath.Join(pod, fmt.Sprintf("c%03d", i/10))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Errorf("noisy pod: %v", err)
				return
			}
			line := fmt.Sprintf("%s stdout F noisy file %04d %s\n", time.Now().UTC().Format(time.RFC3339Nano), i, token)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.log", i%10)), []byte(line), 0o644); err != nil {
				t.Errorf("noisy pod: %v", err)
				return
			}
		}
		floodDone.Store(true)
	})
	normalLines := map[string]*atomic.Int64{"web-a": {}, "web-b": {}}
	for pod, n := range normalLines {
		dir := filepath.Join(podsDir, "default_"+pod+"_uid-"+pod, "web")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		f, err := os.OpenFile(filepath.Join(dir, "0.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		require.NoError(t, err)
		wg.Go(func() {
			defer f.Close()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for ; !stopped(); <-tick.C {
				line := fmt.Sprintf("%s stdout F %s line %d %s\n", time.Now().UTC().Format(time.RFC3339Nano), pod, n.Load(), token)
				if _, err := f.WriteString(line); err != nil {
					t.Errorf("%s: %v", pod, err)
					return
				}
				n.Add(1)
			}
		})
	}

	// (f) heavy queries: each wave first sends one request over each bound
	// alone (its answer is checked), then a burst of max_samples queries,
	// over-long and over-nested ones, more than the slots and queue hold.
	longQuery := strings.Repeat("up or ", 16384/6+10) + "up"
	nestedQuery := strings.Repeat("up+", 1200) + "up"    // 3.6 KB, ~2400 nodes
	samplesQuery := "count_over_time(vector(1)[20d:1s])" // 1.7M samples in one subquery
	type answer struct {
		code    int
		errType string
	}
	var queryMu sync.Mutex
	alone := map[string][]answer{}
	burst := map[int]int{}
	var wavesDone atomic.Bool
	wg.Go(func() {
		defer wavesDone.Store(true)
		tick := time.NewTicker(15 * time.Second)
		defer tick.Stop()
		for w := range noisyQueryWaves {
			if w > 0 {
				<-tick.C // spread the waves over the noise
			}
			if stopped() {
				return
			}
			for name, q := range map[string]string{"max_query_length": longQuery, "max_query_nodes": nestedQuery, "max_samples": samplesQuery} {
				code, et := noisyQuery(ctx, weftQuery, q)
				queryMu.Lock()
				alone[name] = append(alone[name], answer{code, et})
				queryMu.Unlock()
			}
			var bw sync.WaitGroup
			for i := range noisyQueryBurst {
				q := samplesQuery
				switch i % 10 {
				case 3:
					q = longQuery
				case 6:
					q = nestedQuery
				}
				bw.Go(func() {
					code, _ := noisyQuery(ctx, weftQuery, q)
					queryMu.Lock()
					burst[code]++
					queryMu.Unlock()
				})
			}
			bw.Wait()
		}
	})

	// Throughout: every normal target's newest value goes on increasing in
	// both stores, round after round, until the noise has run its course.
	rounds := 0
	for ; rounds < 3 || time.Since(t0)-noiseStart < noisyMinDuration || !(floodDone.Load() && wavesDone.Load()); rounds++ {
		progress := true
		for job := range normal {
			for name, base := range stores {
				q := fmt.Sprintf(`app_requests_total{job=%q}`, job)
				key := name + " " + job
				progress = assert.Eventuallyf(t, func() bool {
					v, ok := noisyValue(ctx, base, q)
					lastMu.Lock()
					defer lastMu.Unlock()
					if ok && v > last[key] {
						last[key] = v
						return true
					}
					return false
				}, 60*time.Second, 500*time.Millisecond, "round %d: %s no longer receives %s", rounds, name, job) && progress
			}
		}
		if !progress {
			break
		}
		if time.Since(t0)-noiseStart > 3*time.Minute {
			t.Error("the noise did not end")
			break
		}
	}
	lastMu.Lock()
	t.Logf("%d rounds of progress checks; app-a requests %v in weft_query, %v in the sink", rounds, last["weft_query app-a"], last["remote-write sink app-a"])
	lastMu.Unlock()

	// The failing target alerts, and only it.
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		var r struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
					State  string            `json:"state"`
				} `json:"alerts"`
			} `json:"data"`
		}
		code, err := noisyGetJSON(ctx, weftQuery+"/api/v1/alerts", &r)
		if !assert.NoError(c, err) || !assert.Equal(c, http.StatusOK, code) {
			return
		}
		var firing []string
		for _, a := range r.Data.Alerts {
			if a.Labels["alertname"] == "HighErrorRate" {
				firing = append(firing, a.Labels["job"]+":"+a.State)
			}
		}
		assert.Equal(c, []string{"app-bad:firing"}, firing)
	}, 60*time.Second, time.Second, "HighErrorRate fires for app-bad alone")

	// Every log line: the noisy pod's files and the normal pods' lines.
	assert.Eventually(t, floodDone.Load, 60*time.Second, 100*time.Millisecond, "the noisy pod wrote its files")
	stopNoise()
	noiseEnd := time.Since(t0)

	// Nothing lost on the way: over the noise, the sink holds as many
	// samples of each normal target as weft_store (the same scrapes).
	evalAt := t0.Add(noiseEnd).Add(-10 * time.Second)
	window := evalAt.Sub(t0.Add(noiseStart)).Truncate(time.Second)
	for job := range normal {
		q := fmt.Sprintf(`count_over_time(app_requests_total{job=%q}[%ds])`, job, int(window.Seconds()))
		assert.EventuallyWithT(t, func(c *assert.CollectT) {
			want, ok1 := noisyValueAt(ctx, weftQuery, q, evalAt)
			got, ok2 := noisyValueAt(ctx, sink.URL(), q, evalAt)
			assert.True(c, ok1 && ok2, "%s: weft_query %v, sink %v", q, ok1, ok2)
			assert.Equal(c, want, got, "%s at %s: weft_query %v samples, remote-write sink %v", q, evalAt.Format(time.TimeOnly), want, got)
		}, 20*time.Second, time.Second)
	}

	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		got, err := noisyLogBodies(ctx, weftQuery, url.Values{"namespace": {"noisy"}, "pod": {"flood-0"}})
		if !assert.NoError(c, err) {
			return
		}
		var missingNoisy []string
		for l := range noisyLines {
			if !got[l] {
				missingNoisy = append(missingNoisy, l)
			}
		}
		assert.Empty(c, missingNoisy, "noisy log lines not in the store (%d of %d)", len(missingNoisy), len(noisyLines))
	}, 60*time.Second, time.Second)
	for pod, n := range normalLines {
		want := n.Load()
		assert.EventuallyWithT(t, func(c *assert.CollectT) {
			got, err := noisyLogBodies(ctx, weftQuery, url.Values{"namespace": {"default"}, "pod": {pod}})
			if !assert.NoError(c, err) {
				return
			}
			var missing []string
			for i := range want {
				if l := fmt.Sprintf("%s line %d %s", pod, i, token); !got[l] {
					missing = append(missing, l)
				}
			}
			assert.Empty(c, missing, "%s: %d of %d lines not in the store", pod, len(missing), want)
		}, 60*time.Second, time.Second)
	}

	// The heavy queries were refused by the bound they broke.
	queryMu.Lock()
	t.Logf("heavy queries: alone %v, burst by status %v", alone, burst)
	for name, want := range map[string]answer{"max_query_length": {400, "bad_data"}, "max_query_nodes": {400, "bad_data"}, "max_samples": {422, "execution"}} {
		for _, a := range alone[name] {
			assert.Equal(t, want, a, "%s query alone", name)
		}
	}
	assert.Positive(t, burst[http.StatusServiceUnavailable], "a burst of %d queries got no 503", noisyQueryBurst)
	queryMu.Unlock()

	// The refusals, by reason, in the self-metrics and the scrape metrics.
	checks := []struct {
		what, metric string
		labels       map[string]string
	}{
		{"scraped future samples (store)", "weft_store_rejected_samples", map[string]string{"reason": "too_far_in_future"}},
		{"scraped future samples (remote write)", "weft_remote_write_refused", map[string]string{"reason": "too_far_in_future"}},
		{"OTLP future samples", "clock_guard_refused_data_points", map[string]string{"reason": "too_far_in_future", "source": "noisy-otlp@noisy-otlp-0"}},
		{"over-long queries", "weft_query_refused_requests", map[string]string{"reason": "max_query_length"}},
		{"over-nested queries", "weft_query_refused_requests", map[string]string{"reason": "max_query_nodes"}},
		{"queries over max_samples", "weft_query_refused_requests", map[string]string{"reason": "max_samples"}},
		{"queries over the queue", "weft_query_refused_requests", map[string]string{"reason": "queue_full"}},
	}
	for _, ch := range checks {
		assert.EventuallyWithT(t, func(c *assert.CollectT) {
			text, err := noisyGetText(ctx, selfMetrics)
			if !assert.NoError(c, err) {
				return
			}
			assert.Positive(c, noisySum(text, ch.metric, ch.labels), "%s: %s%v", ch.what, ch.metric, ch.labels)
		}, 30*time.Second, time.Second)
	}
	for job, reason := range map[string]string{"noisy-series": "sample_limit", "noisy-endless": "body_size_limit"} {
		q := fmt.Sprintf(`pod_scrape_failures_total{job=%q,reason=%q}`, job, reason)
		assert.EventuallyWithT(t, func(c *assert.CollectT) {
			v, ok := noisyValue(ctx, weftQuery, q)
			assert.True(c, ok && v > 0, "%s in weft_query: %v", q, v)
		}, 30*time.Second, time.Second)
	}
	text, err := noisyGetText(ctx, selfMetrics)
	require.NoError(t, err)
	assert.Zero(t, noisySum(text, "container_logs_paths_skipped", nil), "paths matched by include and not read")
	// Refused, not stored and not sent: an hour ahead, neither weft_query
	// nor the sink has the future series.
	for name, base := range map[string]string{"weft_query": weftQuery, "remote-write sink": sink.URL()} {
		_, ok := noisyValueAt(ctx, base, `noisy_future`, time.Now().Add(time.Hour))
		assert.False(t, ok, "%s holds the samples stamped an hour ahead", name)
	}
	// The series of the targets over their limits never reached the
	// store (staged, then dropped): its series limit was not hit.
	assert.Zero(t, noisySum(text, "weft_store_rejected_samples", map[string]string{"reason": "series_limit"}),
		"samples refused at the store's series limit: a scrape over its limits reached the store")
	for _, job := range []string{"noisy-series", "noisy-endless"} {
		v, ok := noisyValue(ctx, weftQuery, fmt.Sprintf(`count({job=%q})`, job))
		assert.True(t, ok, "job %s has no series in the store (up and the failure counter expected)", job)
		assert.LessOrEqual(t, v, 10.0, "job %s: series in the store beyond its own", job)
	}
	assert.Equal(t, int64(http.StatusBadRequest), otlpStatus.Load(), "an OTLP request whose every sample is refused gets 400")
	t.Logf("self-metrics: too_far_in_future scrape (store) %v (remote write) %v OTLP %v; series_limit %v; refused queries length %v nodes %v samples %v queue_full %v queue_timeout %v; OTLP requests %d (last status %d); endless body bytes served %d",
		noisySum(text, "weft_store_rejected_samples", map[string]string{"reason": "too_far_in_future"}),
		noisySum(text, "weft_remote_write_refused", map[string]string{"reason": "too_far_in_future"}),
		noisySum(text, "clock_guard_refused_data_points", map[string]string{"reason": "too_far_in_future", "source": "noisy-otlp@noisy-otlp-0"}),
		noisySum(text, "weft_store_rejected_samples", map[string]string{"reason": "series_limit"}),
		noisySum(text, "weft_query_refused_requests", map[string]string{"reason": "max_query_length"}),
		noisySum(text, "weft_query_refused_requests", map[string]string{"reason": "max_query_nodes"}),
		noisySum(text, "weft_query_refused_requests", map[string]string{"reason": "max_samples"}),
		noisySum(text, "weft_query_refused_requests", map[string]string{"reason": "queue_full"}),
		noisySum(text, "weft_query_refused_requests", map[string]string{"reason": "queue_timeout"}),
		otlpSent.Load(), otlpStatus.Load(), endlessBytes.Load())

	close(heapStop)
	<-heapDone
	var ruEnd syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ruEnd))
	user := time.Duration(ruEnd.Utime.Nano() - ruStart.Utime.Nano())
	sys := time.Duration(ruEnd.Stime.Nano() - ruStart.Stime.Nano())
	windows := make([]string, len(heapByWindow))
	for i, h := range heapByWindow {
		windows[i] = strconv.Itoa(int(h >> 20))
	}
	t.Logf("peak Go heap in use %.1f MiB (budget %d MiB), peak live heap after a GC %.1f MiB (GOGC 100, no GOMEMLIMIT); heap in use by 5 s window from the test's start (MiB): %s; agent ready at %v, noise from %v to %v",
		float64(peakHeap.Load())/(1<<20), noisyHeapBudget>>20, float64(peakLive)/(1<<20), strings.Join(windows, " "), ready.Round(time.Second), noiseStart.Round(time.Second), noiseEnd.Round(time.Second))
	t.Logf("test process CPU (agent, targets, clients; not the Prometheus sink) user %v + sys %v = %v over %v; peak RSS (VmHWM) %s",
		user.Round(time.Millisecond), sys.Round(time.Millisecond), (user + sys).Round(time.Millisecond), time.Since(t0).Round(time.Second), peakRSS())
	assert.Less(t, peakHeap.Load(), uint64(noisyHeapBudget), "peak Go heap in use")
}

// noisyGetJSON is getJSON bounded in time, for polls that must not hang.
func noisyGetJSON(ctx context.Context, u string, v any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return getJSON(ctx, u, v)
}

// noisyValue returns the single instant value of q, false when the query
// failed (a refused or queued-out query during the noise) or has no
// single series.
func noisyValue(ctx context.Context, base, q string) (float64, bool) {
	return noisyValueAt(ctx, base, q, time.Time{})
}

// noisyValueAt is noisyValue evaluated at a given time (zero: now).
func noisyValueAt(ctx context.Context, base, q string, at time.Time) (float64, bool) {
	params := url.Values{"query": {q}}
	if !at.IsZero() {
		params.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
	}
	var r promResult
	code, err := noisyGetJSON(ctx, base+"/api/v1/query?"+params.Encode(), &r)
	if err != nil || code != http.StatusOK || len(r.Data.Result) != 1 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// noisyQuery sends q to weft_query and returns the status and errorType.
func noisyQuery(ctx context.Context, base, q string) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/query", strings.NewReader(url.Values{"query": {q}}.Encode()))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		ErrorType string `json:"errorType"`
	}
	_ = json.Unmarshal(body, &r)
	return resp.StatusCode, r.ErrorType
}

// noisyPost posts body and returns the status (0 when the request failed).
func noisyPost(ctx context.Context, u, contentType string, body []byte) int {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// noisyLogBodies returns the bodies of the newest 5000 records that match
// the logs API filter.
func noisyLogBodies(ctx context.Context, base string, filter url.Values) (map[string]bool, error) {
	filter.Set("limit", "5000")
	var r struct {
		Data []struct {
			Body string `json:"body"`
		} `json:"data"`
	}
	code, err := noisyGetJSON(ctx, base+"/api/v1/logs?"+filter.Encode(), &r)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("logs API: status %d", code)
	}
	out := make(map[string]bool, len(r.Data))
	for _, d := range r.Data {
		out[d.Body] = true
	}
	return out, nil
}

func noisyGetText(ctx context.Context, u string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return string(b), err
}

// noisySum adds up the samples of the Prometheus text exposition whose
// metric name, with dots as underscores and without a _total suffix, is
// name and whose labels include labels.
func noisySum(text, name string, labels map[string]string) float64 {
	var sum float64
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		key, val := line[:sp], line[sp+1:]
		var metric, lbls string
		if strings.HasPrefix(key, `{"`) { // UTF-8 name quoted inside the braces
			end := strings.Index(key[2:], `"`)
			if end < 0 {
				continue
			}
			metric, lbls = key[2:2+end], key[2+end+1:]
		} else if i := strings.IndexByte(key, '{'); i >= 0 {
			metric, lbls = key[:i], key[i:]
		} else {
			metric = key
		}
		metric = strings.TrimSuffix(strings.ReplaceAll(metric, ".", "_"), "_total")
		if metric != name {
			continue
		}
		ok := true
		for k, v := range labels {
			if !strings.Contains(lbls, fmt.Sprintf("%s=%q", k, v)) {
				ok = false
				break
			}
		}
		if f, err := strconv.ParseFloat(val, 64); ok && err == nil {
			sum += f
		}
	}
	return sum
}

// peakRSS returns the process's peak resident set size as
// /proc/self/status states it (VmHWM), or why it cannot.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err.Error()
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return "no VmHWM"
}
