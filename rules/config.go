package rules

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"text/template"
	"time"

	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/weftobs/weft/internal/kube"
)

// Config is the rules engine's configuration: every key of the weft_rules
// extension except store, which the extension (extensions/weftrulesextension)
// squashes into its own config. The mapstructure tags are the YAML keys.
type Config struct {
	// RuleFiles lists rule sources: files, directories (every *.yaml / *.yml
	// in them) and globs. Each file holds either Prometheus rule groups or
	// PrometheusRule manifests (monitoring.coreos.com/v1, several documents
	// allowed).
	RuleFiles []string `mapstructure:"rule_files"`
	// NameValidation is the syntax of the metric and label names rules may
	// use: "utf8" (default) accepts every UTF-8 name, as the Prometheus 3
	// parser does ({"my.metric"}); "legacy" refuses names outside
	// [a-zA-Z_:][a-zA-Z0-9_:]* (label names without ':') when rules load,
	// for rules shared with Prometheus 2.x or Alertmanager < 0.27.
	NameValidation string `mapstructure:"name_validation"`
	// EvaluationInterval is the interval of groups that set none (default 15s).
	EvaluationInterval time.Duration `mapstructure:"evaluation_interval"`
	// ReloadInterval is how often the rule files are checked for changes;
	// a changed set is loaded and swapped in (default 30s; 0 disables).
	ReloadInterval time.Duration `mapstructure:"reload_interval"`
	// ResendDelay is the minimum time before a still-firing alert is sent
	// again (default 1m, as Prometheus's --rules.alert.resend-delay).
	ResendDelay time.Duration `mapstructure:"resend_delay"`
	// ForGracePeriod is the minimum 'for' time an alert keeps after a
	// restart: pending state restored from ALERTS_FOR_STATE is only used
	// for rules whose 'for' is at least this long (default 10m, as
	// Prometheus's --rules.alert.for-grace-period).
	ForGracePeriod time.Duration `mapstructure:"for_grace_period"`
	// OutageTolerance is how long a restart may take for pending state to
	// be restored (default 1h, as --rules.alert.for-outage-tolerance).
	OutageTolerance time.Duration `mapstructure:"outage_tolerance"`
	// Kubernetes adds the PrometheusRule objects of the Kubernetes API to
	// the rule sources, kept current by list and watch (a change reloads).
	Kubernetes KubernetesConfig `mapstructure:"kubernetes"`
	// Alertmanagers receive alerts through the Alertmanager v2 API.
	Alertmanagers []AlertmanagerConfig `mapstructure:"alertmanagers"`
	// Webhooks receive alerts as Alertmanager webhook JSON (version 4),
	// POSTed to each URL.
	Webhooks []string `mapstructure:"webhooks"`
	// ExternalLabels are added to every alert (and usable in templates as
	// $externalLabels).
	ExternalLabels map[string]string `mapstructure:"external_labels"`
	// ExternalURL is the base of each alert's generatorURL.
	ExternalURL string `mapstructure:"external_url"`
	// Evidence controls the trace IDs, log lines and links attached to
	// firing alerts.
	Evidence EvidenceConfig `mapstructure:"evidence"`
	// Scope tunes how each rule's scope (node or cluster) is decided.
	Scope ScopeConfig `mapstructure:"scope"`
}

// ScopeConfig tunes the scope analysis (rules/README.md, "Scope and
// split"). `weft rules split` must be given the same values
// (--partition-label, --object-metric), or the partial names it writes
// differ from those the nodes record.
type ScopeConfig struct {
	// PartitionLabels are labels, besides node, pod and instance, whose
	// values each belong to one node (e.g. kubernetes_node, hostname).
	PartitionLabels []string `mapstructure:"partition_labels"`
	// ObjectMetrics are regular expressions (anchored) of metric names
	// whose series describe objects anywhere in the cluster, so that
	// their pod, node and instance labels do not tell the node that
	// stores them (default ["kube_.*"], kube-state-metrics).
	ObjectMetrics []string `mapstructure:"object_metrics"`
	// ClusterRules says who evaluates cluster rules: "ruler" (default: a
	// ruler over Thanos Query, fed by `weft rules split`; the node
	// evaluates only their partials) or "node" (every node evaluates
	// them over its own data as if they were node rules: for a
	// single-node cluster, or until a ruler runs).
	ClusterRules string `mapstructure:"cluster_rules"`
}

// Values of scope.cluster_rules.
const (
	clusterRulesRuler = "ruler"
	clusterRulesNode  = "node"
)

// options are the scope analysis settings of c.
func (c ScopeConfig) options() ScopeOptions {
	return ScopeOptions{PartitionLabels: c.PartitionLabels, ObjectMetrics: c.ObjectMetrics}
}

// Values of name_validation.
const (
	nameValidationUTF8   = "utf8"
	nameValidationLegacy = "legacy"
)

// nameScheme is the name validation scheme rules are loaded with.
func (c *Config) nameScheme() model.ValidationScheme {
	if c.NameValidation == nameValidationLegacy {
		return model.LegacyValidation
	}
	return model.UTF8Validation
}

// AlertmanagerConfig is one Alertmanager, reached at URL.
type AlertmanagerConfig struct {
	// URL is the Alertmanager's base URL (http or https, optional path
	// prefix); alerts are POSTed to <url>/api/v2/alerts.
	URL string `mapstructure:"url"`
	// BasicAuth authenticates with a user name and password.
	BasicAuth *BasicAuth `mapstructure:"basic_auth"`
	// BearerToken is sent as "Authorization: Bearer <token>".
	BearerToken configopaque.String `mapstructure:"bearer_token"`
	// BearerTokenFile is read for the bearer token on every request.
	BearerTokenFile string `mapstructure:"bearer_token_file"`
	// TLS configures the client side of https connections.
	TLS TLSConfig `mapstructure:"tls"`
	// Timeout bounds one push (0: 10s).
	Timeout time.Duration `mapstructure:"timeout"`
}

// KubernetesConfig selects PrometheusRule objects from the Kubernetes API.
type KubernetesConfig struct {
	// Enabled turns the Kubernetes source on (default false).
	Enabled bool `mapstructure:"enabled"`
	// APIConfig is how to reach the API server: api_server,
	// kubeconfig_file, token_file, ca_file, the keys of pod_scrape's
	// kubernetes_api (all empty: the in-cluster service account).
	kube.APIConfig `mapstructure:",squash"`
	// Namespaces to list and watch; empty: all namespaces.
	Namespaces []string `mapstructure:"namespaces"`
	// LabelSelector filters the objects (Kubernetes label selector syntax).
	LabelSelector string `mapstructure:"label_selector"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	// Username is the user name.
	Username string `mapstructure:"username"`
	// Password is the password.
	Password configopaque.String `mapstructure:"password"`
	// PasswordFile is read for the password instead of Password.
	PasswordFile string `mapstructure:"password_file"`
}

// TLSConfig is the client TLS configuration.
type TLSConfig struct {
	// CAFile verifies the server certificate (default: system roots).
	CAFile string `mapstructure:"ca_file"`
	// CertFile is the client certificate, with KeyFile.
	CertFile string `mapstructure:"cert_file"`
	// KeyFile is the client key, with CertFile.
	KeyFile string `mapstructure:"key_file"`
	// ServerName overrides the name checked in the server certificate.
	ServerName string `mapstructure:"server_name"`
	// InsecureSkipVerify disables server certificate verification.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
}

// EvidenceConfig controls alert evidence.
type EvidenceConfig struct {
	// MaxTraces is the number of failing trace IDs attached to a firing
	// alert (default 3; 0 turns evidence off).
	MaxTraces int `mapstructure:"max_traces"`
	// MaxLogLines is the number of log lines attached per trace (default 3).
	MaxLogLines int `mapstructure:"max_log_lines"`
	// LinkTemplate builds a link per trace ID with Go text/template; the
	// data has .TraceID (hex) and .Labels (the alert's labels), e.g.
	// "http://jaeger:16686/trace/{{ .TraceID }}". Empty: no links.
	LinkTemplate string `mapstructure:"link_template"`
	// Timeout bounds the evidence lookup of one notification (default
	// 100ms); an alert whose lookup is not done in time goes out without
	// evidence, which is attached to its next resend.
	Timeout time.Duration `mapstructure:"timeout"`
}

// DefaultConfig returns the engine's defaults (the weft_rules extension's
// createDefaultConfig uses them).
func DefaultConfig() Config {
	return Config{
		NameValidation:     nameValidationUTF8,
		EvaluationInterval: 15 * time.Second,
		ReloadInterval:     30 * time.Second,
		ResendDelay:        time.Minute,
		ForGracePeriod:     10 * time.Minute,
		OutageTolerance:    time.Hour,
		Evidence: EvidenceConfig{
			MaxTraces:   3,
			MaxLogLines: 3,
			Timeout:     100 * time.Millisecond,
		},
		Scope: ScopeConfig{ObjectMetrics: slices.Clone(DefaultObjectMetrics), ClusterRules: clusterRulesRuler},
	}
}

// Check checks the configuration and names the offending keys. It is not
// called Validate so that the collector, which walks the weft_rules config
// and calls every Validate it finds, does not run it twice (the extension's
// Validate calls it).
func (c *Config) Check() error {
	var errs []error
	for i, p := range c.RuleFiles {
		if p == "" {
			errs = append(errs, fmt.Errorf("rule_files[%d]: must not be empty", i))
		} else if _, err := filepath.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("rule_files[%d]: bad pattern %q: %w", i, p, err))
		}
	}
	switch c.NameValidation {
	case nameValidationUTF8:
	case nameValidationLegacy:
		for _, k := range slices.Sorted(maps.Keys(c.ExternalLabels)) {
			if k != "" && !model.LegacyValidation.IsValidLabelName(k) {
				errs = append(errs, fmt.Errorf("external_labels: %q is not a legacy label name (name_validation: legacy)", k))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("name_validation: must be %q or %q, got %q", nameValidationUTF8, nameValidationLegacy, c.NameValidation))
	}
	if c.EvaluationInterval <= 0 {
		errs = append(errs, fmt.Errorf("evaluation_interval: must be positive, got %s", c.EvaluationInterval))
	}
	if c.ReloadInterval < 0 {
		errs = append(errs, fmt.Errorf("reload_interval: must be 0 (off) or positive, got %s", c.ReloadInterval))
	}
	if c.ResendDelay < 0 {
		errs = append(errs, fmt.Errorf("resend_delay: must not be negative, got %s", c.ResendDelay))
	}
	if c.ForGracePeriod < 0 {
		errs = append(errs, fmt.Errorf("for_grace_period: must not be negative, got %s", c.ForGracePeriod))
	}
	if c.OutageTolerance <= 0 {
		errs = append(errs, fmt.Errorf("outage_tolerance: must be positive, got %s", c.OutageTolerance))
	}
	if c.Kubernetes.Enabled {
		if err := c.Kubernetes.APIConfig.Validate("kubernetes."); err != nil {
			errs = append(errs, err)
		}
		seen := map[string]bool{}
		for i, ns := range c.Kubernetes.Namespaces {
			switch {
			case ns == "":
				errs = append(errs, fmt.Errorf("kubernetes.namespaces[%d]: empty (leave the list empty for all namespaces)", i))
			case seen[ns]:
				errs = append(errs, fmt.Errorf("kubernetes.namespaces[%d]: %q listed twice", i, ns))
			}
			seen[ns] = true
		}
	}
	for i, am := range c.Alertmanagers {
		errs = append(errs, am.validate(fmt.Sprintf("alertmanagers[%d]", i)))
	}
	for i, w := range c.Webhooks {
		if err := checkHTTPURL(w); err != nil {
			errs = append(errs, fmt.Errorf("webhooks[%d]: %w", i, err))
		}
	}
	for k := range c.ExternalLabels {
		if k == "" || k == "__name__" {
			errs = append(errs, fmt.Errorf("external_labels: invalid label name %q", k))
		}
	}
	if c.ExternalURL != "" {
		if err := checkHTTPURL(c.ExternalURL); err != nil {
			errs = append(errs, fmt.Errorf("external_url: %w", err))
		}
	}
	if c.Evidence.MaxTraces < 0 {
		errs = append(errs, fmt.Errorf("evidence.max_traces: must be 0 (off) or positive, got %d", c.Evidence.MaxTraces))
	}
	if c.Evidence.MaxLogLines < 0 {
		errs = append(errs, fmt.Errorf("evidence.max_log_lines: must not be negative, got %d", c.Evidence.MaxLogLines))
	}
	if c.Evidence.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("evidence.timeout: must be positive, got %s", c.Evidence.Timeout))
	}
	errs = append(errs, c.Scope.check())
	if c.Evidence.LinkTemplate != "" {
		if _, err := template.New("link").Option("missingkey=error").Parse(c.Evidence.LinkTemplate); err != nil {
			errs = append(errs, fmt.Errorf("evidence.link_template: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (am *AlertmanagerConfig) validate(key string) error {
	var errs []error
	if err := checkHTTPURL(am.URL); err != nil {
		errs = append(errs, fmt.Errorf("%s.url: %w", key, err))
	}
	if am.BearerToken != "" && am.BearerTokenFile != "" {
		errs = append(errs, fmt.Errorf("%s: set at most one of bearer_token and bearer_token_file", key))
	}
	if am.BasicAuth != nil && (am.BearerToken != "" || am.BearerTokenFile != "") {
		errs = append(errs, fmt.Errorf("%s: set at most one of basic_auth and bearer_token(_file)", key))
	}
	if am.BasicAuth != nil && am.BasicAuth.Password != "" && am.BasicAuth.PasswordFile != "" {
		errs = append(errs, fmt.Errorf("%s.basic_auth: set at most one of password and password_file", key))
	}
	if (am.TLS.CertFile == "") != (am.TLS.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%s.tls: cert_file and key_file go together", key))
	}
	if am.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%s.timeout: must not be negative, got %s", key, am.Timeout))
	}
	return errors.Join(errs...)
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL %q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("URL %q: no host", s)
	}
	return nil
}

func (c ScopeConfig) check() error {
	var errs []error
	if c.ClusterRules != clusterRulesRuler && c.ClusterRules != clusterRulesNode {
		errs = append(errs, fmt.Errorf("scope.cluster_rules: must be %q or %q, got %q", clusterRulesRuler, clusterRulesNode, c.ClusterRules))
	}
	for i, l := range c.PartitionLabels {
		if l == "" || l == model.MetricNameLabel || !model.UTF8Validation.IsValidLabelName(l) {
			errs = append(errs, fmt.Errorf("scope.partition_labels[%d]: invalid label name %q", i, l))
		}
	}
	for i, m := range c.ObjectMetrics {
		if _, err := regexp.Compile("^(?:" + m + ")$"); err != nil {
			errs = append(errs, fmt.Errorf("scope.object_metrics[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}
