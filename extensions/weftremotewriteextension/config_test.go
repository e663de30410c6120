package weftremotewriteextension

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/weftobs/weft/internal/promappend"
	"github.com/weftobs/weft/internal/weftest"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	minimal := createDefaultConfig().(*Config)
	minimal.WAL.Directory = "/var/lib/weft/remote_write"
	minimal.ExternalLabels = map[string]string{"node": "node-1"}
	minimal.Endpoints = []EndpointConfig{{URL: "http://prometheus.monitoring:9090/api/v1/write"}}

	no := false
	full := &Config{
		WAL:            WALConfig{Directory: "/var/lib/weft/remote_write", TruncateFrequency: 30 * time.Minute, MinWALTime: time.Minute, MaxWALTime: 2 * time.Hour},
		FlushDeadline:  10 * time.Second,
		MaxFutureSkew:  time.Minute,
		ExternalLabels: map[string]string{"node": "node-1", "cluster": "prod"},
		Endpoints: []EndpointConfig{{
			Name: "mimir", URL: "https://mimir.monitoring:8080/api/v1/push",
			Headers:       map[string]string{"X-Scope-OrgID": "team-a"},
			RemoteTimeout: 10 * time.Second,
			BasicAuth:     &BasicAuthConfig{Username: "weft", PasswordFile: "/etc/weft/mimir/password"},
			TLS:           TLSConfig{CAFile: "/etc/weft/mimir/ca.crt", ServerName: "mimir.monitoring", MinVersion: "TLS13"},
			QueueConfig: QueueConfig{Capacity: 5000, MaxShards: 10, MinShards: 2, MaxSamplesPerSend: 1000,
				BatchSendDeadline: 2 * time.Second, MinBackoff: 50 * time.Millisecond, MaxBackoff: 10 * time.Second, RetryOnHTTP429: true},
			WriteRelabelConfigs:  []RelabelConfig{{SourceLabels: []string{"__name__"}, Regex: ptr("go_.*"), Action: "drop"}},
			SendExemplars:        &no,
			SendNativeHistograms: true,
			ProtobufMessage:      protoV2,
		}, {
			URL: "http://prometheus.monitoring:9090/api/v1/write", BearerTokenFile: "/var/run/secrets/token",
		}},
	}

	for _, tt := range []struct {
		id      component.ID
		want    *Config
		wantErr []string
	}{
		{id: component.MustNewID("weft_remote_write"), want: minimal},
		{id: component.MustNewIDWithName("weft_remote_write", "full"), want: full},
		{id: component.MustNewIDWithName("weft_remote_write", "noendpoints"), wantErr: []string{"endpoints: at least one endpoint is required"}},
		{id: component.MustNewIDWithName("weft_remote_write", "bad"), wantErr: []string{
			"wal::directory: required",
			"wal::truncate_frequency: must be at least 1s, got 10ms",
			"wal::min_wal_time: must not exceed wal::max_wal_time (4h0m0s), got 5h0m0s",
			"max_future_skew: must be between 1s and 24h0m0s, got 48h0m0s",
			"flush_deadline: must not be negative, got -1s",
			`external_labels: "__node": names starting with "__" are reserved`,
			`external_labels: "bad-name" is not a Prometheus label name`,
			"external_labels::zone: value must not be empty",
			`endpoints[0]::url: scheme must be http or https, got "ftp"`,
			`endpoints[0]::headers: "Authorization": set credentials with bearer_token_file or basic_auth`,
			`endpoints[0]::headers: "Content-Type" is set by remote write itself`,
			"endpoints[0]::remote_timeout: must not be negative, got -1s",
			"endpoints[0]: bearer_token_file and basic_auth are mutually exclusive",
			"endpoints[0]::basic_auth::username: required",
			"endpoints[0]::basic_auth::password_file: required",
			"endpoints[0]::tls: cert_file and key_file go together",
			`endpoints[0]::tls::min_version: must be TLS10, TLS11, TLS12 or TLS13, got "TLS9"`,
			"endpoints[0]::queue_config::capacity: must be positive (0 = default), got -1",
			"endpoints[0]::queue_config::min_shards: must not exceed max_shards (2), got 3",
			"endpoints[0]::queue_config::min_backoff: must not exceed max_backoff (1s), got 10s",
			`endpoints[0]::write_relabel_configs[0]: action: unknown relabel action "explode"`,
			"endpoints[0]::write_relabel_configs[1]: regex:",
			"endpoints[0]::write_relabel_configs[2]: relabel configuration for hashmod requires non-zero modulus",
			`endpoints[0]::protobuf_message: must be prometheus.WriteRequest or io.prometheus.write.v2.Request, got "v3"`,
			`endpoints[1]::url: no host in "http:"`,
			`endpoints[3]::name: "same" is already the name of endpoints[2]`,
			"endpoints[4]::url: required",
		}},
	} {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != nil {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestPrometheusConfig checks the translation into Prometheus's
// remote_write configuration: defaults where a key is unset, names, and
// the flags that change what is sent.
func TestPrometheusConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.WAL.Directory = t.TempDir()
	cfg.ExternalLabels = map[string]string{"node": "n1"}
	cfg.Endpoints = []EndpointConfig{
		{URL: "http://user:secret@127.0.0.1:9090/api/v1/write"},
		{Name: "b", URL: "https://127.0.0.1:9091/push", SendExemplars: ptr(false), QueueConfig: QueueConfig{MaxShards: 3}},
	}
	pc, err := cfg.prometheusConfig()
	require.NoError(t, err)
	require.Equal(t, labels.FromStrings("node", "n1"), pc.GlobalConfig.ExternalLabels)
	require.Len(t, pc.RemoteWriteConfigs, 2)
	a, b := pc.RemoteWriteConfigs[0], pc.RemoteWriteConfigs[1]
	assert.Equal(t, "http://user:xxxxx@127.0.0.1:9090/api/v1/write", a.Name, "default name: the URL without its password")
	assert.True(t, a.SendExemplars, "send_exemplars defaults to true")
	assert.False(t, a.MetadataConfig.Send)
	assert.Equal(t, 50, a.QueueConfig.MaxShards)
	assert.Equal(t, 2000, a.QueueConfig.MaxSamplesPerSend)
	assert.Equal(t, 30*time.Second, time.Duration(a.RemoteTimeout))
	assert.Equal(t, protoV1, string(a.ProtobufMessage))
	assert.Equal(t, "b", b.Name)
	assert.False(t, b.SendExemplars)
	assert.Equal(t, 3, b.QueueConfig.MaxShards)
	assert.Equal(t, 1, b.QueueConfig.MinShards)
	require.NoError(t, a.QueueConfig.Validate(), "Prometheus's own queue checks pass")
}

func TestFactory(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, "weft_remote_write", f.Type().String())
	cfg := f.CreateDefaultConfig().(*Config)
	require.NoError(t, componenttest.CheckConfigStruct(cfg))
	assert.ErrorContains(t, cfg.Validate(), "wal::directory: required")
	cfg.WAL.Directory = t.TempDir()
	cfg.Endpoints = []EndpointConfig{{URL: "http://127.0.0.1:1/api/v1/write"}}
	require.NoError(t, cfg.Validate())
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	// Shutdown without Start, and twice.
	require.NoError(t, ext.Shutdown(context.Background()))
	require.NoError(t, ext.Shutdown(context.Background()))
	app := ext.(*RemoteWrite).Appendable().Appender(context.Background())
	_, err = app.Append(0, labels.FromStrings("__name__", "x"), 1, 1)
	require.ErrorIs(t, err, errNotStarted)
	// The WAL only feeds the queues: a writer may split a commit of many
	// new series.
	assert.Equal(t, newSeriesPerCommit, promappend.NewSeriesPerCommit(ext.(*RemoteWrite).Appendable()))
	assert.Equal(t, samplesPerCommit, promappend.SamplesPerCommit(ext.(*RemoteWrite).Appendable()), "and any transaction by samples")
}

func TestFromHost(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.WAL.Directory = t.TempDir()
	cfg.Endpoints = []EndpointConfig{{URL: "http://127.0.0.1:1/api/v1/write"}}
	rw, err := newRemoteWrite(componenttest.NewNopTelemetrySettings(), cfg)
	require.NoError(t, err)
	id := component.MustNewID("weft_remote_write")
	got, err := FromHost(weftest.Host{id: rw}, id)
	require.NoError(t, err)
	require.Same(t, rw, got)
	_, err = FromHost(weftest.Host{}, id)
	require.ErrorContains(t, err, "is not configured")
	// pod_scrape's native path finds it as a sample taker.
	a, err := promappend.FromHost(weftest.Host{id: rw}, id)
	require.NoError(t, err)
	_, err = a.Appender(context.Background()).Append(0, labels.FromStrings("__name__", "x"), 1, 1)
	require.ErrorIs(t, err, errNotStarted)
}
