// Package podscrape implements the pod_scrape receiver: it scrapes the
// Prometheus and OpenMetrics endpoints of this node's pods (Envoy sidecars,
// function pods, Knative queue-proxies, annotated pods, static targets)
// with Prometheus semantics (relabeling, staleness, limits, exemplars,
// honor_timestamps) and emits the samples as pdata metrics whose names and
// labels are the exposed ones, and/or appends them straight into the
// storage.Appendables of extensions such as weft_store (appendables).
// Targets come from static configuration or from pod discovery over the
// Kubernetes API, restricted to the node.
package podscrapereceiver
