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

// pod is one simulated pod: a replica of one deployment, on one node.
type pod struct {
	deployment  int // dep* constant
	node        int // index of the simulated node it runs on
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

// The simulated deployments, used by the traffic generator. Every node runs
// one replica of each (see topology).
const (
	depProductpage = iota
	depReviewsV1
	depReviewsV2
	depRatings
	depFunction
	numDeployments
)

// MaxNodes is the largest number of simulated nodes.
const MaxNodes = 9

// istioPod is a bookinfo-style workload with an Envoy sidecar. Istio's
// injector sets sidecar.istio.io/status and, with metrics merging on, rewrites
// prometheus.io/* to the agent's merged endpoint on :15020.
func istioPod(app, version, rsHash, podSuffix string, appPort int) pod {
	name := app + "-" + version + "-" + rsHash + "-" + podSuffix
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
func knativePod(podSuffix string) pod {
	return pod{
		namespace: "functions",
		name:      "hello-00001-deployment-7d9c8b5f4-" + podSuffix,
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

// topology is the simulated cluster: bookinfo (productpage → reviews v1/v2
// → ratings) with sidecars, and one Knative function, one replica of each
// on every node, as a scheduler spreading N-replica deployments over N
// nodes places them. Pod i runs on node i/numDeployments and is a replica
// of deployment i%numDeployments; with one node the indexes are the dep*
// constants and the pods are those of the single-node demo.
func topology(nodes int) []pod {
	var pods []pod
	for node := range nodes {
		// Replica 0 keeps the single-node demo's pod names; the others
		// get a suffix of their own, as the ReplicaSet controller does.
		suffix := func(base string) string {
			if node == 0 {
				return base
			}
			return podSuffix(base, node)
		}
		for dep, p := range []pod{
			istioPod("productpage", "v1", "6b746f74dc", suffix("9stvs"), 9080),
			istioPod("reviews", "v1", "545db77b95", suffix("2xqtp"), 9080),
			istioPod("reviews", "v2", "7bf8c9648f", suffix("4xhzk"), 9080),
			istioPod("ratings", "v1", "b6994bb9", suffix("ltxmd"), 9080),
			knativePod(suffix("x2x9q")),
		} {
			p.deployment, p.node = dep, node
			pods = append(pods, p)
		}
	}
	return pods
}

// podSuffixAlphabet is the alphabet of the random suffix Kubernetes gives a
// ReplicaSet's pods (no vowels, no look-alike digits).
const podSuffixAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// podSuffix is a stable 5-character pod name suffix for replica node of
// the deployment whose first replica has suffix base.
func podSuffix(base string, node int) string {
	h := fnv.New64a()
	_, _ = fmt.Fprintf(h, "%s/%d", base, node)
	v := h.Sum64()
	b := make([]byte, 5)
	for i := range b {
		b[i] = podSuffixAlphabet[v%uint64(len(podSuffixAlphabet))]
		v /= uint64(len(podSuffixAlphabet))
	}
	return string(b)
}
