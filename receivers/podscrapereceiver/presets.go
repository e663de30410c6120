package podscrapereceiver

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/relabel"
)

// Job names of the presets.
const (
	istioJob       = "istio-sidecars"
	annotationsJob = "pod-annotations"
	knativeJob     = "knative-queue-proxy"
)

// Meta labels of Prometheus's Kubernetes pod role used by the presets.
const (
	metaNamespace     = "__meta_kubernetes_namespace"
	metaPodName       = "__meta_kubernetes_pod_name"
	metaPodIP         = "__meta_kubernetes_pod_ip"
	metaPodPhase      = "__meta_kubernetes_pod_phase"
	metaContainer     = "__meta_kubernetes_pod_container_name"
	metaPortName      = "__meta_kubernetes_pod_container_port_name"
	metaPortNumber    = "__meta_kubernetes_pod_container_port_number"
	metaIstioStatus   = "__meta_kubernetes_pod_annotationpresent_sidecar_istio_io_status"
	metaPromScrape    = "__meta_kubernetes_pod_annotation_prometheus_io_scrape"
	metaPromPort      = "__meta_kubernetes_pod_annotation_prometheus_io_port"
	metaPromPortSet   = "__meta_kubernetes_pod_annotationpresent_prometheus_io_port"
	metaPromPath      = "__meta_kubernetes_pod_annotation_prometheus_io_path"
	metaPromScheme    = "__meta_kubernetes_pod_annotation_prometheus_io_scheme"
	metaKnativeRev    = "__meta_kubernetes_pod_labelpresent_serving_knative_dev_revision"
	istioMergedPort   = "15020"
	istioEnvoyPort    = "15090"
	knativeMetricPort = "9091"
)

// rule builds one relabel rule; it panics on a bad regex, which only a
// programming error here can cause.
func rule(action relabel.Action, source []string, regex, target, replacement string) *relabel.Config {
	c := relabel.DefaultRelabelConfig
	c.NameValidationScheme = model.LegacyValidation
	c.Action = action
	c.SourceLabels = nil
	for _, s := range source {
		c.SourceLabels = append(c.SourceLabels, model.LabelName(s))
	}
	if regex != "" {
		c.Regex = relabel.MustNewRegexp(regex)
	}
	c.TargetLabel = target
	if replacement != "" {
		c.Replacement = replacement
	}
	return &c
}

// runningPod keeps targets of pods that have an IP and are not finished.
func runningPod() []*relabel.Config {
	return []*relabel.Config{
		rule(relabel.Drop, []string{metaPodPhase}, "Succeeded|Failed", "", ""),
		rule(relabel.Keep, []string{metaPodIP}, ".+", "", ""),
	}
}

// addressOn sets __address__ to the pod IP and a fixed port (IPv6 in
// brackets).
func addressOn(port string) []*relabel.Config {
	return []*relabel.Config{
		rule(relabel.Replace, []string{metaPodIP}, "([^:]+)", model.AddressLabel, "${1}:"+port),
		rule(relabel.Replace, []string{metaPodIP}, "(.+:.+)", model.AddressLabel, "[${1}]:"+port),
	}
}

// podLabels gives every preset target namespace and pod labels, as the
// usual kubernetes-pods job does.
func podLabels() []*relabel.Config {
	return []*relabel.Config{
		rule(relabel.Replace, []string{metaNamespace}, "", "namespace", ""),
		rule(relabel.Replace, []string{metaPodName}, "", "pod", ""),
	}
}

// istioRules: the Envoy sidecar of every pod with an istio-proxy container
// or Istio's injection status annotation, on :15090/stats/prometheus. When
// the annotations preset is on and Istio's metrics merging pointed
// prometheus.io/port at the agent's :15020 (which serves Envoy's and the
// application's metrics merged), the annotations job scrapes that pod and
// this one leaves it alone, so no series is scraped twice.
func istioRules(withAnnotations bool) []*relabel.Config {
	rules := []*relabel.Config{
		rule(relabel.Keep, []string{metaContainer, metaIstioStatus}, "istio-proxy;.*|.*;true", "", ""),
	}
	if withAnnotations {
		rules = append(rules, rule(relabel.Drop, []string{metaPromScrape, metaPromPort}, "true;"+istioMergedPort, "", ""))
	}
	rules = append(rules, runningPod()...)
	rules = append(rules, addressOn(istioEnvoyPort)...)
	rules = append(rules, rule(relabel.Replace, nil, "", model.MetricsPathLabel, "/stats/prometheus"))
	return append(rules, podLabels()...)
}

// annotationRules: pods annotated prometheus.io/scrape: "true", on the
// annotated port, path and scheme. Without a port annotation every declared
// container port is scraped, except the sidecars' (istio-proxy,
// queue-proxy), which their own presets cover.
func annotationRules() []*relabel.Config {
	rules := []*relabel.Config{
		rule(relabel.Keep, []string{metaPromScrape}, "true", "", ""),
		rule(relabel.Drop, []string{metaPromPortSet, metaContainer}, ";(istio-proxy|queue-proxy)", "", ""),
	}
	rules = append(rules, runningPod()...)
	rules = append(rules,
		rule(relabel.Replace, []string{metaPodIP, metaPromPort}, `([^:]+);(\d+)`, model.AddressLabel, "${1}:${2}"),
		rule(relabel.Replace, []string{metaPodIP, metaPromPort}, `(.+:.+);(\d+)`, model.AddressLabel, "[${1}]:${2}"),
		rule(relabel.Replace, []string{metaPromPath}, "(.+)", model.MetricsPathLabel, ""),
		rule(relabel.Replace, []string{metaPromScheme}, "(https?)", model.SchemeLabel, ""),
	)
	return append(rules, podLabels()...)
}

// knativeRules: the queue-proxy of every Knative Serving pod, on :9091.
func knativeRules() []*relabel.Config {
	rules := []*relabel.Config{
		rule(relabel.Keep, []string{metaKnativeRev, metaContainer}, "true;queue-proxy", "", ""),
	}
	rules = append(rules, runningPod()...)
	rules = append(rules, addressOn(knativeMetricPort)...)
	rules = append(rules, rule(relabel.Replace, nil, "", model.MetricsPathLabel, "/metrics"))
	return append(rules, podLabels()...)
}

// monitorRules: pods whose labels match the selector, on the named (or
// numbered) container port.
func monitorRules(m MonitorConfig) []*relabel.Config {
	var rules []*relabel.Config
	keys := make([]string, 0, len(m.Selector.MatchLabels))
	for k := range m.Selector.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rules = append(rules, rule(relabel.Keep, []string{"__meta_kubernetes_pod_label_" + sanitize(k)},
			regexp.QuoteMeta(m.Selector.MatchLabels[k]), "", ""))
	}
	if len(m.Namespaces) > 0 {
		quoted := make([]string, len(m.Namespaces))
		for i, n := range m.Namespaces {
			quoted[i] = regexp.QuoteMeta(n)
		}
		rules = append(rules, rule(relabel.Keep, []string{metaNamespace}, strings.Join(quoted, "|"), "", ""))
	}
	if _, err := strconv.Atoi(m.Port); err == nil {
		rules = append(rules, rule(relabel.Keep, []string{metaPortNumber}, regexp.QuoteMeta(m.Port), "", ""))
	} else {
		rules = append(rules, rule(relabel.Keep, []string{metaPortName}, regexp.QuoteMeta(m.Port), "", ""))
	}
	rules = append(rules, runningPod()...)
	rules = append(rules, podLabels()...)
	return append(rules, rule(relabel.Replace, []string{metaContainer}, "", "container", ""))
}

// sanitize turns a Kubernetes label name into the Prometheus label suffix
// discovery uses.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// presetJobs builds the jobs of the enabled presets and monitors; they all
// share one pod discovery.
func presetJobs(cfg *Config) []*job {
	key := sdKey{api: cfg.KubernetesAPI}
	base := func(name string, rules []*relabel.Config) *job {
		return &job{
			name:      name,
			interval:  cfg.ScrapeInterval,
			timeout:   cfg.scrapeTimeout(),
			path:      "/metrics",
			scheme:    "http",
			limits:    cfg.limits(),
			bodyLimit: cfg.BodySizeLimit,
			relabel:   rules,
			sd:        []sdKey{key},
			accept:    acceptHeader(nil),
		}
	}
	var jobs []*job
	if cfg.IstioSidecars {
		jobs = append(jobs, base(istioJob, istioRules(cfg.Annotations)))
	}
	if cfg.Annotations {
		jobs = append(jobs, base(annotationsJob, annotationRules()))
	}
	if cfg.Knative {
		jobs = append(jobs, base(knativeJob, knativeRules()))
	}
	for _, m := range cfg.Monitors {
		j := base(m.Name, monitorRules(m))
		if m.Path != "" {
			j.path = m.Path
		}
		if m.Scheme != "" {
			j.scheme = m.Scheme
		}
		if m.Interval > 0 {
			j.interval = m.Interval
			j.timeout = min(j.timeout, m.Interval)
		}
		jobs = append(jobs, j)
	}
	return jobs
}
