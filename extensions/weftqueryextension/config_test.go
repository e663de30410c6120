package weftqueryextension

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
	"github.com/weftobs/weft/internal/kube"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tlsCfg := configtls.NewDefaultServerConfig()
	tlsCfg.CertFile, tlsCfg.KeyFile = "/etc/weft/tls.crt", "/etc/weft/tls.key"
	fullHTTP := createDefaultConfig().(*Config).HTTP
	fullHTTP.NetAddr.Endpoint = "0.0.0.0:9686"
	fullHTTP.TLS = configoptional.Some(tlsCfg)
	fullHTTP.CORS = configoptional.Some(confighttp.CORSConfig{
		AllowedOrigins: []string{"https://grafana.example.com"},
		AllowedHeaders: []string{"Authorization", "Content-Type"},
	})
	fullHTTP.MaxRequestBodySize = 65536
	fullHTTP.ReadHeaderTimeout = 5 * time.Second
	fullHTTP.WriteTimeout = 20 * time.Second
	tests := []struct {
		id   component.ID
		want *Config
	}{
		{component.NewID(componentType), createDefaultConfig().(*Config)},
		{component.NewIDWithName(componentType, "full"), &Config{
			HTTP:  fullHTTP,
			Store: component.MustNewIDWithName("weft_store", "custom"),
			Rules: component.MustNewID("weft_rules"),
			Auth: AuthConfig{
				BearerTokenFile: "/var/run/secrets/weft/token",
				Basic:           &BasicAuthConfig{Username: "grafana", Password: "s3cret"},
				Kubernetes: KubernetesAuthConfig{
					Enabled: true, APIConfig: kube.APIConfig{KubeConfigFile: "/etc/weft/kubeconfig"}, Audiences: []string{"weft"},
					ResourceAttributes: ResourceAttributes{Verb: "get", Group: "weft.dev", Resource: "nodes", Subresource: "query", Name: "node-a"},
					CacheTTL:           time.Minute, NegativeCacheTTL: 5 * time.Second, CacheSize: 256, Timeout: 2 * time.Second,
				},
			},
			Timeout: 10 * time.Second,

			ReadBodyTimeout:      3 * time.Second,
			MaxConnections:       40,
			MaxQueryLength:       8192,
			MaxQueryNodes:        500,
			MaxConcurrentQueries: 4,
			MaxQueuedQueries:     16,
			QueueTimeout:         2 * time.Second,
			StoreAPI:             defaultStoreAPIConfig(),
		}},
		{component.NewIDWithName(componentType, "open"), func() *Config {
			c := createDefaultConfig().(*Config)
			c.HTTP.NetAddr.Endpoint, c.Auth.AllowUnauthenticated = "0.0.0.0:8686", true
			return c
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, tt.want, cfg)
		})
	}
	require.NoError(t, componenttest.CheckConfigStruct(createDefaultConfig()))
}

func TestConfigUnknownKey(t *testing.T) {
	cfg := createDefaultConfig()
	err := confmap.NewFromStringMap(map[string]any{"auth": map[string]any{"token": "x"}}).Unmarshal(cfg)
	require.ErrorContains(t, err, "token")
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"default", func(*Config) {}, ""},
		{"no endpoint", func(c *Config) { c.HTTP.NetAddr.Endpoint = "" }, "http.endpoint: must be host:port"},
		{"endpoint without port", func(c *Config) { c.HTTP.NetAddr.Endpoint = "localhost" }, "http.endpoint: must be host:port"},
		{"unix socket", func(c *Config) { c.HTTP.NetAddr.Transport = "unix" }, "http.transport: must be tcp"},
		{"collector authenticator", func(c *Config) {
			c.HTTP.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: component.MustNewID("basicauth")}})
		}, "http.auth: not supported"},
		{"no store", func(c *Config) { c.Store = component.ID{} }, "store"},
		{"token and file", func(c *Config) { c.Auth.BearerToken, c.Auth.BearerTokenFile = "a", "/b" }, "bearer_token or bearer_token_file"},
		{"basic without user", func(c *Config) { c.Auth.Basic = &BasicAuthConfig{Password: "p"} }, "auth.basic.username"},
		{"basic without password", func(c *Config) { c.Auth.Basic = &BasicAuthConfig{Username: "u"} }, "auth.basic.password"},
		{"telemetry_url not a URL", func(c *Config) { c.TelemetryURL = "localhost:8888/metrics" }, "telemetry_url: must be an http(s) URL"},
		{"telemetry_url ok", func(c *Config) { c.TelemetryURL = "http://127.0.0.1:8888/metrics" }, ""},
		{"tiny body limit", func(c *Config) { c.HTTP.MaxRequestBodySize = 10 }, "http.max_request_body_size: must be at least 1024"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout"},
		{"zero read_header_timeout", func(c *Config) { c.HTTP.ReadHeaderTimeout = 0 }, "http.read_header_timeout: must be positive"},
		{"short write_timeout", func(c *Config) { c.HTTP.WriteTimeout = 30 * time.Second }, "http.write_timeout: must be at least read_body_timeout + timeout (40s), got 30s"},
		{"write_timeout derived", func(c *Config) { c.HTTP.WriteTimeout, c.Timeout = 0, time.Hour }, ""},
		{"negative read_timeout", func(c *Config) { c.HTTP.ReadTimeout = -time.Second }, "http.read_timeout: must not be negative"},
		{"negative read_body_timeout", func(c *Config) { c.ReadBodyTimeout = -time.Second }, "read_body_timeout: must be positive"},
		{"zero queue_timeout", func(c *Config) { c.QueueTimeout = 0 }, "queue_timeout: must be positive"},
		{"zero max_query_length", func(c *Config) { c.MaxQueryLength = 0 }, "max_query_length: must be at least 1, got 0"},
		{"zero max_query_nodes", func(c *Config) { c.MaxQueryNodes = 0 }, "max_query_nodes: must be at least 1"},
		{"zero max_concurrent_queries", func(c *Config) { c.MaxConcurrentQueries = 0 }, "max_concurrent_queries: must be at least 1"},
		{"negative max_queued_queries", func(c *Config) { c.MaxQueuedQueries = -1 }, "max_queued_queries: must be at least 0"},
		{"no queue", func(c *Config) { c.MaxQueuedQueries = 0 }, ""},
		{"connections below slots and queue", func(c *Config) { c.MaxConnections = 33 }, "max_connections: must be at least max_concurrent_queries + max_queued_queries (34), got 33"},
		{"store_api off", func(c *Config) { c.StoreAPI.Endpoint = "" }, ""},
		{"store_api loopback", func(c *Config) { c.StoreAPI.Endpoint = "127.0.0.1:10901" }, ""},
		{"store_api not host:port", func(c *Config) { c.StoreAPI.Endpoint = "10901" }, "store_api.endpoint: must be host:port"},
		{"store_api on http's endpoint", func(c *Config) { c.StoreAPI.Endpoint = c.HTTP.NetAddr.Endpoint }, "store_api.endpoint: must differ from http.endpoint"},
		{"store_api open off loopback", func(c *Config) { c.StoreAPI.Endpoint = "0.0.0.0:10901" },
			"store_api.endpoint: \"0.0.0.0:10901\" is not a loopback address and no client is authenticated: set store_api.tls.client_ca_file (mTLS)"},
		{"store_api with a credential", func(c *Config) { c.StoreAPI.Endpoint, c.Auth.BearerToken = "0.0.0.0:10901", "t" }, ""},
		{"store_api allow_unauthenticated", func(c *Config) {
			c.StoreAPI.Endpoint, c.StoreAPI.AllowUnauthenticated, c.Auth.Kubernetes.Enabled = "0.0.0.0:10901", true, true
		}, ""},
		{"store_api open like http", func(c *Config) { c.StoreAPI.Endpoint, c.Auth.AllowUnauthenticated = "0.0.0.0:10901", true }, ""},
		{"store_api mTLS", func(c *Config) {
			tc := configtls.NewDefaultServerConfig()
			tc.CertFile, tc.KeyFile, tc.ClientCAFile = "/c", "/k", "/ca"
			c.StoreAPI.Endpoint, c.StoreAPI.TLS = "0.0.0.0:10901", configoptional.Some(tc)
		}, ""},
		{"store_api TLS without client CA", func(c *Config) {
			tc := configtls.NewDefaultServerConfig()
			tc.CertFile, tc.KeyFile = "/c", "/k"
			c.StoreAPI.Endpoint, c.StoreAPI.TLS = "0.0.0.0:10901", configoptional.Some(tc)
		}, "store_api.endpoint"},
		{"store_api tiny message", func(c *Config) { c.StoreAPI.MaxRecvMsgSize = 10 }, "store_api.max_recv_msg_size: must be at least 1024, got 10"},
		{"store_api no matchers", func(c *Config) { c.StoreAPI.MaxMatchers = 0 }, "store_api.max_matchers: must be at least 1"},
		{"store_api no series", func(c *Config) { c.StoreAPI.MaxSeriesPerRequest = 0 }, "store_api.max_series_per_request: must be at least 1"},
		{"store_api no samples", func(c *Config) { c.StoreAPI.MaxSamplesPerRequest = 0 }, "store_api.max_samples_per_request: must be at least 1"},
		{"empty origin", func(c *Config) {
			c.HTTP.CORS = configoptional.Some(confighttp.CORSConfig{AllowedOrigins: []string{""}})
		}, "http.cors.allowed_origins[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			tt.mod(cfg)
			err := cfg.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestLifecycle(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, componentType, f.Type())
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.HTTP.NetAddr.Endpoint = "127.0.0.1:0"
	ctx := context.Background()

	// Shutdown without Start, twice.
	ext, err := f.Create(ctx, extensiontest.NewNopSettings(componentType), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Shutdown(ctx))
	require.NoError(t, ext.Shutdown(ctx))

	dep, ok := ext.(extensioncapabilities.Dependent)
	require.True(t, ok, "weft_query must declare its store dependency")
	assert.Equal(t, []component.ID{storeID}, dep.Dependencies())

	// Without the store, Start fails and names the key.
	require.ErrorContains(t, ext.Start(ctx, componenttest.NewNopHost()), "store")

	// A named rules extension that does not exist fails too.
	cfg2 := *cfg
	cfg2.Rules = component.MustNewID("weft_rules")
	ext2, err := f.Create(ctx, extensiontest.NewNopSettings(componentType), &cfg2)
	require.NoError(t, err)
	st := weftstoretest.Start(t, nil)
	host := weftstoretest.Host(st)
	require.ErrorContains(t, ext2.Start(ctx, host), "rules")
	assert.Equal(t, []component.ID{storeID, cfg2.Rules}, ext2.(extensioncapabilities.Dependent).Dependencies())

	// Started: /healthz and /ready answer; after Shutdown (twice) the port is closed.
	ext3, err := f.Create(ctx, extensiontest.NewNopSettings(componentType), cfg)
	require.NoError(t, err)
	require.NoError(t, ext3.Start(ctx, host))
	base := "http://" + ext3.(*server).addr()
	code, body := get(t, base+"/healthz")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok\n", string(body))
	// Ready once the collector reports its pipelines running, and no
	// longer when it begins to stop them.
	code, body = get(t, base+"/ready")
	assert.Equal(t, 503, code)
	assert.Equal(t, "not ready: pipelines not running\n", string(body))
	watcher := ext3.(extensioncapabilities.PipelineWatcher)
	require.NoError(t, watcher.Ready())
	code, _ = get(t, base+"/ready")
	assert.Equal(t, 200, code)
	require.NoError(t, watcher.NotReady())
	code, _ = get(t, base+"/ready")
	assert.Equal(t, 503, code)
	require.NoError(t, ext3.Shutdown(ctx))
	require.NoError(t, ext3.Shutdown(ctx))
	_, err = (&httpClient{}).get(base + "/healthz")
	require.Error(t, err, "server still answers after Shutdown")
}

func TestBearerTokenFile(t *testing.T) {
	st := weftstoretest.Start(t, nil)
	host := weftstoretest.Host(st)
	for _, tt := range []struct {
		name, content, wantErr string
	}{
		{"missing", "", "bearer_token_file"},
		{"empty", "  \n", "is empty"},
		{"ok", "tok-123\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.HTTP.NetAddr.Endpoint = "127.0.0.1:0"
			cfg.Auth.BearerTokenFile = filepath.Join(t.TempDir(), "token")
			if tt.name != "missing" {
				require.NoError(t, writeFile(cfg.Auth.BearerTokenFile, tt.content))
			}
			s := newServer(componenttest.NewNopTelemetrySettings(), cfg)
			err := s.Start(t.Context(), host)
			t.Cleanup(func() { require.NoError(t, s.Shutdown(context.Background())) })
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			code, _ := get(t, "http://"+s.addr()+"/api/services", "Authorization", "Bearer tok-123")
			assert.Equal(t, 200, code)
			code, _ = get(t, "http://"+s.addr()+"/api/services", "Authorization", "Bearer tok-124")
			assert.Equal(t, 401, code)
		})
	}
}
