package simnode

import (
	"fmt"
	"hash/fnv"
)

// container is one container of a simulated pod.
type container struct {
	name string
	// metricsPort and metricsPath: the endpoint this container serves
	// (empty path: none). Envoy sidecars serve /stats/prometheus, apps and
	// Knative's queue-proxy /metrics.
	metricsPort int
	metricsPath string
}

// pod is one simulated pod on the node.
type pod struct {
	namespace   string
	name        string
	app         string // value of the app label, also the service name
	version     string
	labels      map[string]string
	annotations map[string]string
	containers  []container
}

// uid is a stable, UUID-shaped pod UID derived from the namespace and name.
func (p *pod) uid() string {
	h := fnv.New128a()
	_, _ = h.Write([]byte(p.namespace + "/" + p.name))
	b := h.Sum(nil)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// logDir is the kubelet's directory for the pod's logs:
// <namespace>_<pod>_<uid>.
func (p *pod) logDir() string { return p.namespace + "_" + p.name + "_" + p.uid() }

// Names of the simulated pods, used by the traffic generator.
const (
	podProductpage = iota
	podReviewsV1
	podReviewsV2
	podRatings
	podFunction
)

// istioPod is a bookinfo-style workload with an Envoy sidecar. Istio's
// injector sets sidecar.istio.io/status and, with metrics merging on, rewrites
// prometheus.io/* to the agent's merged endpoint on :15020.
func istioPod(app, version, hash string, appPort int) pod {
	name := app + "-" + version + "-" + hash
	return pod{
		namespace: "bookinfo",
		name:      name,
		app:       app,
		version:   version,
		labels: map[string]string{
			"app":                                 app,
			"version":                             version,
			"security.istio.io/tlsMode":           "istio",
			"service.istio.io/canonical-name":     app,
			"service.istio.io/canonical-revision": version,
		},
		annotations: map[string]string{
			"sidecar.istio.io/status": `{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy","istio-data","istio-podinfo","istio-token","istiod-ca-cert"],"imagePullSecrets":null,"revision":"default"}`,
			"prometheus.io/scrape":    "true",
			"prometheus.io/port":      "15020",
			"prometheus.io/path":      "/stats/prometheus",
		},
		containers: []container{
			{name: app, metricsPort: appPort, metricsPath: "/metrics"},
			{name: "istio-proxy", metricsPort: 15090, metricsPath: "/stats/prometheus"},
		},
	}
}

// knativePod is a Knative Serving revision pod: the user's function and the
// queue-proxy that serves the revision's request metrics on :9091.
func knativePod() pod {
	return pod{
		namespace: "functions",
		name:      "hello-00001-deployment-7d9c8b5f4-x2x9q",
		app:       "hello",
		version:   "00001",
		labels: map[string]string{
			"app":                                         "hello-00001",
			"serving.knative.dev/service":                 "hello",
			"serving.knative.dev/configuration":           "hello",
			"serving.knative.dev/revision":                "hello-00001",
			"serving.knative.dev/revisionUID":             "5b0e0f4c-3c3a-4d0e-9a63-1f1a0c9e0d11",
			"serving.knative.dev/configurationGeneration": "1",
		},
		annotations: map[string]string{
			"prometheus.io/scrape": "true",
			"prometheus.io/port":   "8080",
			"prometheus.io/path":   "/metrics",
		},
		containers: []container{
			{name: "user-container", metricsPort: 8080, metricsPath: "/metrics"},
			{name: "queue-proxy", metricsPort: 9091, metricsPath: "/metrics"},
		},
	}
}

// topology is the simulated node: bookinfo (productpage → reviews v1/v2 →
// ratings) with sidecars, and one Knative function. Indexes match the pod*
// constants.
func topology() []pod {
	return []pod{
		istioPod("productpage", "v1", "6b746f74dc-9stvs", 9080),
		istioPod("reviews", "v1", "545db77b95-2xqtp", 9080),
		istioPod("reviews", "v2", "7bf8c9648f-4xhzk", 9080),
		istioPod("ratings", "v1", "b6994bb9-ltxmd", 9080),
		knativePod(),
	}
}
