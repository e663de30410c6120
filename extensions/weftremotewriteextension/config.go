package weftremotewriteextension

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
)

// Config is the configuration of the weft_remote_write extension. Keys
// follow Prometheus's remote_write section where one exists.
type Config struct {
	// Endpoints are the remote-write receivers; every sample goes to each
	// of them through its own queue (at least one required).
	Endpoints []EndpointConfig `mapstructure:"endpoints"`
	// ExternalLabels are added to every series sent, unless the series
	// already has a label of that name, as Prometheus's global
	// external_labels are. Names are Prometheus label names not starting
	// with "__"; values are not empty (default none).
	ExternalLabels map[string]string `mapstructure:"external_labels"`
	// WAL configures the agent write-ahead log that the queues read.
	WAL WALConfig `mapstructure:"wal"`
	// MaxFutureSkew is how far ahead of the node's clock a sample or
	// histogram may be stamped; later ones are refused at append
	// (storage.ErrOutOfBounds) and counted (default 10m, as clock_guard and
	// weft_store; 1s to 24h).
	MaxFutureSkew time.Duration `mapstructure:"max_future_skew"`
	// FlushDeadline bounds how long Shutdown waits for the queues to send
	// what they hold; what is left stays in the WAL and is sent by the next
	// start (default 1m, Prometheus's --storage.remote.flush-deadline).
	FlushDeadline time.Duration `mapstructure:"flush_deadline"`
}

// WALConfig configures the agent write-ahead log (Prometheus's
// --storage.agent.* flags).
type WALConfig struct {
	// Directory holds the WAL (in its wal/ folder) and the catch-up
	// progress file (required). Two instances must not share one.
	Directory string `mapstructure:"directory"`
	// TruncateFrequency is how often series that receive no samples are
	// dropped and old segments are checkpointed away (default 2h).
	TruncateFrequency time.Duration `mapstructure:"truncate_frequency"`
	// MinWALTime is how long data stays in the WAL after every endpoint
	// sent it (default 5m).
	MinWALTime time.Duration `mapstructure:"min_wal_time"`
	// MaxWALTime is how long data stays in the WAL at most, sent or not:
	// an endpoint down for longer loses the oldest data (default 4h).
	MaxWALTime time.Duration `mapstructure:"max_wal_time"`
}

// EndpointConfig is one remote-write receiver.
type EndpointConfig struct {
	// Name identifies the endpoint in self-metrics and logs and keys its
	// catch-up progress (default: the URL without credentials). Unique.
	Name string `mapstructure:"name"`
	// URL is the receiver's write URL, http or https (required).
	URL string `mapstructure:"url"`
	// Headers are added to every request. Authorization and the headers
	// remote write sets itself (Content-Type, User-Agent, ...) are refused.
	Headers map[string]string `mapstructure:"headers"`
	// RemoteTimeout bounds one request (default 30s).
	RemoteTimeout time.Duration `mapstructure:"remote_timeout"`
	// BearerTokenFile is read for a bearer token on every request.
	BearerTokenFile string `mapstructure:"bearer_token_file"`
	// BasicAuth sends HTTP basic authentication; the password is read from
	// a file. Not together with bearer_token_file.
	BasicAuth *BasicAuthConfig `mapstructure:"basic_auth"`
	// TLS configures https endpoints.
	TLS TLSConfig `mapstructure:"tls"`
	// QueueConfig tunes the endpoint's queue (Prometheus's queue_config).
	QueueConfig QueueConfig `mapstructure:"queue_config"`
	// WriteRelabelConfigs relabel series before they are sent (after
	// external labels are added), as Prometheus's write_relabel_configs.
	WriteRelabelConfigs []RelabelConfig `mapstructure:"write_relabel_configs"`
	// SendExemplars sends exemplars (default true).
	SendExemplars *bool `mapstructure:"send_exemplars"`
	// SendNativeHistograms sends native histograms (default false, as in
	// Prometheus: a receiver without native histograms rejects them).
	SendNativeHistograms bool `mapstructure:"send_native_histograms"`
	// ProtobufMessage is the remote-write message: prometheus.WriteRequest
	// (remote write 1.0, default) or io.prometheus.write.v2.Request.
	ProtobufMessage string `mapstructure:"protobuf_message"`
}

// BasicAuthConfig is HTTP basic authentication with the password in a file.
type BasicAuthConfig struct {
	// Username is sent as is (required).
	Username string `mapstructure:"username"`
	// PasswordFile is read for the password on every request (required).
	PasswordFile string `mapstructure:"password_file"`
}

// TLSConfig configures the client side of TLS.
type TLSConfig struct {
	// CAFile verifies the server's certificate (default: system roots).
	CAFile string `mapstructure:"ca_file"`
	// CertFile is the client certificate (with key_file, or neither).
	CertFile string `mapstructure:"cert_file"`
	// KeyFile is the client certificate's key (with cert_file).
	KeyFile string `mapstructure:"key_file"`
	// ServerName overrides the name the certificate is checked against.
	ServerName string `mapstructure:"server_name"`
	// InsecureSkipVerify turns certificate verification off.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
	// MinVersion is the lowest TLS version: TLS10 ... TLS13 (default TLS12).
	MinVersion string `mapstructure:"min_version"`
}

// QueueConfig is Prometheus's queue_config; zero means the default.
type QueueConfig struct {
	// Capacity is the samples buffered per shard (default 10000).
	Capacity int `mapstructure:"capacity"`
	// MaxShards is the most concurrent senders (default 50).
	MaxShards int `mapstructure:"max_shards"`
	// MinShards is the fewest concurrent senders (default 1).
	MinShards int `mapstructure:"min_shards"`
	// MaxSamplesPerSend is the largest batch (default 2000).
	MaxSamplesPerSend int `mapstructure:"max_samples_per_send"`
	// BatchSendDeadline is how long a sample waits for its batch to fill
	// (default 5s).
	BatchSendDeadline time.Duration `mapstructure:"batch_send_deadline"`
	// MinBackoff is the first retry's backoff, doubled at each retry
	// (default 30ms).
	MinBackoff time.Duration `mapstructure:"min_backoff"`
	// MaxBackoff caps the retry backoff (default 5s).
	MaxBackoff time.Duration `mapstructure:"max_backoff"`
	// RetryOnHTTP429 retries batches answered 429 instead of dropping them
	// (default false, as in Prometheus).
	RetryOnHTTP429 bool `mapstructure:"retry_on_http_429"`
}

// RelabelConfig is one Prometheus relabel rule.
type RelabelConfig struct {
	// SourceLabels are the labels whose values, joined by separator, are
	// matched against regex.
	SourceLabels []string `mapstructure:"source_labels"`
	// Separator joins the source label values (default ";").
	Separator *string `mapstructure:"separator"`
	// Regex is matched against the joined values, anchored (default "(.*)").
	Regex *string `mapstructure:"regex"`
	// Modulus is for hashmod.
	Modulus uint64 `mapstructure:"modulus"`
	// TargetLabel receives the result of replace, hashmod, lowercase, ...
	TargetLabel string `mapstructure:"target_label"`
	// Replacement is the replace template (default "$1").
	Replacement *string `mapstructure:"replacement"`
	// Action is replace (default), keep, drop, keepequal, dropequal,
	// hashmod, labelmap, labeldrop, labelkeep, lowercase or uppercase.
	Action string `mapstructure:"action"`
}

const (
	protoV1 = "prometheus.WriteRequest"
	protoV2 = "io.prometheus.write.v2.Request"
)

// Validate checks the configuration and names the offending keys.
func (c *Config) Validate() error {
	_, err := c.prometheusConfig()
	return err
}

// prometheusConfig checks the configuration and translates it into the
// Prometheus configuration that remote.Storage.ApplyConfig takes. Its
// RemoteWriteConfigs are in the order of endpoints.
func (c *Config) prometheusConfig() (*promconfig.Config, error) {
	var errs []error
	if c.WAL.Directory == "" {
		errs = append(errs, errors.New("wal::directory: required"))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"wal::truncate_frequency", c.WAL.TruncateFrequency},
		{"wal::min_wal_time", c.WAL.MinWALTime},
		{"wal::max_wal_time", c.WAL.MaxWALTime},
	} {
		if d.v < time.Second {
			errs = append(errs, fmt.Errorf("%s: must be at least 1s, got %s", d.key, d.v))
		}
	}
	if c.WAL.MinWALTime > c.WAL.MaxWALTime && c.WAL.MaxWALTime > 0 {
		errs = append(errs, fmt.Errorf("wal::min_wal_time: must not exceed wal::max_wal_time (%s), got %s", c.WAL.MaxWALTime, c.WAL.MinWALTime))
	}
	if c.MaxFutureSkew < time.Second || c.MaxFutureSkew > maxFutureSkewLimit {
		errs = append(errs, fmt.Errorf("max_future_skew: must be between 1s and %s, got %s", maxFutureSkewLimit, c.MaxFutureSkew))
	}
	if c.FlushDeadline < 0 {
		errs = append(errs, fmt.Errorf("flush_deadline: must not be negative, got %s", c.FlushDeadline))
	}
	errs = append(errs, validateExternalLabels(c.ExternalLabels)...)
	if len(c.Endpoints) == 0 {
		errs = append(errs, errors.New("endpoints: at least one endpoint is required"))
	}
	pc := &promconfig.Config{GlobalConfig: promconfig.DefaultGlobalConfig}
	pc.GlobalConfig.ExternalLabels = labels.FromMap(c.ExternalLabels)
	names := map[string]int{}
	for i := range c.Endpoints {
		rw, err := c.Endpoints[i].prometheus(fmt.Sprintf("endpoints[%d]", i))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if j, dup := names[rw.Name]; dup {
			errs = append(errs, fmt.Errorf("endpoints[%d]::name: %q is already the name of endpoints[%d]; names must be unique", i, rw.Name, j))
		}
		names[rw.Name] = i
		pc.RemoteWriteConfigs = append(pc.RemoteWriteConfigs, rw)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return pc, nil
}

// prometheus translates one endpoint; key prefixes its errors.
func (e *EndpointConfig) prometheus(key string) (*promconfig.RemoteWriteConfig, error) {
	var errs []error
	rw := promconfig.DefaultRemoteWriteConfig
	rw.HTTPClientConfig = promconfig.DefaultRemoteWriteHTTPClientConfig
	u, err := url.Parse(e.URL)
	switch {
	case e.URL == "":
		errs = append(errs, fmt.Errorf("%s::url: required", key))
	case err != nil:
		errs = append(errs, fmt.Errorf("%s::url: %w", key, err))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("%s::url: scheme must be http or https, got %q", key, u.Scheme))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("%s::url: no host in %q", key, u.Redacted()))
	default:
		rw.URL = &commoncfg.URL{URL: u}
	}
	rw.Name = e.Name
	if rw.Name == "" && rw.URL != nil {
		rw.Name = u.Redacted()
	}
	if e.RemoteTimeout < 0 {
		errs = append(errs, fmt.Errorf("%s::remote_timeout: must not be negative, got %s", key, e.RemoteTimeout))
	} else if e.RemoteTimeout > 0 {
		rw.RemoteTimeout = model.Duration(e.RemoteTimeout)
	}
	hnames := make([]string, 0, len(e.Headers))
	for h := range e.Headers {
		hnames = append(hnames, h)
	}
	slices.Sort(hnames)
	for _, h := range hnames {
		lh := strings.ToLower(h)
		if lh == "authorization" {
			errs = append(errs, fmt.Errorf("%s::headers: %q: set credentials with bearer_token_file or basic_auth", key, h))
		} else if _, reserved := reservedHeaders[lh]; reserved {
			errs = append(errs, fmt.Errorf("%s::headers: %q is set by remote write itself and must not be changed", key, h))
		}
	}
	rw.Headers = e.Headers
	if e.BearerTokenFile != "" && e.BasicAuth != nil {
		errs = append(errs, fmt.Errorf("%s: bearer_token_file and basic_auth are mutually exclusive", key))
	}
	rw.HTTPClientConfig.BearerTokenFile = e.BearerTokenFile
	if e.BasicAuth != nil {
		if e.BasicAuth.Username == "" {
			errs = append(errs, fmt.Errorf("%s::basic_auth::username: required", key))
		}
		if e.BasicAuth.PasswordFile == "" {
			errs = append(errs, fmt.Errorf("%s::basic_auth::password_file: required", key))
		}
		rw.HTTPClientConfig.BasicAuth = &commoncfg.BasicAuth{Username: e.BasicAuth.Username, PasswordFile: e.BasicAuth.PasswordFile}
	}
	tls, err := e.TLS.prometheus(key + "::tls")
	if err != nil {
		errs = append(errs, err)
	}
	rw.HTTPClientConfig.TLSConfig = tls
	if err := rw.HTTPClientConfig.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", key, err))
	}
	q, err := e.QueueConfig.prometheus(key + "::queue_config")
	if err != nil {
		errs = append(errs, err)
	}
	rw.QueueConfig = q
	for i, r := range e.WriteRelabelConfigs {
		rc, err := r.prometheus()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s::write_relabel_configs[%d]: %w", key, i, err))
			continue
		}
		rw.WriteRelabelConfigs = append(rw.WriteRelabelConfigs, rc)
	}
	rw.SendExemplars = e.SendExemplars == nil || *e.SendExemplars
	rw.SendNativeHistograms = e.SendNativeHistograms
	switch e.ProtobufMessage {
	case "", protoV1:
		rw.ProtobufMessage = protoV1
	case protoV2:
		rw.ProtobufMessage = protoV2
	default:
		errs = append(errs, fmt.Errorf("%s::protobuf_message: must be %s or %s, got %q", key, protoV1, protoV2, e.ProtobufMessage))
	}
	// Metadata comes from a Prometheus scrape manager, which weft does not
	// run (see README: what is sent).
	rw.MetadataConfig.Send = false
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &rw, nil
}

// reservedHeaders are the headers remote write sets itself (Prometheus's
// list, config.reservedHeaders).
var reservedHeaders = map[string]struct{}{
	"host": {}, "content-encoding": {}, "content-length": {}, "content-type": {},
	"user-agent": {}, "connection": {}, "keep-alive": {}, "proxy-authenticate": {},
	"proxy-authorization": {}, "www-authenticate": {}, "accept-encoding": {},
	"x-prometheus-remote-write-version": {}, "x-prometheus-remote-read-version": {},
	"retry-attempt": {},
}

func (t *TLSConfig) prometheus(key string) (commoncfg.TLSConfig, error) {
	var errs []error
	out := commoncfg.TLSConfig{
		CAFile:             t.CAFile,
		CertFile:           t.CertFile,
		KeyFile:            t.KeyFile,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify,
		MinVersion:         commoncfg.TLSVersions["TLS12"],
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%s: cert_file and key_file go together, got only one", key))
	}
	if t.MinVersion != "" {
		v, ok := commoncfg.TLSVersions[t.MinVersion]
		if !ok {
			errs = append(errs, fmt.Errorf("%s::min_version: must be TLS10, TLS11, TLS12 or TLS13, got %q", key, t.MinVersion))
		}
		out.MinVersion = v
	}
	return out, errors.Join(errs...)
}

func (q *QueueConfig) prometheus(key string) (promconfig.QueueConfig, error) {
	out := promconfig.DefaultQueueConfig
	var errs []error
	setInt := func(name string, v int, dst *int) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s::%s: must be positive (0 = default), got %d", key, name, v))
		} else if v > 0 {
			*dst = v
		}
	}
	setDur := func(name string, v time.Duration, dst *model.Duration) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s::%s: must be positive (0 = default), got %s", key, name, v))
		} else if v > 0 {
			*dst = model.Duration(v)
		}
	}
	setInt("capacity", q.Capacity, &out.Capacity)
	setInt("max_shards", q.MaxShards, &out.MaxShards)
	setInt("min_shards", q.MinShards, &out.MinShards)
	setInt("max_samples_per_send", q.MaxSamplesPerSend, &out.MaxSamplesPerSend)
	setDur("batch_send_deadline", q.BatchSendDeadline, &out.BatchSendDeadline)
	setDur("min_backoff", q.MinBackoff, &out.MinBackoff)
	setDur("max_backoff", q.MaxBackoff, &out.MaxBackoff)
	out.RetryOnRateLimit = q.RetryOnHTTP429
	if out.MinShards > out.MaxShards {
		errs = append(errs, fmt.Errorf("%s::min_shards: must not exceed max_shards (%d), got %d", key, out.MaxShards, out.MinShards))
	}
	if out.MinBackoff > out.MaxBackoff {
		errs = append(errs, fmt.Errorf("%s::min_backoff: must not exceed max_backoff (%s), got %s", key, out.MaxBackoff, out.MinBackoff))
	}
	return out, errors.Join(errs...)
}

func (r *RelabelConfig) prometheus() (*relabel.Config, error) {
	rc := relabel.DefaultRelabelConfig
	if r.Action != "" {
		rc.Action = relabel.Action(strings.ToLower(r.Action))
		if !slices.Contains(relabelActions, rc.Action) {
			return nil, fmt.Errorf("action: unknown relabel action %q", r.Action)
		}
	}
	for _, n := range r.SourceLabels {
		rc.SourceLabels = append(rc.SourceLabels, model.LabelName(n))
	}
	if r.Separator != nil {
		rc.Separator = *r.Separator
	}
	if r.Regex != nil {
		re, err := relabel.NewRegexp(*r.Regex)
		if err != nil {
			return nil, fmt.Errorf("regex: %w", err)
		}
		rc.Regex = re
	}
	rc.Modulus = r.Modulus
	rc.TargetLabel = r.TargetLabel
	if r.Replacement != nil {
		rc.Replacement = *r.Replacement
	}
	if err := rc.Validate(model.UTF8Validation); err != nil {
		return nil, err
	}
	return &rc, nil
}

var relabelActions = []relabel.Action{
	relabel.Replace, relabel.Keep, relabel.Drop, relabel.KeepEqual, relabel.DropEqual, relabel.HashMod,
	relabel.LabelMap, relabel.LabelDrop, relabel.LabelKeep, relabel.Lowercase, relabel.Uppercase,
}

// validateExternalLabels checks external_labels, in name order so that
// the errors come out the same way every time.
func validateExternalLabels(ext map[string]string) []error {
	var errs []error
	names := make([]string, 0, len(ext))
	for n := range ext {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		switch {
		case !model.LegacyValidation.IsValidLabelName(n):
			errs = append(errs, fmt.Errorf("external_labels: %q is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)", n))
		case strings.HasPrefix(n, "__"):
			errs = append(errs, fmt.Errorf("external_labels: %q: names starting with \"__\" are reserved", n))
		case ext[n] == "":
			errs = append(errs, fmt.Errorf("external_labels::%s: value must not be empty", n))
		}
	}
	return errs
}
