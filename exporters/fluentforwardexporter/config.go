package fluentforwardexporter

import (
	"errors"
	"fmt"
	"net"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config is the configuration of the fluent_forward exporter.
type Config struct {
	// Endpoints lists the forward servers as host:port. The first reachable
	// one in list order is used; the others take over when it fails
	// (failover). At least one is required.
	Endpoints []string `mapstructure:"endpoints"`

	// Tag is the Fluentd tag template. <namespace>, <pod> and <container> are
	// replaced by the resource attributes k8s.namespace.name, k8s.pod.name and
	// k8s.container.name ("_" when absent). Default "kube.<namespace>.<pod>.<container>".
	Tag string `mapstructure:"tag"`

	// RequireAck sends the chunk option with every message and waits for the
	// server's ack before a batch counts as delivered (at-least-once).
	RequireAck bool `mapstructure:"require_ack"`

	// AckTimeout is how long to wait for an ack before the batch fails with a
	// retryable error and the connection is closed. Default 15s.
	AckTimeout time.Duration `mapstructure:"ack_timeout"`

	// DialTimeout bounds one connection attempt (TCP and TLS handshake) to one
	// endpoint. Default 5s.
	DialTimeout time.Duration `mapstructure:"dial_timeout"`

	// WriteTimeout bounds writing one message. Default 10s.
	WriteTimeout time.Duration `mapstructure:"write_timeout"`

	// Keepalive is the TCP keep-alive period of the connections; 0 uses the
	// operating system default, a negative value disables keep-alive. Default 30s.
	Keepalive time.Duration `mapstructure:"keepalive"`

	// MaxIdleConns is how many idle connections are kept open for reuse. Default 4.
	MaxIdleConns int `mapstructure:"max_idle_conns"`

	// FailoverCooldown is how long an endpoint that failed (dial error, write
	// error, ack timeout) is tried only after the healthy ones. Default 30s.
	FailoverCooldown time.Duration `mapstructure:"failover_cooldown"`

	// TLS configures TLS to the servers; plain TCP when tls.insecure is true
	// (the default).
	TLS configtls.ClientConfig `mapstructure:"tls"`

	// SharedKey turns on the forward protocol's shared-key handshake
	// (HELO/PING/PONG) on every new connection: the server's
	// <security> shared_key. Empty (the default): no handshake.
	SharedKey configopaque.String `mapstructure:"shared_key"`

	// SelfHostname is the client's name in the handshake; it must differ
	// from the server's self_hostname. Default: the host name.
	SelfHostname string `mapstructure:"self_hostname"`

	// Username and Password log in to a server with user_auth (part of the
	// handshake, so shared_key is required). Empty (the default): no login.
	Username string              `mapstructure:"username"`
	Password configopaque.String `mapstructure:"password"`

	// TimeoutConfig bounds one attempt to send a batch, every tag's message
	// and ack (key "timeout"). Default 30s.
	TimeoutConfig exporterhelper.TimeoutConfig `mapstructure:",squash"`

	// QueueConfig is exporterhelper's sending queue (key "sending_queue"); set
	// sending_queue.storage to a storage extension (weft_file_storage) for a
	// persistent queue.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`

	// BackOffConfig is exporterhelper's retry with backoff (key
	// "retry_on_failure"), the only retry: a failed attempt is sent again,
	// only its records not yet acknowledged. Default: enabled, with no
	// max_elapsed_time (retry until delivered).
	BackOffConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`
}

// Validate checks the keys this exporter owns; exporterhelper validates its own.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Endpoints) == 0 {
		errs = append(errs, errors.New("endpoints: at least one host:port is required"))
	}
	for i, ep := range c.Endpoints {
		host, port, err := net.SplitHostPort(ep)
		if err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("endpoints[%d]: %q must be host:port", i, ep))
		}
	}
	if _, err := parseTagTemplate(c.Tag); err != nil {
		errs = append(errs, fmt.Errorf("tag: %w", err))
	}
	if c.AckTimeout <= 0 {
		errs = append(errs, fmt.Errorf("ack_timeout: must be positive, got %s", c.AckTimeout))
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, fmt.Errorf("dial_timeout: must be positive, got %s", c.DialTimeout))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("write_timeout: must be positive, got %s", c.WriteTimeout))
	}
	if c.MaxIdleConns < 0 {
		errs = append(errs, fmt.Errorf("max_idle_conns: must be 0 or more, got %d", c.MaxIdleConns))
	}
	if c.SharedKey != "" && c.SelfHostname == "" {
		errs = append(errs, errors.New("self_hostname: required with shared_key"))
	}
	if c.Username != "" && c.SharedKey == "" {
		errs = append(errs, errors.New("username: needs shared_key (user authentication is part of the shared-key handshake)"))
	}
	if c.Password != "" && c.Username == "" {
		errs = append(errs, errors.New("password: needs username"))
	}
	if c.FailoverCooldown < 0 {
		errs = append(errs, fmt.Errorf("failover_cooldown: must be 0 or more, got %s", c.FailoverCooldown))
	}
	return errors.Join(errs...)
}
