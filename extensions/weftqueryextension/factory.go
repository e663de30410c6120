package weftqueryextension

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/storeapi"
)

// componentType is the extension's type name in the collector configuration.
var componentType = component.MustNewType("weft_query")

const (
	defaultEndpoint        = "localhost:8686"
	defaultMaxRequestBytes = 1 << 20
	defaultTimeout         = 30 * time.Second
	// writeGrace is the time an answer may take to write after its request
	// used all of read_body_timeout and timeout; a client that reads slower
	// loses the connection rather than hold it and the answer's memory.
	writeGrace = time.Minute

	// Query bounds; README "Query bounds" says how they were sized.
	defaultReadHeaderTimeout    = 10 * time.Second
	defaultReadBodyTimeout      = 10 * time.Second
	defaultMaxConnections       = 64
	defaultMaxQueryLength       = 16 << 10
	defaultMaxQueryNodes        = 1000
	defaultMaxConcurrentQueries = 2
	defaultMaxQueuedQueries     = 32
	defaultQueueTimeout         = 10 * time.Second

	// auth.kubernetes; README "Authentication" says how they were chosen.
	defaultAuthCacheTTL         = 2 * time.Minute
	defaultAuthNegativeCacheTTL = 30 * time.Second
	defaultAuthCacheSize        = 1024
	defaultAuthTimeout          = 5 * time.Second
)

// NewFactory returns the factory of the weft_query extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(componentType, createDefaultConfig, createExtension, component.StabilityLevelDevelopment)
}

func createDefaultConfig() component.Config {
	http := confighttp.NewDefaultServerConfig()
	http.NetAddr.Endpoint = defaultEndpoint
	http.MaxRequestBodySize = defaultMaxRequestBytes
	http.ReadHeaderTimeout = defaultReadHeaderTimeout
	http.WriteTimeout = 0 // read_body_timeout + timeout + writeGrace (server.go)
	http.Keepalive = configoptional.Some(confighttp.KeepaliveServerConfig{IdleTimeout: idleTimeout})
	// Grafana in a browser sends its credential in Authorization.
	http.CORS = configoptional.Default(confighttp.CORSConfig{AllowedHeaders: []string{"Authorization", "Content-Type"}})
	return &Config{
		HTTP:    http,
		Store:   component.MustNewID("weft_store"),
		Timeout: defaultTimeout,

		ReadBodyTimeout:      defaultReadBodyTimeout,
		MaxConnections:       defaultMaxConnections,
		MaxQueryLength:       defaultMaxQueryLength,
		MaxQueryNodes:        defaultMaxQueryNodes,
		MaxConcurrentQueries: defaultMaxConcurrentQueries,
		MaxQueuedQueries:     defaultMaxQueuedQueries,
		QueueTimeout:         defaultQueueTimeout,
		StoreAPI:             defaultStoreAPIConfig(),

		Auth: AuthConfig{Kubernetes: KubernetesAuthConfig{
			ResourceAttributes: ResourceAttributes{Verb: "get", Resource: "nodes", Subresource: "weft"},
			CacheTTL:           defaultAuthCacheTTL,
			NegativeCacheTTL:   defaultAuthNegativeCacheTTL,
			CacheSize:          defaultAuthCacheSize,
			Timeout:            defaultAuthTimeout,
		}},
	}
}

// defaultStoreAPIConfig is store_api's defaults: off, the StoreAPI's own
// limits (internal/storeapi says how they were sized).
func defaultStoreAPIConfig() StoreAPIConfig {
	return StoreAPIConfig{
		MaxRecvMsgSize: storeapi.DefaultMaxRecvMsgSize, MaxMatchers: storeapi.DefaultMaxMatchers,
		MaxSeriesPerRequest: storeapi.DefaultMaxSeries, MaxSamplesPerRequest: storeapi.DefaultMaxSamples,
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newServer(set.TelemetrySettings, cfg.(*Config)), nil
}
