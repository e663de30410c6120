package podscrapereceiver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// routes maps pod addresses to loopback test servers, so that scrapes of
// discovered pods never leave the machine; an unmapped address fails.
type routes map[string]string

func (m routes) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	to, ok := m[addr]
	if !ok {
		return nil, fmt.Errorf("test: no route to %s", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, to)
}

func serveText(t *testing.T, body []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func runningTargets(r *podScrapeReceiver) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for j, ts := range r.running {
		for _, t := range ts {
			out = append(out, j.name+" "+t.url)
		}
	}
	sort.Strings(out)
	return out
}

// batchesFor returns the batches of one target (by job and instance).
func batchesFor(sink *consumertest.MetricsSink, job, instance string) []pmetric.Metrics {
	var out []pmetric.Metrics
	for _, md := range sink.AllMetrics() {
		attrs := md.ResourceMetrics().At(0).Resource().Attributes()
		j, _ := attrs.Get("job")
		i, _ := attrs.Get("instance")
		if j.Str() == job && i.Str() == instance {
			out = append(out, md)
		}
	}
	return out
}

func TestPodsAddedChangedRemoved(t *testing.T) {
	envoy := readFile(t, envoyFile)
	queue := []byte("# TYPE revision_request_count counter\nrevision_request_count{response_code=\"200\"} 12\n# TYPE revision_app_request_latencies histogram\nrevision_app_request_latencies_bucket{le=\"5\"} 3\nrevision_app_request_latencies_bucket{le=\"+Inf\"} 4\nrevision_app_request_latencies_sum 31\nrevision_app_request_latencies_count 4\n")
	envoyAddr, queueAddr := serveText(t, envoy), serveText(t, queue)

	api := newFakeAPI(t)
	pods := nodePods(t)
	reviews, knative := pods[0], pods[3]
	api.Apply(reviews)
	api.Apply(knative)

	cfg := presetConfig(api.URL())
	cfg.ScrapeInterval, cfg.ScrapeTimeout = time.Hour, 10*time.Second
	require.NoError(t, cfg.Validate())
	core, logs := observer.New(zapcore.DebugLevel)
	set := receivertest.NewNopSettings(component.MustNewType(typeStr))
	set.Logger = zap.New(core)
	sink := new(consumertest.MetricsSink)
	r, err := newReceiver(set, cfg, sink)
	require.NoError(t, err)
	r.firstScrapeNow = true
	r.dial = routes{
		"10.244.1.10:15020": envoyAddr, // Istio's merged endpoint serves Envoy's stats too
		"10.244.1.10:15090": envoyAddr,
		"10.244.1.13:9091":  queueAddr,
	}.dial
	require.NoError(t, r.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })

	// Added: the merged pod is scraped once, by the annotations job only.
	want := []string{
		"knative-queue-proxy http://10.244.1.13:9091/metrics",
		"pod-annotations http://10.244.1.10:15020/stats/prometheus",
	}
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, runningTargets(r)) }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		return len(batchesFor(sink, annotationsJob, "10.244.1.10:15020")) == 1 && len(batchesFor(sink, knativeJob, "10.244.1.13:9091")) == 1
	}, 20*time.Second, 10*time.Millisecond)
	merged := batchesFor(sink, annotationsJob, "10.244.1.10:15020")[0]
	assert.Equal(t, 1.0, gaugeValue(t, merged, "up"))
	extra := map[string]string{"namespace": "default", "pod": "reviews-v1-abc"}
	assertSamples(t, flattenText(t, envoy, extra), flattenPdata(merged))
	res := merged.ResourceMetrics().At(0).Resource().Attributes()
	for k, v := range map[string]string{"k8s.pod.name": "reviews-v1-abc", "k8s.namespace.name": "default", "k8s.node.name": "node-a", "service.name": annotationsJob, "service.instance.id": "10.244.1.10:15020"} {
		got, ok := res.Get(k)
		assert.True(t, ok, k)
		assert.Equal(t, v, got.Str(), k)
	}
	kn := batchesFor(sink, knativeJob, "10.244.1.13:9091")[0]
	svc, _ := kn.ResourceMetrics().At(0).Resource().Attributes().Get("service.name")
	assert.Equal(t, knativeJob, svc.Str(), "service.name is the job (OTel's Prometheus compatibility mapping), so remote write rebuilds job")

	// Changed: merging turned off, annotations gone: the annotations target
	// ends (stale markers), the sidecar's own :15090 starts.
	changed := reviews.DeepCopy()
	changed.Annotations = map[string]string{"sidecar.istio.io/status": istioStatus}
	api.Apply(changed)
	want = []string{
		"istio-sidecars http://10.244.1.10:15090/stats/prometheus",
		"knative-queue-proxy http://10.244.1.13:9091/metrics",
	}
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, runningTargets(r)) }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		return len(batchesFor(sink, annotationsJob, "10.244.1.10:15020")) == 2 && len(batchesFor(sink, istioJob, "10.244.1.10:15090")) == 1
	}, 20*time.Second, 10*time.Millisecond)
	ended := batchesFor(sink, annotationsJob, "10.244.1.10:15020")[1]
	assertAllStale(t, ended, livePoints(merged))

	// Removed (Knative scaled to zero): its series end once, without errors.
	api.Delete(knative.Namespace, knative.Name)
	want = []string{"istio-sidecars http://10.244.1.10:15090/stats/prometheus"}
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, runningTargets(r)) }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return len(batchesFor(sink, knativeJob, "10.244.1.13:9091")) == 2 }, 20*time.Second, 10*time.Millisecond)
	gone := batchesFor(sink, knativeJob, "10.244.1.13:9091")[1]
	assertAllStale(t, gone, livePoints(kn))
	assert.Empty(t, logs.FilterLevelExact(zapcore.WarnLevel).All(), "no warnings")
	assert.Empty(t, logs.FilterLevelExact(zapcore.ErrorLevel).All(), "no errors")
}

// livePoints counts the sample data points of md (not up and friends).
func livePoints(md pmetric.Metrics) int {
	n := 0
	for _, m := range metricsOf(md) {
		if !selfMetricNames[m.Name()] {
			_, live := staleCount(md, m.Name())
			n += live
		}
	}
	return n
}

// assertAllStale checks that every data point of md is a stale marker, one
// for each of the points the target had.
func assertAllStale(t *testing.T, md pmetric.Metrics, points int) {
	t.Helper()
	n := 0
	for _, m := range metricsOf(md) {
		stale, live := staleCount(md, m.Name())
		assert.Zero(t, live, m.Name())
		if !selfMetricNames[m.Name()] {
			n += stale
		}
	}
	up, _ := findMetric(md, "up")
	assert.True(t, up.Gauge().DataPoints().At(0).Flags().NoRecordedValue(), "up ends too")
	assert.Equal(t, points, n)
}

func TestNoClusterLogsAndKeepsStaticTargets(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	addr := serveText(t, []byte("a 1\n"))
	cfg := staticConfig("static", addr, nil)
	cfg.IstioSidecars = true
	_, sink, logs := startReceiver(t, cfg)
	md := waitBatches(t, sink, 1)[0]
	assert.Equal(t, 1.0, gaugeValue(t, md, "up"))
	entries := logs.FilterMessage("Kubernetes pod discovery unavailable; its jobs scrape nothing").All()
	require.Len(t, entries, 1)
	assert.Equal(t, []any{istioJob}, entries[0].ContextMap()["jobs"])
}
