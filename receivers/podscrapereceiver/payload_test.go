package podscrapereceiver

import (
	"bytes"
	"fmt"
)

// envoyPayload generates an Envoy /stats/prometheus-like text payload of
// about n series: upstream counters and gauges per cluster and Istio
// request histograms, the shapes and label sets a sidecar serves.
func envoyPayload(n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 160)
	clusters := n / 10
	fmt.Fprintf(&b, "# TYPE envoy_cluster_upstream_rq_total counter\n")
	series := 0
	for c := 0; c < clusters && series < n; c++ {
		for _, code := range []string{"2xx", "4xx", "5xx"} {
			fmt.Fprintf(&b, "envoy_cluster_upstream_rq_total{response_code_class=%q,cluster_name=\"outbound|9080|v%d|svc-%d.ns-%d.svc.cluster.local\"} %d\n",
				code, c%3, c, c%7, (c+1)*len(code)*37)
			series++
		}
	}
	fmt.Fprintf(&b, "# TYPE envoy_cluster_membership_healthy gauge\n")
	for c := 0; c < clusters && series < n; c++ {
		fmt.Fprintf(&b, "envoy_cluster_membership_healthy{cluster_name=\"outbound|9080|v%d|svc-%d.ns-%d.svc.cluster.local\"} %d\n", c%3, c, c%7, c%5)
		series++
	}
	bounds := []string{"0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf"}
	fmt.Fprintf(&b, "# TYPE istio_request_duration_milliseconds histogram\n")
	for i := 0; series < n; i++ {
		lbls := fmt.Sprintf("reporter=\"destination\",source_workload=\"productpage-v%d\",source_workload_namespace=\"default\",destination_workload=\"reviews-v%d\",destination_service=\"reviews-%d.default.svc.cluster.local\",request_protocol=\"http\",response_code=\"%d\",response_flags=\"-\",connection_security_policy=\"mutual_tls\"",
			i%4, i%3, i, 200+i%3*100)
		cum := 0
		for j, le := range bounds {
			if j%3 == 0 {
				cum += i%9 + j
			}
			fmt.Fprintf(&b, "istio_request_duration_milliseconds_bucket{%s,le=%q} %d\n", lbls, le, cum)
		}
		fmt.Fprintf(&b, "istio_request_duration_milliseconds_sum{%s} %d.25\n", lbls, cum*17)
		fmt.Fprintf(&b, "istio_request_duration_milliseconds_count{%s} %d\n", lbls, cum)
		series += len(bounds) + 2
	}
	return b.Bytes()
}
