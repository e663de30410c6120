package podscrapereceiver

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/relabel"
	"go.opentelemetry.io/collector/component"

	"github.com/weftobs/weft/internal/kube"
)

// Config is the pod_scrape receiver's configuration.
type Config struct {
	// ScrapeConfigs are scrape jobs in Prometheus's own syntax (a subset:
	// job_name, static_configs, kubernetes_sd_configs with role pod,
	// relabel_configs, metric_relabel_configs, scrape_interval,
	// scrape_timeout, honor_labels, honor_timestamps, sample_limit,
	// label_limit, label_name_length_limit, label_value_length_limit,
	// body_size_limit,
	// metrics_path, scheme, tls_config).
	ScrapeConfigs []ScrapeConfig `mapstructure:"scrape_configs"`
	// NodeName restricts Kubernetes pod discovery to the pods scheduled on
	// this node (a spec.nodeName field selector). Shipped configs set it to
	// ${env:NODE_NAME}; empty discovers the pods of every node.
	NodeName string `mapstructure:"node_name"`
	// KubernetesAPI is how the presets, the monitors and the
	// kubernetes_sd_configs without their own api_server or kubeconfig_file
	// reach the Kubernetes API (api_server, kubeconfig_file, token_file,
	// ca_file; all empty: the in-cluster service account), with the keys
	// of every weft component that talks to the API.
	KubernetesAPI kube.APIConfig `mapstructure:"kubernetes_api"`
	// IstioSidecars scrapes every Envoy sidecar (istio-proxy container or
	// sidecar.istio.io/status annotation) on :15090/stats/prometheus.
	IstioSidecars bool `mapstructure:"istio_sidecars"`
	// Annotations scrapes pods annotated prometheus.io/scrape: "true" on
	// prometheus.io/port, prometheus.io/path and prometheus.io/scheme.
	Annotations bool `mapstructure:"annotations"`
	// Knative scrapes the queue-proxy (:9091/metrics) of Knative Serving pods.
	Knative bool `mapstructure:"knative"`
	// Monitors are PodMonitor/ServiceMonitor-like selections of pods.
	Monitors []MonitorConfig `mapstructure:"monitors"`
	// ScrapeInterval is the scrape interval of the presets, the monitors and
	// the scrape_configs entries that set none (Prometheus's global one).
	ScrapeInterval time.Duration `mapstructure:"scrape_interval"`
	// ScrapeTimeout is the scrape timeout of the jobs that set none; a job
	// with a shorter interval uses its interval. Unset, it is 10s or
	// scrape_interval if that is shorter, as Prometheus's global default.
	ScrapeTimeout time.Duration `mapstructure:"scrape_timeout"`
	// HonorTimestamps keeps the timestamps that targets expose; false
	// stamps every sample with the scrape's time (Prometheus semantics;
	// default true). The store refuses samples too far ahead of the clock
	// either way.
	HonorTimestamps bool `mapstructure:"honor_timestamps"`
	// SampleLimit is the sample_limit of the jobs that set none (0: none).
	SampleLimit int `mapstructure:"sample_limit"`
	// LabelLimit is the label_limit of the jobs that set none: a scrape
	// with a series of more labels (after relabeling, __name__ included)
	// fails (0: none).
	LabelLimit int `mapstructure:"label_limit"`
	// LabelNameLengthLimit is the label_name_length_limit of the jobs that
	// set none: a scrape with a longer label name fails (0: none).
	LabelNameLengthLimit int `mapstructure:"label_name_length_limit"`
	// LabelValueLengthLimit is the label_value_length_limit of the jobs that
	// set none: a scrape with a longer label value fails (0: none).
	LabelValueLengthLimit int `mapstructure:"label_value_length_limit"`
	// BodySizeLimit is the body_size_limit in bytes of the jobs that set
	// none; it bounds the memory one scrape takes (0: none).
	BodySizeLimit int64 `mapstructure:"body_size_limit"`
	// Appendables are extensions that take the scraped samples directly,
	// as Prometheus's scrape loop appends them (weft_store,
	// weft_remote_write): every scrape of a target is one transaction on
	// each, committed when the scrape succeeds, rolled back (then stale
	// markers and up=0) when it fails. Empty: samples leave only as pdata
	// through the pipeline.
	Appendables []component.ID `mapstructure:"appendables"`
	// PData hands every scrape to the pipeline as pdata too (default
	// true), for the consumers that need it (the prometheus pull
	// exporter, OTLP export). false needs appendables: no pdata is built
	// and the pipeline's exporters get nothing from this receiver.
	PData bool `mapstructure:"pdata"`
}

// defaultScrapeTimeout is Prometheus's global scrape_timeout.
const defaultScrapeTimeout = 10 * time.Second

// scrapeTimeout is the receiver-wide scrape timeout: scrape_timeout when
// set, else 10s or scrape_interval if shorter.
func (c *Config) scrapeTimeout() time.Duration {
	if c.ScrapeTimeout > 0 {
		return c.ScrapeTimeout
	}
	return min(defaultScrapeTimeout, c.ScrapeInterval)
}

// ScrapeConfig is one Prometheus scrape job.
type ScrapeConfig struct {
	// JobName is the job label of every target of this job.
	JobName string `mapstructure:"job_name"`
	// ScrapeInterval is how often each target is scraped (default: the
	// receiver's scrape_interval).
	ScrapeInterval time.Duration `mapstructure:"scrape_interval"`
	// ScrapeTimeout bounds one scrape (default: the receiver's
	// scrape_timeout, at most scrape_interval).
	ScrapeTimeout time.Duration `mapstructure:"scrape_timeout"`
	// MetricsPath is the HTTP path scraped (default /metrics).
	MetricsPath string `mapstructure:"metrics_path"`
	// Scheme is http or https (default http).
	Scheme string `mapstructure:"scheme"`
	// HonorLabels keeps the exposed labels when they clash with target
	// labels; otherwise exposed ones are renamed exported_<name>.
	HonorLabels bool `mapstructure:"honor_labels"`
	// HonorTimestamps keeps exposed timestamps (default: the receiver's
	// honor_timestamps).
	HonorTimestamps *bool `mapstructure:"honor_timestamps"`
	// SampleLimit fails a scrape with more samples than this after metric
	// relabeling (default: the receiver's sample_limit).
	SampleLimit int `mapstructure:"sample_limit"`
	// LabelLimit, LabelNameLengthLimit and LabelValueLengthLimit fail a
	// scrape with a series over them, after relabeling (default: the
	// receiver's).
	LabelLimit            int `mapstructure:"label_limit"`
	LabelNameLengthLimit  int `mapstructure:"label_name_length_limit"`
	LabelValueLengthLimit int `mapstructure:"label_value_length_limit"`
	// BodySizeLimit fails a scrape whose uncompressed body is larger than
	// this many bytes (default: the receiver's body_size_limit).
	BodySizeLimit int64 `mapstructure:"body_size_limit"`
	// TLSConfig configures https scrapes.
	TLSConfig TLSConfig `mapstructure:"tls_config"`
	// ScrapeProtocols are the formats asked for, most preferred first:
	// PrometheusProto, OpenMetricsText1.0.0, OpenMetricsText0.0.1,
	// PrometheusText0.0.4 (default: all, in that order).
	ScrapeProtocols []string `mapstructure:"scrape_protocols"`
	// StaticConfigs are fixed targets.
	StaticConfigs []StaticConfig `mapstructure:"static_configs"`
	// KubernetesSDConfigs discover pods (role pod only).
	KubernetesSDConfigs []KubernetesSDConfig `mapstructure:"kubernetes_sd_configs"`
	// RelabelConfigs rewrite target label sets before scraping.
	RelabelConfigs []RelabelConfig `mapstructure:"relabel_configs"`
	// MetricRelabelConfigs rewrite each scraped series.
	MetricRelabelConfigs []RelabelConfig `mapstructure:"metric_relabel_configs"`
}

// TLSConfig is the subset of Prometheus's tls_config that pod_scrape knows.
type TLSConfig struct {
	// CAFile verifies the target's certificate.
	CAFile string `mapstructure:"ca_file"`
	// CertFile is the client certificate.
	CertFile string `mapstructure:"cert_file"`
	// KeyFile is the client certificate's key.
	KeyFile string `mapstructure:"key_file"`
	// ServerName overrides the name checked in the target's certificate.
	ServerName string `mapstructure:"server_name"`
	// InsecureSkipVerify disables certificate verification.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
}

// StaticConfig is a group of fixed targets.
type StaticConfig struct {
	// Targets are host:port addresses.
	Targets []string `mapstructure:"targets"`
	// Labels are added to every target of the group.
	Labels map[string]string `mapstructure:"labels"`
}

// KubernetesSDConfig is Prometheus's kubernetes_sd_configs entry, role pod.
type KubernetesSDConfig struct {
	// Role must be pod.
	Role string `mapstructure:"role"`
	// APIServer overrides kubernetes_api.api_server for this job.
	APIServer string `mapstructure:"api_server"`
	// KubeConfigFile overrides kubernetes_api.kubeconfig_file for this job.
	KubeConfigFile string `mapstructure:"kubeconfig_file"`
	// Namespaces restricts discovery to these namespaces (empty: all).
	Namespaces NamespaceConfig `mapstructure:"namespaces"`
	// Selectors are extra label/field selectors for pods.
	Selectors []SelectorConfig `mapstructure:"selectors"`
}

// NamespaceConfig lists the namespaces to discover in.
type NamespaceConfig struct {
	// Names of namespaces; empty means all.
	Names []string `mapstructure:"names"`
}

// SelectorConfig is a Kubernetes label and field selector for role pod.
type SelectorConfig struct {
	// Role must be pod.
	Role string `mapstructure:"role"`
	// Label is a label selector (app=foo).
	Label string `mapstructure:"label"`
	// Field is a field selector; spec.nodeName is added from node_name.
	Field string `mapstructure:"field"`
}

// RelabelConfig is one Prometheus relabel rule. Unset fields take
// Prometheus's defaults (separator ";", regex "(.*)", replacement "$1",
// action replace).
type RelabelConfig struct {
	// SourceLabels are concatenated with separator and matched by regex.
	SourceLabels []string `mapstructure:"source_labels"`
	// Separator joins the source label values.
	Separator *string `mapstructure:"separator"`
	// Regex is matched against the joined value (anchored).
	Regex *string `mapstructure:"regex"`
	// Modulus is the hashmod modulus.
	Modulus uint64 `mapstructure:"modulus"`
	// TargetLabel is the label written by replace, hashmod and friends.
	TargetLabel string `mapstructure:"target_label"`
	// Replacement is the value written, with $1-style references.
	Replacement *string `mapstructure:"replacement"`
	// Action is replace, keep, drop, keepequal, dropequal, hashmod,
	// labelmap, labeldrop, labelkeep, lowercase or uppercase.
	Action string `mapstructure:"action"`
}

// MonitorConfig is a PodMonitor/ServiceMonitor-like selection: pods whose
// labels match the selector, scraped on the named container port.
type MonitorConfig struct {
	// Name is the job label of the monitor's targets.
	Name string `mapstructure:"name"`
	// Selector picks pods by their labels.
	Selector LabelSelector `mapstructure:"selector"`
	// Namespaces restricts the monitor to these namespaces (empty: all).
	Namespaces []string `mapstructure:"namespaces"`
	// Port is the container port name (http-metrics) or number to scrape.
	Port string `mapstructure:"port"`
	// Path is the HTTP path (default /metrics).
	Path string `mapstructure:"path"`
	// Scheme is http or https (default http).
	Scheme string `mapstructure:"scheme"`
	// Interval is the scrape interval (default scrape_interval).
	Interval time.Duration `mapstructure:"interval"`
}

// LabelSelector is the matchLabels part of a Kubernetes label selector.
type LabelSelector struct {
	// MatchLabels must all be present on the pod with these values.
	MatchLabels map[string]string `mapstructure:"match_labels"`
}

// Validate checks the configuration and names the offending key.
func (c *Config) Validate() error {
	var errs []error
	names := map[string]bool{}
	for i := range c.ScrapeConfigs {
		sc := &c.ScrapeConfigs[i]
		prefix := fmt.Sprintf("scrape_configs[%d]", i)
		if err := sc.validate(prefix); err != nil {
			errs = append(errs, err)
		}
		if sc.JobName != "" {
			if names[sc.JobName] {
				errs = append(errs, fmt.Errorf("%s.job_name: %q is used twice", prefix, sc.JobName))
			}
			names[sc.JobName] = true
		}
	}
	if c.ScrapeInterval <= 0 {
		errs = append(errs, errors.New("scrape_interval: must be positive"))
	}
	if c.ScrapeTimeout < 0 || c.ScrapeTimeout > c.ScrapeInterval {
		errs = append(errs, errors.New("scrape_timeout: must not be negative and at most scrape_interval (unset: 10s or scrape_interval if shorter)"))
	}
	errs = append(errs, validateLimits("", c.SampleLimit, c.LabelLimit, c.LabelNameLengthLimit, c.LabelValueLengthLimit)...)
	if c.BodySizeLimit < 0 {
		errs = append(errs, errors.New("body_size_limit: must not be negative"))
	}
	for i, m := range c.Monitors {
		prefix := fmt.Sprintf("monitors[%d]", i)
		if m.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: must be set", prefix))
		} else if names[m.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q is already a job name", prefix, m.Name))
		}
		names[m.Name] = true
		if len(m.Selector.MatchLabels) == 0 {
			errs = append(errs, fmt.Errorf("%s.selector.match_labels: must name at least one label", prefix))
		}
		if m.Port == "" {
			errs = append(errs, fmt.Errorf("%s.port: must be a container port name or number", prefix))
		}
		if m.Scheme != "" && m.Scheme != "http" && m.Scheme != "https" {
			errs = append(errs, fmt.Errorf("%s.scheme: %q is not http or https", prefix, m.Scheme))
		}
		if m.Interval < 0 {
			errs = append(errs, fmt.Errorf("%s.interval: must not be negative", prefix))
		}
	}
	for _, preset := range []string{istioJob, annotationsJob, knativeJob} {
		if names[preset] {
			errs = append(errs, fmt.Errorf("scrape_configs: job_name %q is reserved for a preset", preset))
		}
	}
	errs = append(errs, c.KubernetesAPI.Validate("kubernetes_api."))
	seen := map[component.ID]int{}
	for i, id := range c.Appendables {
		if j, ok := seen[id]; ok {
			errs = append(errs, fmt.Errorf("appendables[%d]: %s is listed already (appendables[%d])", i, id, j))
		}
		seen[id] = i
	}
	if !c.PData && len(c.Appendables) == 0 {
		errs = append(errs, errors.New("pdata: false needs appendables (extension IDs such as weft_store), or the scraped samples go nowhere"))
	}
	return errors.Join(errs...)
}

func (sc *ScrapeConfig) validate(prefix string) error {
	var errs []error
	if sc.JobName == "" {
		errs = append(errs, fmt.Errorf("%s.job_name: must be set", prefix))
	}
	if sc.ScrapeInterval < 0 {
		errs = append(errs, fmt.Errorf("%s.scrape_interval: must not be negative", prefix))
	}
	if sc.ScrapeTimeout < 0 {
		errs = append(errs, fmt.Errorf("%s.scrape_timeout: must not be negative", prefix))
	}
	if sc.ScrapeInterval > 0 && sc.ScrapeTimeout > sc.ScrapeInterval {
		errs = append(errs, fmt.Errorf("%s.scrape_timeout: must be at most scrape_interval", prefix))
	}
	if sc.Scheme != "" && sc.Scheme != "http" && sc.Scheme != "https" {
		errs = append(errs, fmt.Errorf("%s.scheme: %q is not http or https", prefix, sc.Scheme))
	}
	if sc.MetricsPath != "" && !strings.HasPrefix(sc.MetricsPath, "/") {
		errs = append(errs, fmt.Errorf("%s.metrics_path: %q must start with /", prefix, sc.MetricsPath))
	}
	for j, p := range sc.ScrapeProtocols {
		if _, ok := protocolMediaTypes[p]; !ok {
			errs = append(errs, fmt.Errorf("%s.scrape_protocols[%d]: %q is not one of PrometheusProto, OpenMetricsText1.0.0, OpenMetricsText0.0.1, PrometheusText0.0.4", prefix, j, p))
		}
	}
	errs = append(errs, validateLimits(prefix+".", sc.SampleLimit, sc.LabelLimit, sc.LabelNameLengthLimit, sc.LabelValueLengthLimit)...)
	if sc.BodySizeLimit < 0 {
		errs = append(errs, fmt.Errorf("%s.body_size_limit: must not be negative", prefix))
	}
	if len(sc.StaticConfigs) == 0 && len(sc.KubernetesSDConfigs) == 0 {
		errs = append(errs, fmt.Errorf("%s: needs static_configs or kubernetes_sd_configs", prefix))
	}
	for j, st := range sc.StaticConfigs {
		for k, t := range st.Targets {
			if t == "" || strings.Contains(t, "/") {
				errs = append(errs, fmt.Errorf("%s.static_configs[%d].targets[%d]: %q is not host:port", prefix, j, k, t))
			}
		}
		for name := range st.Labels {
			if !model.LegacyValidation.IsValidLabelName(name) {
				errs = append(errs, fmt.Errorf("%s.static_configs[%d].labels: %q is not a valid label name", prefix, j, name))
			}
		}
	}
	for j, sd := range sc.KubernetesSDConfigs {
		api := kube.APIConfig{APIServer: sd.APIServer, KubeConfigFile: sd.KubeConfigFile}
		errs = append(errs, api.Validate(fmt.Sprintf("%s.kubernetes_sd_configs[%d].", prefix, j)))
		if sd.Role != "pod" {
			errs = append(errs, fmt.Errorf("%s.kubernetes_sd_configs[%d].role: %q is not supported (only pod)", prefix, j, sd.Role))
		}
		for k, sel := range sd.Selectors {
			if sel.Role != "pod" {
				errs = append(errs, fmt.Errorf("%s.kubernetes_sd_configs[%d].selectors[%d].role: %q is not supported (only pod)", prefix, j, k, sel.Role))
			}
		}
	}
	for j := range sc.RelabelConfigs {
		if _, err := sc.RelabelConfigs[j].build(); err != nil {
			errs = append(errs, fmt.Errorf("%s.relabel_configs[%d]: %w", prefix, j, err))
		}
	}
	for j := range sc.MetricRelabelConfigs {
		if _, err := sc.MetricRelabelConfigs[j].build(); err != nil {
			errs = append(errs, fmt.Errorf("%s.metric_relabel_configs[%d]: %w", prefix, j, err))
		}
	}
	return errors.Join(errs...)
}

// build turns the rule into Prometheus's relabel.Config, with Prometheus's
// defaults and validation.
func (r *RelabelConfig) build() (*relabel.Config, error) {
	c := relabel.DefaultRelabelConfig
	c.NameValidationScheme = model.LegacyValidation
	for _, s := range r.SourceLabels {
		c.SourceLabels = append(c.SourceLabels, model.LabelName(s))
	}
	if r.Separator != nil {
		c.Separator = *r.Separator
	}
	if r.Regex != nil {
		re, err := relabel.NewRegexp(*r.Regex)
		if err != nil {
			return nil, fmt.Errorf("regex: %w", err)
		}
		c.Regex = re
	}
	c.Modulus = r.Modulus
	c.TargetLabel = r.TargetLabel
	if r.Replacement != nil {
		c.Replacement = *r.Replacement
	}
	if r.Action != "" {
		act := relabel.Action(strings.ToLower(r.Action))
		switch act {
		case relabel.Replace, relabel.Keep, relabel.Drop, relabel.HashMod, relabel.LabelMap, relabel.LabelDrop,
			relabel.LabelKeep, relabel.Lowercase, relabel.Uppercase, relabel.KeepEqual, relabel.DropEqual:
			c.Action = act
		default:
			return nil, fmt.Errorf("action: %q is not one of replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase, uppercase", r.Action)
		}
	}
	if err := c.Validate(model.LegacyValidation); err != nil {
		return nil, err
	}
	return &c, nil
}

func buildRelabel(rules []RelabelConfig) ([]*relabel.Config, error) {
	out := make([]*relabel.Config, 0, len(rules))
	for i := range rules {
		c, err := rules[i].build()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// limits are the receiver-wide per-scrape limits.
func (c *Config) limits() scrapeLimits {
	return scrapeLimits{
		honorTimestamps: c.HonorTimestamps,
		sample:          c.SampleLimit,
		labels:          c.LabelLimit,
		nameLength:      c.LabelNameLengthLimit,
		valueLength:     c.LabelValueLengthLimit,
	}
}

// validateLimits checks that the per-scrape limits are not negative; prefix
// names the job ("scrape_configs[0].") or is empty for the receiver's.
func validateLimits(prefix string, sample, label, nameLen, valueLen int) []error {
	var errs []error
	for _, l := range []struct {
		key string
		v   int
	}{{"sample_limit", sample}, {"label_limit", label}, {"label_name_length_limit", nameLen}, {"label_value_length_limit", valueLen}} {
		if l.v < 0 {
			errs = append(errs, fmt.Errorf("%s%s: must not be negative (0: no limit)", prefix, l.key))
		}
	}
	return errs
}
