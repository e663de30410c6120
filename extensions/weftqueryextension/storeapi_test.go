package weftqueryextension

import (
	"context"
	"crypto/tls"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/thanos/pkg/info/infopb"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/storeapi"
	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
	"github.com/weftobs/weft/internal/weftest"
)

// storeAPIClient dials the StoreAPI of s.
func storeAPIClient(t *testing.T, s *server, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(s.storeAPIAddr(), grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(storeapi.Codec())))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// startWithStoreAPI starts weft_query over a store with external labels,
// with store_api on a loopback port and cfg changed by mod.
func startWithStoreAPI(t *testing.T, mod func(*Config)) (*server, *weftstoreextension.Store) {
	t.Helper()
	st := weftstoretest.Start(t, func(c *weftstoreextension.Config) {
		c.ExternalLabels = map[string]string{"cluster": "c1", "node": "n1"}
	})
	cfg := createDefaultConfig().(*Config)
	cfg.HTTP.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.StoreAPI.Endpoint = "127.0.0.1:0"
	if mod != nil {
		mod(cfg)
	}
	require.NoError(t, cfg.Validate())
	s := newServer(componenttest.NewNopTelemetrySettings(), cfg)
	require.NoError(t, s.Start(t.Context(), weftest.Host(map[component.ID]component.Component{storeID: st})))
	t.Cleanup(func() { require.NoError(t, s.Shutdown(context.Background())) })
	return s, st
}

func TestStoreAPIServes(t *testing.T) {
	s, st := startWithStoreAPI(t, func(c *Config) { c.Auth.BearerToken = "s3cret" })
	now := time.Now().UnixMilli()
	app := st.Appendable().Appender(t.Context())
	_, err := app.Append(0, labels.FromStrings("__name__", "up", "job", "a"), now-1000, 1)
	require.NoError(t, err)
	require.NoError(t, app.Commit())

	conn := storeAPIClient(t, s, nil)
	info := infopb.NewInfoClient(conn)
	_, err = info.Info(t.Context(), &infopb.InfoRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "weft_query's auth applies: %v", err)

	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer s3cret")
	res, err := info.Info(ctx, &infopb.InfoRequest{})
	require.NoError(t, err)
	require.Equal(t, storeapi.ComponentType, res.ComponentType)
	require.Len(t, res.LabelSets, 1)
	require.Len(t, res.LabelSets[0].Labels, 2)
	require.LessOrEqual(t, res.Store.MinTime, now-1000)
	require.Equal(t, int64(math.MaxInt64), res.Store.MaxTime, "open-ended: the store takes samples all the time")

	stream, err := storepb.NewStoreClient(conn).Series(ctx, &storepb.SeriesRequest{MinTime: 0, MaxTime: now,
		Matchers: []storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "node", Value: "n1"}}})
	require.NoError(t, err)
	r, err := stream.Recv()
	require.NoError(t, err)
	require.Len(t, r.GetSeries().Labels, 4, "job, __name__, cluster, node")
}

func TestStoreAPIOffByDefault(t *testing.T) {
	s, _ := startWithStoreAPI(t, func(c *Config) { c.StoreAPI.Endpoint = "" })
	require.Empty(t, s.storeAPIAddr())
}

func TestStoreAPITLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	s, _ := startWithStoreAPI(t, func(c *Config) {
		tc := configtls.NewDefaultServerConfig()
		tc.CertFile, tc.KeyFile = certFile, keyFile
		c.StoreAPI.TLS = configoptional.Some(tc)
	})
	conn := storeAPIClient(t, s, credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	_, err := infopb.NewInfoClient(conn).Info(t.Context(), &infopb.InfoRequest{})
	require.NoError(t, err)

	plain := storeAPIClient(t, s, nil)
	_, err = infopb.NewInfoClient(plain).Info(t.Context(), &infopb.InfoRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	// A missing key fails Start, naming store_api.tls.
	st := weftstoretest.Start(t, nil)
	cfg := createDefaultConfig().(*Config)
	cfg.HTTP.NetAddr.Endpoint, cfg.StoreAPI.Endpoint = "127.0.0.1:0", "127.0.0.1:0"
	tc := configtls.NewDefaultServerConfig()
	tc.CertFile, tc.KeyFile = certFile, filepath.Join(t.TempDir(), "missing.key")
	cfg.StoreAPI.TLS = configoptional.Some(tc)
	s2 := newServer(componenttest.NewNopTelemetrySettings(), cfg)
	require.ErrorContains(t, s2.Start(t.Context(), weftstoretest.Host(st)), "store_api.tls")
	require.NoError(t, s2.Shutdown(context.Background()))
}

// TestStoreAPIShutdown: Shutdown stops the StoreAPI; new calls fail.
func TestStoreAPIShutdown(t *testing.T) {
	s, _ := startWithStoreAPI(t, nil)
	conn := storeAPIClient(t, s, nil)
	_, err := infopb.NewInfoClient(conn).Info(t.Context(), &infopb.InfoRequest{})
	require.NoError(t, err)
	require.NoError(t, s.Shutdown(t.Context()))
	_, err = infopb.NewInfoClient(conn).Info(t.Context(), &infopb.InfoRequest{})
	require.Error(t, err)
}

func TestStoreAPIConfigKeys(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.Equal(t, defaultStoreAPIConfig(), cfg.StoreAPI)
	require.Empty(t, cfg.StoreAPI.Endpoint, "off by default")
	err := confmap.NewFromStringMap(map[string]any{"store_api": map[string]any{
		"endpoint": "0.0.0.0:10901", "allow_unauthenticated": true,
		"tls":               map[string]any{"cert_file": "/c", "key_file": "/k", "client_ca_file": "/ca"},
		"max_recv_msg_size": 1 << 20, "max_matchers": 16, "max_series_per_request": 1000, "max_samples_per_request": 5000,
	}}).Unmarshal(cfg)
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	sa := cfg.StoreAPI
	require.Equal(t, "0.0.0.0:10901", sa.Endpoint)
	require.True(t, sa.AllowUnauthenticated)
	require.True(t, sa.mTLS())
	require.Equal(t, []int{1 << 20, 16, 1000, 5000}, []int{sa.MaxRecvMsgSize, sa.MaxMatchers, sa.MaxSeriesPerRequest, sa.MaxSamplesPerRequest})
	require.ErrorContains(t, confmap.NewFromStringMap(map[string]any{"store_api": map[string]any{"port": 1}}).Unmarshal(cfg), "port")
}

// Every finished StoreAPI call is counted by method and status code,
// refusals by auth included (weft_query.store_api.calls).
func TestStoreAPICallsCounted(t *testing.T) {
	st := weftstoretest.Start(t, nil)
	cfg := createDefaultConfig().(*Config)
	cfg.HTTP.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.StoreAPI.Endpoint = "127.0.0.1:0"
	cfg.Auth.BearerToken = "s3cret"
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	s := newServer(tel.NewTelemetrySettings(), cfg)
	require.NoError(t, s.Start(t.Context(), weftest.Host(map[component.ID]component.Component{storeID: st})))
	t.Cleanup(func() { require.NoError(t, s.Shutdown(context.Background())) })

	info := infopb.NewInfoClient(storeAPIClient(t, s, nil))
	_, err := info.Info(t.Context(), &infopb.InfoRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer s3cret")
	for range 2 {
		_, err = info.Info(ctx, &infopb.InfoRequest{})
		require.NoError(t, err)
	}

	m, err := tel.GetMetric("weft_query.store_api.calls")
	require.NoError(t, err)
	got := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		method, _ := dp.Attributes.Value("method")
		code, _ := dp.Attributes.Value("code")
		got[method.AsString()+" "+code.AsString()] = dp.Value
	}
	require.Equal(t, map[string]int64{"Info Unauthenticated": 1, "Info OK": 2}, got)
}
