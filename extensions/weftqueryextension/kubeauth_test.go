package weftqueryextension

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/auth"
	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
)

// Users of the fake API server's tokens.
const (
	grafanaUser = "system:serviceaccount:monitoring:grafana"
	aliceUser   = "alice"
)

// fakeKubeAPI answers TokenReviews and SubjectAccessReviews on loopback:
// token "grafana-token" is grafanaUser, who may get nodes/weft;
// "alice-token" is aliceUser, who may not; any other token is invalid.
type fakeKubeAPI struct {
	srv *httptest.Server

	tokenReviews, accessReviews atomic.Int64
	failing                     atomic.Bool // answer 500 to every review

	mu       sync.Mutex
	authz    []string // Authorization headers of the reviews (weft's own credential)
	lastSAR  auth.SubjectAccessReview
	lastAuds []string // spec.audiences of the last TokenReview
}

func newFakeKubeAPI(t testing.TB, tlsServer bool) *fakeKubeAPI {
	t.Helper()
	f := &fakeKubeAPI{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.authz = append(f.authz, r.Header.Get("Authorization"))
		f.mu.Unlock()
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case auth.TokenReviewPath:
			f.tokenReviews.Add(1)
			if f.failing.Load() {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"kind":"Status","message":"etcd is on fire: internal detail"}`))
				return
			}
			var tr auth.TokenReview
			if err := json.NewDecoder(r.Body).Decode(&tr); err != nil || tr.Kind != "TokenReview" || tr.APIVersion != "authentication.k8s.io/v1" {
				http.Error(w, "bad TokenReview", http.StatusBadRequest)
				return
			}
			f.mu.Lock()
			f.lastAuds = tr.Spec.Audiences
			f.mu.Unlock()
			// The API server answers with the audiences the token is valid
			// for: the ones asked for, except for "other-audience-token".
			auds := tr.Spec.Audiences
			if len(auds) == 0 {
				auds = []string{"https://kubernetes.default.svc"}
			}
			switch tr.Spec.Token {
			case "grafana-token":
				tr.Status = auth.TokenReviewStatus{Authenticated: true, Audiences: auds,
					User: auth.UserInfo{Username: grafanaUser, UID: "u-1", Groups: []string{"system:serviceaccounts", "system:authenticated"}}}
			case "alice-token":
				tr.Status = auth.TokenReviewStatus{Authenticated: true, Audiences: auds, User: auth.UserInfo{Username: aliceUser}}
			case "other-audience-token":
				tr.Status = auth.TokenReviewStatus{Authenticated: true, Audiences: []string{"vault"}, User: auth.UserInfo{Username: grafanaUser}}
			default:
				tr.Status = auth.TokenReviewStatus{Error: "invalid bearer token"}
			}
			_ = json.NewEncoder(w).Encode(tr)
		case auth.SubjectAccessReviewPath:
			f.accessReviews.Add(1)
			var sar auth.SubjectAccessReview
			if err := json.NewDecoder(r.Body).Decode(&sar); err != nil || sar.Kind != "SubjectAccessReview" || sar.Spec.ResourceAttributes == nil {
				http.Error(w, "bad SubjectAccessReview", http.StatusBadRequest)
				return
			}
			f.mu.Lock()
			f.lastSAR = sar
			f.mu.Unlock()
			ra := sar.Spec.ResourceAttributes
			sar.Status.Allowed = sar.Spec.User == grafanaUser && ra.Verb == "get" && ra.Group == "" && ra.Resource == "nodes" && ra.Subresource == "weft"
			_ = json.NewEncoder(w).Encode(sar)
		default:
			http.NotFound(w, r)
		}
	})
	if tlsServer {
		f.srv = httptest.NewTLSServer(h)
	} else {
		f.srv = httptest.NewServer(h)
	}
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeKubeAPI) sar() auth.SubjectAccessReview {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastSAR
}

// testClock is a clock tests move by hand.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

type kubeFixtureOpts struct {
	mod    func(*KubernetesAuthConfig)
	clock  *testClock
	logger *zap.Logger
	tel    *component.TelemetrySettings
}

// kubeFixture starts weft_query with auth.kubernetes against api.
func kubeFixture(t *testing.T, api *fakeKubeAPI, o kubeFixtureOpts) *fixture {
	t.Helper()
	return newFixture(t, fixtureOpts{
		mod: func(c *Config) {
			c.Auth.Kubernetes.Enabled = true
			c.Auth.Kubernetes.APIServer = api.srv.URL
			if o.mod != nil {
				o.mod(&c.Auth.Kubernetes)
			}
		},
		before: func(s *server, _ *weftstoreextension.Store) {
			// The clock and logger are set before Start, so the server's
			// goroutines see them.
			logger := o.logger
			if logger == nil {
				logger = zap.NewNop()
			}
			now := time.Now
			if o.clock != nil {
				now = o.clock.now
			}
			k, err := auth.NewKube(s.cfg.Auth.Kubernetes.kubeConfig(), logger, now)
			require.NoError(t, err)
			s.kube = k
		},
		tel: o.tel,
	})
}

func TestKubernetesAuth(t *testing.T) {
	api := newFakeKubeAPI(t, false)
	f := kubeFixture(t, api, kubeFixtureOpts{mod: func(k *KubernetesAuthConfig) { k.ResourceAttributes.Name = "node-a" }})
	for _, p := range []string{"/healthz", "/ready"} {
		code, _ := get(t, f.url+p)
		assert.Equal(t, http.StatusOK, code, "%s answers the kubelet without a token", p)
	}
	assert.Zero(t, api.tokenReviews.Load(), "probes send no review")

	for _, c := range []struct {
		name, header string
		want         int
	}{
		{"allowed", "Bearer grafana-token", http.StatusOK},
		{"lowercase scheme", "bearer grafana-token", http.StatusOK},
		{"uppercase scheme, two spaces", "BEARER  grafana-token", http.StatusOK},
		{"valid token, denied", "Bearer alice-token", http.StatusForbidden},
		{"invalid token", "Bearer not-a-token", http.StatusUnauthorized},
		{"no token", "", http.StatusUnauthorized},
		{"scheme only", "Bearer", http.StatusUnauthorized},
		{"basic is not a token", basic("grafana", "grafana-token"), http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range []string{"/api/v1/query?query=1", "/api/traces?service=checkout", "/api/v1/logs", "/"} {
				var h []string
				if c.header != "" {
					h = []string{"Authorization", c.header}
				}
				code, body := get(t, f.url+p, h...)
				assert.Equal(t, c.want, code, "%s: %s", p, body)
			}
		})
	}
	// The SubjectAccessReview names the token's user, groups and UID and
	// the configured resource attributes.
	sar := api.sar()
	assert.Equal(t, aliceUser, sar.Spec.User)
	assert.Equal(t, auth.SARResourceAttributes{Verb: "get", Resource: "nodes", Subresource: "weft", Name: "node-a"}, *sar.Spec.ResourceAttributes)
	// An unauthenticated answer tells the client how to authenticate.
	req, err := http.NewRequest(http.MethodGet, f.url+"/api/v1/labels", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, `Bearer realm="weft"`, resp.Header.Get("WWW-Authenticate"))
}

// TestKubernetesAuthCache: repeated requests with one token make one
// TokenReview and one SubjectAccessReview until cache_ttl has passed;
// refused tokens are remembered for negative_cache_ttl; concurrent
// requests share one review.
func TestKubernetesAuthCache(t *testing.T) {
	api := newFakeKubeAPI(t, false)
	clock := newTestClock()
	f := kubeFixture(t, api, kubeFixtureOpts{clock: clock, mod: func(k *KubernetesAuthConfig) {
		k.CacheTTL, k.NegativeCacheTTL = time.Minute, 10*time.Second
	}})
	auth := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	for range 5 {
		code, _ := get(t, f.url+"/api/v1/labels", auth("grafana-token")...)
		require.Equal(t, http.StatusOK, code)
	}
	assert.Equal(t, int64(1), api.tokenReviews.Load())
	assert.Equal(t, int64(1), api.accessReviews.Load())

	for range 3 {
		code, _ := get(t, f.url+"/api/v1/labels", auth("bad")...)
		require.Equal(t, http.StatusUnauthorized, code)
		code, _ = get(t, f.url+"/api/v1/labels", auth("alice-token")...)
		require.Equal(t, http.StatusForbidden, code)
	}
	assert.Equal(t, int64(3), api.tokenReviews.Load(), "one review each for the bad and the denied token")
	assert.Equal(t, int64(2), api.accessReviews.Load(), "the bad token never reaches authorization")

	// Past negative_cache_ttl the refused tokens are reviewed again, the
	// allowed one is still remembered.
	clock.advance(11 * time.Second)
	for _, tok := range []string{"grafana-token", "bad", "alice-token"} {
		_, _ = get(t, f.url+"/api/v1/labels", auth(tok)...)
	}
	assert.Equal(t, int64(5), api.tokenReviews.Load())
	// Past cache_ttl the allowed one is reviewed again.
	clock.advance(time.Minute)
	code, _ := get(t, f.url+"/api/v1/labels", auth("grafana-token")...)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, int64(6), api.tokenReviews.Load())

	// Twenty concurrent requests with a new allowed token: one review.
	clock.advance(2 * time.Minute)
	before := api.tokenReviews.Load()
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodGet, f.url+"/api/v1/labels", nil)
			if err != nil {
				return
			}
			req.Header.Set("Authorization", "Bearer grafana-token")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, c := range codes {
		assert.Equal(t, http.StatusOK, c, "request %d", i)
	}
	assert.Equal(t, before+1, api.tokenReviews.Load())
}

// TestKubernetesAuthAPIDown: an API server that fails or cannot be reached
// gives 503 without its details and grants nothing; the failure is not
// remembered; the log line names the review, never the token.
func TestKubernetesAuthAPIDown(t *testing.T) {
	api := newFakeKubeAPI(t, false)
	core, logs := observer.New(zap.WarnLevel)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := tel.NewTelemetrySettings()
	f := kubeFixture(t, api, kubeFixtureOpts{logger: zap.New(core), tel: &set})
	authz := []string{"Authorization", "Bearer grafana-token"}

	api.failing.Store(true)
	for range 2 {
		code, body := get(t, f.url+"/api/v1/query?query=1", authz...)
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Equal(t, "authentication unavailable\n", string(body), "no detail of the API server's answer")
	}
	assert.Equal(t, int64(2), api.tokenReviews.Load(), "a failed review is not remembered")
	assert.Zero(t, api.accessReviews.Load())
	require.Equal(t, 1, logs.Len(), "one warning a minute at most")
	entry := logs.All()[0]
	assert.Equal(t, auth.ReviewToken, entry.ContextMap()["review"])
	assert.NotContains(t, fmt.Sprint(entry.ContextMap()), "grafana-token")
	assert.NotContains(t, entry.Message, "grafana-token")

	// Back: the same token passes.
	api.failing.Store(false)
	code, _ := get(t, f.url+"/api/v1/query?query=1", authz...)
	assert.Equal(t, http.StatusOK, code)

	// Gone (connection refused): 503 again for a token not yet remembered,
	// the probes still answer.
	api.srv.Close()
	code, _ = get(t, f.url+"/api/v1/labels", "Authorization", "Bearer alice-token")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	code, _ = get(t, f.url+"/ready")
	assert.Equal(t, http.StatusOK, code)

	m, err := tel.GetMetric("weft_query.auth_requests")
	require.NoError(t, err)
	got := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		r, _ := dp.Attributes.Value("result")
		got[r.AsString()] = dp.Value
	}
	assert.Equal(t, map[string]int64{"allowed": 1, "unauthenticated": 0, "forbidden": 0, "unavailable": 3}, got)
	m, err = tel.GetMetric("weft_query.auth_reviews")
	require.NoError(t, err)
	got = map[string]int64{}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		k, _ := dp.Attributes.Value("kind")
		got[k.AsString()] = dp.Value
	}
	assert.Equal(t, map[string]int64{auth.ReviewToken: 4, auth.ReviewAccess: 1}, got)
}

// TestKubernetesAuthAudiences: with audiences set, the TokenReview asks
// for them and a token valid only for another audience is refused.
func TestKubernetesAuthAudiences(t *testing.T) {
	api := newFakeKubeAPI(t, false)
	f := kubeFixture(t, api, kubeFixtureOpts{mod: func(k *KubernetesAuthConfig) { k.Audiences = []string{"weft"} }})
	code, _ := get(t, f.url+"/api/v1/labels", "Authorization", "Bearer grafana-token")
	assert.Equal(t, http.StatusOK, code)
	api.mu.Lock()
	assert.Equal(t, []string{"weft"}, api.lastAuds)
	api.mu.Unlock()
	code, _ = get(t, f.url+"/api/v1/labels", "Authorization", "Bearer other-audience-token")
	assert.Equal(t, http.StatusUnauthorized, code)
}

// TestKubernetesAuthConnection: the reviews go out over internal/kube's
// connection with weft's own credential (here a kubeconfig's token file
// and CA, over TLS), and a connection that cannot be resolved fails Start
// naming the key.
func TestKubernetesAuthConnection(t *testing.T) {
	api := newFakeKubeAPI(t, true)
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.srv.Certificate().Raw})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("weft-sa-token\n"), 0o600))
	kc := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kc, []byte(fmt.Sprintf(`current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: %q, certificate-authority-data: %s}}]
users: [{name: u, user: {tokenFile: token}}]
`, api.srv.URL, base64.StdEncoding.EncodeToString(ca))), 0o600))
	f := newFixture(t, fixtureOpts{mod: func(c *Config) {
		c.HTTP.NetAddr.Endpoint = "127.0.0.1:0"
		c.Auth.Kubernetes.Enabled, c.Auth.Kubernetes.KubeConfigFile = true, kc
	}})
	code, _ := get(t, f.url+"/api/v1/labels", "Authorization", "Bearer grafana-token")
	assert.Equal(t, http.StatusOK, code)
	api.mu.Lock()
	assert.Equal(t, []string{"Bearer weft-sa-token", "Bearer weft-sa-token"}, api.authz, "TokenReview and SubjectAccessReview carry weft's credential")
	api.mu.Unlock()

	// Not in a cluster and nothing configured: Start fails naming the key.
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	cfg := createDefaultConfig().(*Config)
	cfg.HTTP.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Auth.Kubernetes.Enabled = true
	require.NoError(t, cfg.Validate())
	s := newServer(componenttest.NewNopTelemetrySettings(), cfg)
	err := s.Start(t.Context(), weftstoretest.Host(f.store))
	require.ErrorContains(t, err, "auth.kubernetes")
	require.ErrorContains(t, err, "not in a cluster")
	require.NoError(t, s.Shutdown(context.Background()))
}

// TestLoopbackOrAuth: an endpoint off loopback without a credential is
// refused by Validate, naming the keys, unless allow_unauthenticated says so.
func TestLoopbackOrAuth(t *testing.T) {
	for _, c := range []struct {
		endpoint string
		mod      func(*AuthConfig)
		wantErr  string
	}{
		{"127.0.0.1:8686", nil, ""},
		{"127.31.4.5:8686", nil, ""},
		{"localhost:8686", nil, ""},
		{"[::1]:8686", nil, ""},
		{"10.1.2.3:8686", nil, `endpoint: "10.1.2.3:8686" is not a loopback address`},
		{"0.0.0.0:8686", nil, "auth.allow_unauthenticated: true"},
		{":8686", nil, "auth.kubernetes.enabled"},
		{"[::]:8686", nil, "is not a loopback address"},
		{"weft.example:8686", nil, "is not a loopback address"},
		{"10.1.2.3:8686", func(a *AuthConfig) { a.AllowUnauthenticated = true }, ""},
		{"10.1.2.3:8686", func(a *AuthConfig) { a.Kubernetes.Enabled = true }, ""},
		{"10.1.2.3:8686", func(a *AuthConfig) { a.BearerTokenFile = "/t" }, ""},
		{"10.1.2.3:8686", func(a *AuthConfig) { a.Basic = &BasicAuthConfig{Username: "u", Password: "p"} }, ""},
		{"10.1.2.3:8686", func(a *AuthConfig) { a.AllowUnauthenticated, a.Kubernetes.Enabled = true, true }, "auth.allow_unauthenticated: must not be true while a credential is configured"},
	} {
		t.Run(c.endpoint, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.HTTP.NetAddr.Endpoint = c.endpoint
			if c.mod != nil {
				c.mod(&cfg.Auth)
			}
			err := cfg.Validate()
			if c.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, c.wantErr)
		})
	}
}

func TestKubernetesAuthValidate(t *testing.T) {
	for _, c := range []struct {
		name    string
		mod     func(*KubernetesAuthConfig)
		wantErr string
	}{
		{"defaults", func(*KubernetesAuthConfig) {}, ""},
		{"api_server not a URL", func(k *KubernetesAuthConfig) { k.APIServer = "kubernetes:443" }, "auth.kubernetes.api_server: must be an http(s)://host[:port] URL"},
		{"api_server and kubeconfig", func(k *KubernetesAuthConfig) { k.APIServer, k.KubeConfigFile = "https://k:6443", "/kc" }, "set one, not both"},
		{"token_file and kubeconfig", func(k *KubernetesAuthConfig) { k.TokenFile, k.KubeConfigFile = "/t", "/kc" }, "auth.kubernetes.token_file: not used with auth.kubernetes.kubeconfig_file"},
		{"empty audience", func(k *KubernetesAuthConfig) { k.Audiences = []string{""} }, "auth.kubernetes.audiences[0]"},
		{"no verb", func(k *KubernetesAuthConfig) { k.ResourceAttributes.Verb = "" }, "auth.kubernetes.resource_attributes.verb"},
		{"no resource", func(k *KubernetesAuthConfig) { k.ResourceAttributes.Resource = "" }, "auth.kubernetes.resource_attributes.resource"},
		{"negative ttl", func(k *KubernetesAuthConfig) { k.CacheTTL = -time.Second }, "auth.kubernetes.cache_ttl"},
		{"negative negative ttl", func(k *KubernetesAuthConfig) { k.NegativeCacheTTL = -time.Second }, "auth.kubernetes.negative_cache_ttl"},
		{"no cache", func(k *KubernetesAuthConfig) { k.CacheSize = 0 }, "auth.kubernetes.cache_size"},
		{"zero timeout", func(k *KubernetesAuthConfig) { k.Timeout = 0 }, "auth.kubernetes.timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.Auth.Kubernetes.Enabled = true
			c.mod(&cfg.Auth.Kubernetes)
			err := cfg.Validate()
			if c.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, c.wantErr)
			assert.False(t, strings.Contains(err.Error(), "endpoint:"), "loopback endpoint: %v", err)
		})
	}
}
