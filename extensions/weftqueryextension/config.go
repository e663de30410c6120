package weftqueryextension

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/auth"
	"github.com/weftobs/weft/internal/kube"
)

// Config is the configuration of the weft_query extension.
type Config struct {
	// HTTP is the server (the collector's confighttp): http.endpoint
	// (host:port, default localhost:8686), http.tls, http.cors,
	// http.read_header_timeout (default 10s), http.write_timeout (default
	// 0: read_body_timeout + timeout + 1m; else at least read_body_timeout +
	// timeout), http.read_timeout (headers and body together, default none:
	// the body has read_body_timeout), http.max_request_body_size (default
	// 1 MiB; a larger body answers 413), http.keepalive.idle_timeout
	// (default 2m, past the 90s after which Go clients drop idle ones).
	// http.auth (an authenticator extension) is refused: weft's own auth
	// below protects the API and leaves the probes open.
	HTTP confighttp.ServerConfig `mapstructure:"http"`
	// Store is the ID of the weft_store extension to read (default weft_store).
	Store component.ID `mapstructure:"store"`
	// Rules is the ID of the extension that provides rules and alerts; empty
	// looks for any extension that offers them, none leaves the lists empty.
	Rules component.ID `mapstructure:"rules"`
	// Auth protects every path except /healthz and /ready. An endpoint that
	// is not a loopback address needs a credential configured here, or
	// auth.allow_unauthenticated.
	Auth AuthConfig `mapstructure:"auth"`
	// Timeout bounds the time spent on one request from the end of its
	// headers: waiting for a query slot, parsing and evaluating PromQL,
	// selecting series (default 30s); a query past it answers 503 "timeout".
	// It is each request's context deadline; the PromQL engine is the
	// store's (weft_store query::timeout, longer, bounds every reader).
	Timeout time.Duration `mapstructure:"timeout"`
	// ReadBodyTimeout bounds the time to read a request's body (a POST
	// form) once its headers are read; a slower body answers 408 and the
	// connection is closed (default 10s).
	ReadBodyTimeout time.Duration `mapstructure:"read_body_timeout"`
	// MaxConnections bounds the open connections (default 64). Up to 4 more
	// are accepted beyond it that answer only /healthz and /ready (503 on
	// any other path), so the probes still pass when the API is saturated.
	MaxConnections int `mapstructure:"max_connections"`
	// MaxQueryLength bounds a PromQL expression (query=, each match[]=) in
	// bytes; a longer one answers 400 before it is parsed (default 16384).
	MaxQueryLength int `mapstructure:"max_query_length"`
	// MaxQueryNodes bounds a parsed PromQL expression's syntax-tree nodes;
	// a larger one answers 400 before it is evaluated (default 1000).
	MaxQueryNodes int `mapstructure:"max_query_nodes"`
	// MaxConcurrentQueries bounds the data requests (Prometheus queries,
	// series and labels, exemplars, Jaeger traces, logs, correlate) that run
	// at once (default 2).
	MaxConcurrentQueries int `mapstructure:"max_concurrent_queries"`
	// MaxQueuedQueries bounds the data requests that wait for a slot; with
	// the queue full a request answers 503 "unavailable" with Retry-After
	// (default 32; 0: no queue).
	MaxQueuedQueries int `mapstructure:"max_queued_queries"`
	// QueueTimeout bounds a request's wait for a slot; past it the request
	// answers 503 "unavailable" with Retry-After (default 10s).
	QueueTimeout time.Duration `mapstructure:"queue_timeout"`
	// TelemetryURL is the agent's own Prometheus self-metrics endpoint
	// (service.telemetry.metrics pull reader, e.g.
	// http://127.0.0.1:8888/metrics); the status page reads exporter queue
	// sizes and failures from it. Empty: the page shows no exporter table.
	TelemetryURL string `mapstructure:"telemetry_url"`
	// StoreAPI serves the Thanos StoreAPI (gRPC) over the store for a
	// Thanos Query over every node; off unless store_api.endpoint is set.
	StoreAPI StoreAPIConfig `mapstructure:"store_api"`
}

// StoreAPIConfig configures the Thanos StoreAPI server: gRPC Info, Store
// (Series, LabelNames, LabelValues), Rules and Exemplars over the store,
// with weft_store's external_labels added, for a Thanos Query that fans
// out over every node's agent.
type StoreAPIConfig struct {
	// Endpoint is the host:port to serve gRPC on; empty (the default)
	// serves no StoreAPI.
	Endpoint string `mapstructure:"endpoint"`
	// TLS is the collector's configtls server settings; client_ca_file
	// requires and verifies client certificates (mTLS), and a verified
	// certificate is then the credential: no authorization metadata is
	// checked (Thanos Query sends client certificates, not tokens).
	TLS configoptional.Optional[configtls.ServerConfig] `mapstructure:"tls"`
	// AllowUnauthenticated serves a non-loopback endpoint without
	// checking credentials even when auth configures some (Thanos Query
	// sends no bearer token; let a NetworkPolicy admit only its pods).
	// Without it, calls need "authorization: Bearer <token>" (or Basic)
	// metadata that auth accepts, or mTLS (default false).
	AllowUnauthenticated bool `mapstructure:"allow_unauthenticated"`
	// MaxRecvMsgSize bounds a request message in bytes (default 4 MiB).
	MaxRecvMsgSize int `mapstructure:"max_recv_msg_size"`
	// MaxMatchers bounds the label matchers of one request or exemplar
	// selector (default 64). A regular expression is bounded by
	// max_query_length.
	MaxMatchers int `mapstructure:"max_matchers"`
	// MaxSeriesPerRequest bounds the series one Series call streams
	// (default 100000, weft_store's max_series); past it the call fails
	// with ResourceExhausted.
	MaxSeriesPerRequest int `mapstructure:"max_series_per_request"`
	// MaxSamplesPerRequest bounds the samples in the chunks one Series
	// call streams (default 50000000); past it the call fails with
	// ResourceExhausted.
	MaxSamplesPerRequest int `mapstructure:"max_samples_per_request"`
}

// mTLS reports whether client certificates are required.
func (c StoreAPIConfig) mTLS() bool {
	tc := c.TLS.Get()
	return tc != nil && tc.ClientCAFile != ""
}

// validate checks store_api; auth is weft_query's auth section.
func (c StoreAPIConfig) validate(auth AuthConfig, httpEndpoint string) []error {
	var errs []error
	for _, n := range []struct {
		key      string
		v, least int
	}{
		{"store_api.max_recv_msg_size", c.MaxRecvMsgSize, 1024}, {"store_api.max_matchers", c.MaxMatchers, 1},
		{"store_api.max_series_per_request", c.MaxSeriesPerRequest, 1}, {"store_api.max_samples_per_request", c.MaxSamplesPerRequest, 1},
	} {
		if n.v < n.least {
			errs = append(errs, fmt.Errorf("%s: must be at least %d, got %d", n.key, n.least, n.v))
		}
	}
	if c.Endpoint == "" {
		return errs
	}
	_, port, err := net.SplitHostPort(c.Endpoint)
	if err != nil {
		return append(errs, fmt.Errorf("store_api.endpoint: must be host:port or empty (off), got %q: %w", c.Endpoint, err))
	}
	if c.Endpoint == httpEndpoint && port != "0" {
		errs = append(errs, fmt.Errorf("store_api.endpoint: must differ from http.endpoint, both are %q", c.Endpoint))
	}
	if !loopback(c.Endpoint) && !c.mTLS() && !auth.enabled() && !auth.AllowUnauthenticated && !c.AllowUnauthenticated {
		errs = append(errs, fmt.Errorf("store_api.endpoint: %q is not a loopback address and no client is authenticated: "+
			"set store_api.tls.client_ca_file (mTLS), a credential in auth (bearer_token, bearer_token_file, basic, kubernetes), "+
			"or store_api.allow_unauthenticated: true to let anyone who reaches it read every series of the node", c.Endpoint))
	}
	return errs
}

// AuthConfig configures request authentication. bearer_token and
// bearer_token_file are exclusive; basic and kubernetes may be combined with
// either, and a request passes with any one valid credential.
type AuthConfig struct {
	// BearerToken is the token expected in "Authorization: Bearer <token>".
	BearerToken configopaque.String `mapstructure:"bearer_token"`
	// BearerTokenFile is read at Start for the bearer token (whitespace trimmed).
	BearerTokenFile string `mapstructure:"bearer_token_file"`
	// Basic enables HTTP basic auth with one user.
	Basic *BasicAuthConfig `mapstructure:"basic"`
	// Kubernetes checks bearer tokens with the API server (TokenReview) and
	// authorizes their users with a SubjectAccessReview.
	Kubernetes KubernetesAuthConfig `mapstructure:"kubernetes"`
	// AllowUnauthenticated serves an endpoint that is not a loopback
	// address without any credential. Without it, such an endpoint with no
	// credential configured is refused (default false).
	AllowUnauthenticated bool `mapstructure:"allow_unauthenticated"`
}

// KubernetesAuthConfig is the kube-rbac-proxy model: the bearer token of a
// request is reviewed by the API server, and its user must be allowed
// resource_attributes (by default: get nodes/weft).
type KubernetesAuthConfig struct {
	// Enabled turns Kubernetes authentication on (default false).
	Enabled bool `mapstructure:"enabled"`
	// APIConfig is how to reach the API server: api_server,
	// kubeconfig_file, token_file, ca_file, the keys of pod_scrape's
	// kubernetes_api (all empty: the in-cluster service account).
	kube.APIConfig `mapstructure:",squash"`
	// Audiences, when set, are sent in the TokenReview: the token must be
	// valid for one of them. Empty: the API server's own audiences.
	Audiences []string `mapstructure:"audiences"`
	// ResourceAttributes is what the user must be allowed to do
	// (SubjectAccessReview spec.resourceAttributes) to use any path of the
	// API (default verb get, resource nodes, subresource weft).
	ResourceAttributes ResourceAttributes `mapstructure:"resource_attributes"`
	// CacheTTL is how long an allowed token is remembered (default 2m).
	CacheTTL time.Duration `mapstructure:"cache_ttl"`
	// NegativeCacheTTL is how long an invalid or denied token is
	// remembered (default 30s); 0: not remembered.
	NegativeCacheTTL time.Duration `mapstructure:"negative_cache_ttl"`
	// CacheSize bounds the remembered tokens (default 1024).
	CacheSize int `mapstructure:"cache_size"`
	// Timeout bounds one review request to the API server (default 5s).
	Timeout time.Duration `mapstructure:"timeout"`
}

// ResourceAttributes are the SubjectAccessReview resource attributes a
// request's user must be allowed.
type ResourceAttributes struct {
	// Verb is the Kubernetes verb (default get).
	Verb string `mapstructure:"verb"`
	// Group is the API group (default "", the core group).
	Group string `mapstructure:"group"`
	// Resource is the resource (default nodes).
	Resource string `mapstructure:"resource"`
	// Subresource is the subresource (default weft: RBAC resource
	// "nodes/weft").
	Subresource string `mapstructure:"subresource"`
	// Name is the object name (empty: any; e.g. ${env:NODE_NAME}, so a Role
	// can name nodes with resourceNames).
	Name string `mapstructure:"name"`
	// Namespace is the namespace (empty for cluster-scoped resources).
	Namespace string `mapstructure:"namespace"`
}

// BasicAuthConfig is one basic-auth user.
type BasicAuthConfig struct {
	// Username is the expected user name.
	Username string `mapstructure:"username"`
	// Password is the expected password.
	Password configopaque.String `mapstructure:"password"`
}

// enabled reports whether any credential is configured.
func (a AuthConfig) enabled() bool {
	return a.BearerToken != "" || a.BearerTokenFile != "" || a.Basic != nil || a.Kubernetes.Enabled
}

// loopback reports whether a host:port endpoint's host is a loopback
// address (127.0.0.0/8, ::1) or "localhost". An empty host (every
// interface) and other names are not.
func loopback(endpoint string) bool {
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Validate checks the configuration and names the offending keys.
func (c *Config) Validate() error {
	var errs []error
	endpoint := c.HTTP.NetAddr.Endpoint
	if c.HTTP.NetAddr.Transport != "" && c.HTTP.NetAddr.Transport != "tcp" {
		errs = append(errs, fmt.Errorf("http.transport: must be tcp, got %q", c.HTTP.NetAddr.Transport))
	}
	if endpoint == "" {
		errs = append(errs, errors.New("http.endpoint: must be host:port, got empty"))
	} else if _, _, err := net.SplitHostPort(endpoint); err != nil {
		errs = append(errs, fmt.Errorf("http.endpoint: must be host:port, got %q: %w", endpoint, err))
	}
	if c.HTTP.Auth.HasValue() {
		errs = append(errs, errors.New("http.auth: not supported: use auth (bearer_token, basic, kubernetes), which leaves /healthz and /ready open"))
	}
	if c.TelemetryURL != "" {
		if u, err := url.Parse(c.TelemetryURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("telemetry_url: must be an http(s) URL, got %q", c.TelemetryURL))
		}
	}
	if c.Store.Type().String() == "" {
		errs = append(errs, errors.New("store: must name the weft_store extension, got empty"))
	}
	switch {
	case endpoint != "" && !loopback(endpoint) && !c.Auth.enabled() && !c.Auth.AllowUnauthenticated:
		errs = append(errs, fmt.Errorf("http.endpoint: %q is not a loopback address and auth configures no credential: "+
			"set auth.kubernetes.enabled, auth.bearer_token, auth.bearer_token_file or auth.basic, "+
			"or auth.allow_unauthenticated: true to let anyone who reaches it read every signal of the node", endpoint))
	case c.Auth.AllowUnauthenticated && c.Auth.enabled():
		errs = append(errs, errors.New("auth.allow_unauthenticated: must not be true while a credential is configured"))
	}
	if k := c.Auth.Kubernetes; k.Enabled {
		errs = append(errs, k.validate()...)
	}
	if c.Auth.BearerToken != "" && c.Auth.BearerTokenFile != "" {
		errs = append(errs, errors.New("auth: set bearer_token or bearer_token_file, not both"))
	}
	if b := c.Auth.Basic; b != nil {
		if b.Username == "" {
			errs = append(errs, errors.New("auth.basic.username: must not be empty"))
		}
		if b.Password == "" {
			errs = append(errs, errors.New("auth.basic.password: must not be empty"))
		}
	}
	if c.HTTP.MaxRequestBodySize < 1024 {
		errs = append(errs, fmt.Errorf("http.max_request_body_size: must be at least 1024, got %d", c.HTTP.MaxRequestBodySize))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"timeout", c.Timeout}, {"http.read_header_timeout", c.HTTP.ReadHeaderTimeout}, {"read_body_timeout", c.ReadBodyTimeout}, {"queue_timeout", c.QueueTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", d.key, d.v))
		}
	}
	for _, n := range []struct {
		key      string
		v, least int
	}{
		{"max_query_length", c.MaxQueryLength, 1}, {"max_query_nodes", c.MaxQueryNodes, 1},
		{"max_concurrent_queries", c.MaxConcurrentQueries, 1}, {"max_queued_queries", c.MaxQueuedQueries, 0},
	} {
		if n.v < n.least {
			errs = append(errs, fmt.Errorf("%s: must be at least %d, got %d", n.key, n.least, n.v))
		}
	}
	// Every running and queued query holds a connection.
	if least := max(1, c.MaxConcurrentQueries) + max(0, c.MaxQueuedQueries); c.MaxConnections < least {
		errs = append(errs, fmt.Errorf("max_connections: must be at least max_concurrent_queries + max_queued_queries (%d), got %d", least, c.MaxConnections))
	}
	// An answer may take read_body_timeout + timeout to compute; a shorter
	// write_timeout would cut answers the bounds allow.
	if least := c.ReadBodyTimeout + c.Timeout; c.HTTP.WriteTimeout != 0 && c.HTTP.WriteTimeout < least {
		errs = append(errs, fmt.Errorf("http.write_timeout: must be at least read_body_timeout + timeout (%s), got %s", least, c.HTTP.WriteTimeout))
	}
	if c.HTTP.ReadTimeout < 0 {
		errs = append(errs, fmt.Errorf("http.read_timeout: must not be negative, got %s", c.HTTP.ReadTimeout))
	}
	if c.HTTP.WriteTimeout < 0 {
		errs = append(errs, fmt.Errorf("http.write_timeout: must not be negative, got %s", c.HTTP.WriteTimeout))
	}
	errs = append(errs, c.StoreAPI.validate(c.Auth, endpoint)...)
	if cors := c.HTTP.CORS.Get(); cors != nil {
		for i, o := range cors.AllowedOrigins {
			if o == "" {
				errs = append(errs, fmt.Errorf("http.cors.allowed_origins[%d]: must not be empty", i))
			}
		}
	}
	return errors.Join(errs...)
}

// kubeConfig is k as the auth room takes it.
func (k KubernetesAuthConfig) kubeConfig() auth.KubeConfig {
	return auth.KubeConfig{
		API: k.APIConfig, Audiences: k.Audiences, ResourceAttributes: auth.ResourceAttributes(k.ResourceAttributes),
		CacheTTL: k.CacheTTL, NegativeCacheTTL: k.NegativeCacheTTL, CacheSize: k.CacheSize, Timeout: k.Timeout,
	}
}

func (k KubernetesAuthConfig) validate() []error {
	var errs []error
	const p = "auth.kubernetes."
	if err := k.APIConfig.Validate(p); err != nil {
		errs = append(errs, err)
	}
	for i, a := range k.Audiences {
		if a == "" {
			errs = append(errs, fmt.Errorf("%saudiences[%d]: must not be empty", p, i))
		}
	}
	if k.ResourceAttributes.Verb == "" {
		errs = append(errs, fmt.Errorf("%sresource_attributes.verb: must not be empty (e.g. get)", p))
	}
	if k.ResourceAttributes.Resource == "" {
		errs = append(errs, fmt.Errorf("%sresource_attributes.resource: must not be empty (e.g. nodes)", p))
	}
	if k.CacheTTL < 0 {
		errs = append(errs, fmt.Errorf("%scache_ttl: must not be negative, got %s", p, k.CacheTTL))
	}
	if k.NegativeCacheTTL < 0 {
		errs = append(errs, fmt.Errorf("%snegative_cache_ttl: must not be negative, got %s", p, k.NegativeCacheTTL))
	}
	if k.CacheSize < 1 {
		errs = append(errs, fmt.Errorf("%scache_size: must be at least 1, got %d", p, k.CacheSize))
	}
	if k.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("%stimeout: must be positive, got %s", p, k.Timeout))
	}
	return errs
}
