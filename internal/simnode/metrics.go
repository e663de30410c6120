package simnode

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// istioDurationBuckets are Istio's default buckets for
// istio_request_duration_milliseconds.
var istioDurationBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

var istioLabels = []string{
	"reporter", "source_workload", "source_workload_namespace", "source_app", "source_version",
	"source_canonical_service", "destination_workload", "destination_workload_namespace",
	"destination_app", "destination_version", "destination_service", "destination_service_name",
	"destination_service_namespace", "destination_canonical_service", "request_protocol",
	"response_code", "response_flags", "connection_security_policy",
}

// meshMetrics is what an Envoy sidecar serves on :15090/stats/prometheus
// (text format; Envoy serves no exemplars).
type meshMetrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	upstreamRq *prometheus.CounterVec
}

func newMeshMetrics(started time.Time) *meshMetrics {
	m := &meshMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_requests_total", Help: "Requests seen by the sidecar.",
		}, istioLabels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "istio_request_duration_milliseconds", Help: "Request duration.", Buckets: istioDurationBuckets,
		}, istioLabels),
		upstreamRq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envoy_cluster_upstream_rq_total", Help: "Upstream requests per cluster.",
		}, []string{"cluster_name"}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.upstreamRq,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "envoy_server_live", Help: "1 when the server is live."},
			func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "envoy_server_uptime", Help: "Server uptime in seconds."},
			func() float64 { return time.Since(started).Seconds() }),
	)
	return m
}

// record counts one request between two pods, as reported by one side.
func (m *meshMetrics) record(reporter string, src, dst *pod, code int, dur time.Duration) {
	svc := dst.app + "." + dst.namespace + ".svc.cluster.local"
	values := []string{
		reporter, src.app + "-" + src.version, src.namespace, src.app, src.version, src.app,
		dst.app + "-" + dst.version, dst.namespace, dst.app, dst.version, svc, dst.app,
		dst.namespace, dst.app, "http", strconv.Itoa(code), "-", "mutual_tls",
	}
	m.requests.WithLabelValues(values...).Inc()
	m.duration.WithLabelValues(values...).Observe(float64(dur) / float64(time.Millisecond))
	if reporter == "source" {
		m.upstreamRq.WithLabelValues("outbound|9080||" + svc).Inc()
	}
}

// appMetrics is what an application container serves on /metrics: request
// counts and durations with the trace of the request as an OpenMetrics
// exemplar.
type appMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newAppMetrics() *appMetrics {
	m := &appMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests handled.",
		}, []string{"method", "path", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "HTTP request duration.", Buckets: prometheus.DefBuckets,
		}, []string{"method", "path"}),
	}
	m.reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *appMetrics) record(method, path string, status int, dur time.Duration, traceID, spanID string) {
	ex := prometheus.Labels{"trace_id": traceID, "span_id": spanID}
	m.requests.WithLabelValues(method, path, strconv.Itoa(status)).(prometheus.ExemplarAdder).AddWithExemplar(1, ex)
	m.duration.WithLabelValues(method, path).(prometheus.ExemplarObserver).ObserveWithExemplar(dur.Seconds(), ex)
}

// revisionMetrics is what Knative's queue-proxy serves on :9091/metrics.
type revisionMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

var revisionLabels = []string{
	"configuration_name", "container_name", "namespace_name", "pod_name",
	"response_code", "response_code_class", "revision_name", "service_name",
}

func newRevisionMetrics() *revisionMetrics {
	m := &revisionMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "revision_request_count", Help: "The number of requests that are routed to queue-proxy.",
		}, revisionLabels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "revision_request_latencies", Help: "The response time in millisecond.",
			Buckets: prometheus.ExponentialBuckets(5, 2, 10),
		}, revisionLabels),
	}
	m.reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *revisionMetrics) record(p *pod, code int, dur time.Duration) {
	values := []string{
		p.labels["serving.knative.dev/configuration"], "queue-proxy", p.namespace, p.name,
		strconv.Itoa(code), strconv.Itoa(code/100) + "xx", p.labels["serving.knative.dev/revision"],
		p.labels["serving.knative.dev/service"],
	}
	m.requests.WithLabelValues(values...).Inc()
	m.latency.WithLabelValues(values...).Observe(float64(dur) / float64(time.Millisecond))
}
