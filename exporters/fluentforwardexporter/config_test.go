package fluentforwardexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		name    string
		check   func(t *testing.T, c *Config)
		wantErr []string
	}{
		{name: "", check: func(t *testing.T, c *Config) {
			assert.Equal(t, []string{"fluentd.logging:24224"}, c.Endpoints)
			assert.Equal(t, "kube.<namespace>.<pod>.<container>", c.Tag)
			assert.True(t, c.RequireAck)
			assert.Equal(t, 15*time.Second, c.AckTimeout)
			assert.True(t, c.TLS.Insecure)
			require.True(t, c.QueueConfig.HasValue())
			q := c.QueueConfig.Get()
			assert.Equal(t, exporterhelper.RequestSizerTypeBytes, q.Sizer, "queue bounded in bytes")
			assert.True(t, q.BlockOnOverflow, "backpressure before drop")
			assert.True(t, c.BackOffConfig.Enabled)
			assert.Zero(t, c.BackOffConfig.MaxElapsedTime, "retry until delivered")
			assert.Empty(t, c.SharedKey, "no handshake by default")
			assert.NotEmpty(t, c.SelfHostname, "the host name")
		}},
		{name: "full", check: func(t *testing.T, c *Config) {
			assert.Equal(t, []string{"fluentd-0.logging:24224", "fluentd-1.logging:24224"}, c.Endpoints)
			assert.Equal(t, "app.<namespace>.<container>", c.Tag)
			assert.False(t, c.RequireAck)
			assert.Equal(t, 3*time.Second, c.AckTimeout)
			assert.Equal(t, time.Second, c.DialTimeout)
			assert.Equal(t, 2*time.Second, c.WriteTimeout)
			assert.Equal(t, -time.Second, c.Keepalive)
			assert.Equal(t, 2, c.MaxIdleConns)
			assert.Equal(t, 10*time.Second, c.FailoverCooldown)
			assert.False(t, c.TLS.Insecure)
			assert.True(t, c.TLS.InsecureSkipVerify)
			q := c.QueueConfig.Get()
			require.NotNil(t, q.StorageID)
			assert.Equal(t, component.MustNewID("file_storage"), *q.StorageID)
			assert.Equal(t, int64(1000000), q.QueueSize)
			assert.Equal(t, time.Second, c.BackOffConfig.InitialInterval)
			assert.Equal(t, time.Hour, c.BackOffConfig.MaxElapsedTime)
		}},
		{name: "handshake", check: func(t *testing.T, c *Config) {
			assert.Equal(t, "s3cret", string(c.SharedKey))
			assert.Equal(t, "node-1", c.SelfHostname)
			assert.Equal(t, "weft", c.Username)
			assert.Equal(t, "pw", string(c.Password))
		}},
		{name: "bad_auth", wantErr: []string{"username: needs shared_key"}},
		{name: "password_without_user", wantErr: []string{"password: needs username"}},
		{name: "no_endpoints", wantErr: []string{"endpoints: at least one"}},
		{name: "bad_endpoint", wantErr: []string{`endpoints[0]: "fluentd-no-port" must be host:port`}},
		{name: "bad_tag", wantErr: []string{"tag: unknown placeholder <node>", "<namespace>, <pod>, <container>"}},
		{name: "bad_timeouts", wantErr: []string{"ack_timeout: must be positive", "dial_timeout: must be positive", "write_timeout: must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(component.NewIDWithName(componentType, tt.name).String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if len(tt.wantErr) > 0 {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					assert.ErrorContains(t, err, w)
				}
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg.(*Config))
		})
	}
}

func TestParseTagTemplate(t *testing.T) {
	tests := []struct {
		tmpl, ns, pod, container, want, wantErr string
	}{
		{tmpl: defaultTag, ns: "shop", pod: "cart-1", container: "app", want: "kube.shop.cart-1.app"},
		{tmpl: defaultTag, ns: "shop", want: "kube.shop._._"},
		{tmpl: "static", want: "static"},
		{tmpl: "<container>", container: "envoy", want: "envoy"},
		{tmpl: "a<pod>b<pod>", pod: "p", want: "apbp"},
		{tmpl: "", wantErr: "must not be empty"},
		{tmpl: "kube.<namespace", wantErr: "unclosed '<'"},
		{tmpl: "kube.<>", wantErr: "unknown placeholder <>"},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			tp, err := parseTagTemplate(tt.tmpl)
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(tp.appendTag(nil, tt.ns, tt.pod, tt.container)))
		})
	}
}

func FuzzParseTagTemplate(f *testing.F) {
	for _, s := range []string{defaultTag, "", "<", ">", "<pod", "a<pod>b", "<<pod>>", "<namespace><pod><container>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := parseTagTemplate(s)
		if err != nil {
			return
		}
		// With no placeholder values every placeholder becomes "_" and the
		// literals survive in order.
		out := string(tp.appendTag(nil, "", "", ""))
		if len(out) > len(s) {
			t.Fatalf("rendered %q longer than template %q", out, s)
		}
	})
}
