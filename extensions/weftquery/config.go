package weftquery

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configtls"
)

// Config is the configuration of the weft_query extension.
type Config struct {
	// Endpoint is the host:port the HTTP server listens on.
	Endpoint string `mapstructure:"endpoint"`
	// TLS, when set, serves HTTPS with this certificate (and optional client CA).
	TLS *configtls.ServerConfig `mapstructure:"tls"`
	// CORS lists the origins allowed to call the API from a browser; empty
	// (the default) sends no CORS headers.
	CORS CORSConfig `mapstructure:"cors"`
	// Store is the ID of the weft_store extension to read (default weft_store).
	Store component.ID `mapstructure:"store"`
	// Rules is the ID of the extension that provides rules and alerts; empty
	// looks for any extension that offers them, none leaves the lists empty.
	Rules component.ID `mapstructure:"rules"`
	// Auth protects every path except /healthz and /ready; empty: no auth.
	Auth AuthConfig `mapstructure:"auth"`
	// MaxRequestBytes bounds a request's body (and form) size; larger
	// requests get 413 (default 1 MiB).
	MaxRequestBytes int64 `mapstructure:"max_request_bytes"`
	// Timeout bounds the time spent on one request, PromQL evaluation
	// included (default 30s); a query past it answers 503 "timeout".
	Timeout time.Duration `mapstructure:"timeout"`
	// TelemetryURL is the agent's own Prometheus self-metrics endpoint
	// (service.telemetry.metrics pull reader, e.g.
	// http://127.0.0.1:8888/metrics); the status page reads exporter queue
	// sizes and failures from it. Empty: the page shows no exporter table.
	TelemetryURL string `mapstructure:"telemetry_url"`
}

// CORSConfig configures cross-origin requests.
type CORSConfig struct {
	// AllowedOrigins are the exact origins (or "*") that may call the API.
	AllowedOrigins []string `mapstructure:"allowed_origins"`
}

// AuthConfig configures request authentication. bearer_token and
// bearer_token_file are exclusive; basic may be combined with either, and a
// request passes with any one valid credential.
type AuthConfig struct {
	// BearerToken is the token expected in "Authorization: Bearer <token>".
	BearerToken configopaque.String `mapstructure:"bearer_token"`
	// BearerTokenFile is read at Start for the bearer token (whitespace trimmed).
	BearerTokenFile string `mapstructure:"bearer_token_file"`
	// Basic enables HTTP basic auth with one user.
	Basic *BasicAuthConfig `mapstructure:"basic"`
}

// BasicAuthConfig is one basic-auth user.
type BasicAuthConfig struct {
	// Username is the expected user name.
	Username string `mapstructure:"username"`
	// Password is the expected password.
	Password configopaque.String `mapstructure:"password"`
}

// enabled reports whether any authentication is configured.
func (a AuthConfig) enabled() bool {
	return a.BearerToken != "" || a.BearerTokenFile != "" || a.Basic != nil
}

// Validate checks the configuration and names the offending keys.
func (c *Config) Validate() error {
	var errs []error
	if c.Endpoint == "" {
		errs = append(errs, errors.New("endpoint: must be host:port, got empty"))
	} else if _, _, err := net.SplitHostPort(c.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf("endpoint: must be host:port, got %q: %w", c.Endpoint, err))
	}
	if c.TelemetryURL != "" {
		if u, err := url.Parse(c.TelemetryURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("telemetry_url: must be an http(s) URL, got %q", c.TelemetryURL))
		}
	}
	if c.Store.Type().String() == "" {
		errs = append(errs, errors.New("store: must name the weft_store extension, got empty"))
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
	if c.MaxRequestBytes < 1024 {
		errs = append(errs, fmt.Errorf("max_request_bytes: must be at least 1024, got %d", c.MaxRequestBytes))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: must be positive, got %s", c.Timeout))
	}
	for i, o := range c.CORS.AllowedOrigins {
		if o == "" {
			errs = append(errs, fmt.Errorf("cors.allowed_origins[%d]: must not be empty", i))
		}
	}
	return errors.Join(errs...)
}
