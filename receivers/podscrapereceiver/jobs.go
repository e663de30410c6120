package podscrapereceiver

import (
	"cmp"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"

	"github.com/weftobs/weft/internal/kube"
)

// job is a scrape job ready to run: a scrape config or a preset.
type job struct {
	name          string
	interval      time.Duration
	timeout       time.Duration
	path          string
	scheme        string
	honorLabels   bool
	limits        scrapeLimits
	bodyLimit     int64
	tls           TLSConfig
	accept        string
	relabel       []*relabel.Config
	metricRelabel []*relabel.Config
	static        []*targetgroup.Group
	// sd are the Kubernetes pod discoveries feeding the job.
	sd []sdKey
}

// sdKey identifies one Kubernetes pod discovery; jobs with equal keys share
// it (one watch per API server and selector set).
type sdKey struct {
	api        kube.APIConfig
	namespaces string
	label      string
	field      string
}

// targetSpec is a target after relabeling.
type targetSpec struct {
	labels   labels.Labels
	url      string
	resource map[string]string
}

func (s *targetSpec) key() string { return s.url + "\xff" + s.labels.String() }

// buildJobs turns the configuration into jobs: the scrape configs, then the
// presets.
func buildJobs(cfg *Config) ([]*job, error) {
	var jobs []*job
	for i := range cfg.ScrapeConfigs {
		sc := &cfg.ScrapeConfigs[i]
		j := &job{
			name:        sc.JobName,
			interval:    sc.ScrapeInterval,
			timeout:     sc.ScrapeTimeout,
			path:        sc.MetricsPath,
			scheme:      sc.Scheme,
			honorLabels: sc.HonorLabels,
			limits: scrapeLimits{
				honorTimestamps: cfg.HonorTimestamps,
				sample:          cmp.Or(sc.SampleLimit, cfg.SampleLimit),
				labels:          cmp.Or(sc.LabelLimit, cfg.LabelLimit),
				nameLength:      cmp.Or(sc.LabelNameLengthLimit, cfg.LabelNameLengthLimit),
				valueLength:     cmp.Or(sc.LabelValueLengthLimit, cfg.LabelValueLengthLimit),
			},
			bodyLimit: sc.BodySizeLimit,
			tls:       sc.TLSConfig,
			accept:    acceptHeader(sc.ScrapeProtocols),
		}
		if sc.HonorTimestamps != nil {
			j.limits.honorTimestamps = *sc.HonorTimestamps
		}
		if j.interval == 0 {
			j.interval = cfg.ScrapeInterval
		}
		if j.timeout == 0 {
			j.timeout = min(cfg.scrapeTimeout(), j.interval)
		}
		if j.bodyLimit == 0 {
			j.bodyLimit = cfg.BodySizeLimit
		}
		if j.path == "" {
			j.path = "/metrics"
		}
		if j.scheme == "" {
			j.scheme = "http"
		}
		var err error
		if j.relabel, err = buildRelabel(sc.RelabelConfigs); err != nil {
			return nil, fmt.Errorf("scrape_configs[%d].relabel_configs: %w", i, err)
		}
		if j.metricRelabel, err = buildRelabel(sc.MetricRelabelConfigs); err != nil {
			return nil, fmt.Errorf("scrape_configs[%d].metric_relabel_configs: %w", i, err)
		}
		for k, st := range sc.StaticConfigs {
			g := &targetgroup.Group{Source: fmt.Sprintf("%s/static/%d", sc.JobName, k), Labels: model.LabelSet{}}
			for n, v := range st.Labels {
				g.Labels[model.LabelName(n)] = model.LabelValue(v)
			}
			for _, t := range st.Targets {
				g.Targets = append(g.Targets, model.LabelSet{model.AddressLabel: model.LabelValue(t)})
			}
			j.static = append(j.static, g)
		}
		for _, sd := range sc.KubernetesSDConfigs {
			// The job's own api_server or kubeconfig_file (Prometheus's
			// keys) replaces the whole kubernetes_api connection.
			key := sdKey{api: kube.APIConfig{APIServer: sd.APIServer, KubeConfigFile: sd.KubeConfigFile}, namespaces: strings.Join(sd.Namespaces.Names, ",")}
			if key.api == (kube.APIConfig{}) {
				key.api = cfg.KubernetesAPI
			}
			var lbl, fld []string
			for _, sel := range sd.Selectors {
				if sel.Label != "" {
					lbl = append(lbl, sel.Label)
				}
				if sel.Field != "" {
					fld = append(fld, sel.Field)
				}
			}
			key.label, key.field = strings.Join(lbl, ","), strings.Join(fld, ",")
			j.sd = append(j.sd, key)
		}
		jobs = append(jobs, j)
	}
	jobs = append(jobs, presetJobs(cfg)...)
	return jobs, nil
}

// targets relabels the discovered groups into the job's targets; targets
// with the same final labels and URL are scraped once (as in Prometheus).
func (j *job) targets(groups []*targetgroup.Group, nodeName string) []*targetSpec {
	seen := map[string]bool{}
	var out []*targetSpec
	lb := labels.NewBuilder(labels.EmptyLabels())
	for _, g := range groups {
		if g == nil {
			continue
		}
		for _, t := range g.Targets {
			lb.Reset(labels.EmptyLabels())
			for n, v := range g.Labels {
				lb.Set(string(n), string(v))
			}
			for n, v := range t {
				lb.Set(string(n), string(v))
			}
			setDefault(lb, model.JobLabel, j.name)
			setDefault(lb, model.SchemeLabel, j.scheme)
			setDefault(lb, model.MetricsPathLabel, j.path)
			setDefault(lb, model.ScrapeIntervalLabel, model.Duration(j.interval).String())
			setDefault(lb, model.ScrapeTimeoutLabel, model.Duration(j.timeout).String())
			meta := lb.Labels()
			if !relabel.ProcessBuilder(lb, j.relabel...) {
				continue
			}
			spec := j.finishTarget(lb, meta, nodeName)
			if spec == nil || seen[spec.key()] {
				continue
			}
			seen[spec.key()] = true
			out = append(out, spec)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].key() < out[b].key() })
	return out
}

func setDefault(lb *labels.Builder, name, value string) {
	if lb.Get(name) == "" {
		lb.Set(name, value)
	}
}

// finishTarget builds the scrape URL, the public labels and the resource
// attributes of a relabeled target; nil if it has no address.
func (j *job) finishTarget(lb *labels.Builder, meta labels.Labels, nodeName string) *targetSpec {
	addr := lb.Get(model.AddressLabel)
	if addr == "" || strings.Contains(addr, "/") {
		return nil
	}
	scheme := lb.Get(model.SchemeLabel)
	if scheme != "https" {
		scheme = "http"
	}
	u := url.URL{Scheme: scheme, Host: addr, Path: lb.Get(model.MetricsPathLabel)}
	q := url.Values{}
	var public []labels.Label
	lb.Range(func(l labels.Label) {
		if p, ok := strings.CutPrefix(l.Name, model.ParamLabelPrefix); ok {
			q.Set(p, l.Value)
		}
		if !strings.HasPrefix(l.Name, model.ReservedLabelPrefix) && l.Value != "" {
			public = append(public, l)
		}
	})
	u.RawQuery = q.Encode()
	lset := labels.New(public...)
	if lset.Get(model.InstanceLabel) == "" {
		lset = labels.NewBuilder(lset).Set(model.InstanceLabel, addr).Labels()
	}
	res := map[string]string{
		model.JobLabel:        lset.Get(model.JobLabel),
		model.InstanceLabel:   lset.Get(model.InstanceLabel),
		"service.instance.id": lset.Get(model.InstanceLabel),
	}
	put := func(k, v string) {
		if v != "" {
			res[k] = v
		}
	}
	put("k8s.pod.name", meta.Get("__meta_kubernetes_pod_name"))
	put("k8s.namespace.name", meta.Get("__meta_kubernetes_namespace"))
	put("k8s.node.name", meta.Get("__meta_kubernetes_pod_node_name"))
	put("k8s.pod.uid", meta.Get("__meta_kubernetes_pod_uid"))
	if res["k8s.node.name"] == "" && res["k8s.pod.name"] != "" {
		put("k8s.node.name", nodeName)
	}
	// The OTel Prometheus compatibility mapping: service.name is the job,
	// service.instance.id the instance, so that remote write (and the
	// store) rebuild exactly the job and instance labels Prometheus stores.
	res["service.name"] = lset.Get(model.JobLabel)
	return &targetSpec{labels: lset, url: u.String(), resource: res}
}
