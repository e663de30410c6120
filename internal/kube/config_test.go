package kube

import (
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}

func certPEM(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

// authServer is a TLS API server that answers every request with an empty
// pod list and records the requests.
func authServer(t *testing.T) *script {
	return newScript(t, true, func(_ int, w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprint(w, listJSON("1"))
	})
}

// getWith sends one GET through a client of cfg and returns the
// Authorization header the server saw.
func getWith(t *testing.T, s *script, cfg APIConfig) string {
	t.Helper()
	c, err := NewClient(cfg, "")
	require.NoError(t, err)
	defer c.Close()
	before := len(s.requests())
	var page listPage[Pod]
	require.NoError(t, c.GetJSON(t.Context(), "/api/v1/pods", nil, &page))
	reqs := s.requests()
	require.Len(t, reqs, before+1)
	assert.Equal(t, "weft", reqs[before].Header.Get("User-Agent"))
	return reqs[before].Header.Get("Authorization")
}

func TestAPIConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  APIConfig
		want []string
	}{
		{"in cluster", APIConfig{}, nil},
		{"in cluster, own token and CA", APIConfig{TokenFile: "/t", CAFile: "/ca"}, nil},
		{"URL, token and CA", APIConfig{APIServer: "https://10.96.0.1:443", TokenFile: "/t", CAFile: "/ca"}, nil},
		{"kubeconfig", APIConfig{KubeConfigFile: "/kc"}, nil},
		{"not a URL", APIConfig{APIServer: "kubernetes.default.svc:443"}, []string{
			`k.api_server: must be an http(s)://host[:port] URL or empty (in cluster), got "kubernetes.default.svc:443"`}},
		{"no host", APIConfig{APIServer: "https://"}, []string{"k.api_server: must be an http(s)://host[:port] URL"}},
		{"both", APIConfig{APIServer: "https://k:6443", KubeConfigFile: "/kc"}, []string{"k.api_server and k.kubeconfig_file: set one, not both"}},
		{"files with kubeconfig", APIConfig{KubeConfigFile: "/kc", TokenFile: "/t", CAFile: "/ca"}, []string{
			"k.token_file: not used with k.kubeconfig_file", "k.ca_file: not used with k.kubeconfig_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate("k.")
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			for _, w := range tc.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

// TestExplicitURLTokenAndCA: api_server with token_file (read again for
// every request) and ca_file (verifying the server).
func TestExplicitURLTokenAndCA(t *testing.T) {
	s := authServer(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ca.crt"), certPEM(t, s.srv))
	writeFile(t, filepath.Join(dir, "token"), "token-1\n")
	cfg := APIConfig{APIServer: s.srv.URL, TokenFile: filepath.Join(dir, "token"), CAFile: filepath.Join(dir, "ca.crt")}
	c, err := NewClient(cfg, "")
	require.NoError(t, err)
	defer c.Close()
	var page listPage[Pod]
	require.NoError(t, c.GetJSON(t.Context(), "/api/v1/pods", nil, &page))
	writeFile(t, filepath.Join(dir, "token"), "token-2\n")
	require.NoError(t, c.GetJSON(t.Context(), "/api/v1/pods", nil, &page))
	reqs := s.requests()
	assert.Equal(t, "Bearer token-1", reqs[0].Header.Get("Authorization"))
	assert.Equal(t, "Bearer token-2", reqs[1].Header.Get("Authorization"), "the rotated token is read for the next request")

	// Without ca_file the server's certificate is not trusted.
	c2, err := NewClient(APIConfig{APIServer: s.srv.URL}, "")
	require.NoError(t, err)
	defer c2.Close()
	err = c2.GetJSON(t.Context(), "/api/v1/pods", nil, &page)
	require.ErrorContains(t, err, "certificate")
	assert.ErrorContains(t, err, "GET "+s.srv.URL+"/api/v1/pods: ")
}

func TestKubeConfig(t *testing.T) {
	s := authServer(t)
	ca := certPEM(t, s.srv)
	for _, tc := range []struct {
		name    string
		cluster string
		user    string
		auth    string
	}{
		{
			name:    "CA file relative to the kubeconfig, token file",
			cluster: "certificate-authority: certs/ca.crt",
			user:    "tokenFile: certs/token",
			auth:    "Bearer from-file",
		},
		{
			name:    "CA data, inline token",
			cluster: "certificate-authority-data: " + base64.StdEncoding.EncodeToString([]byte(ca)),
			user:    "token: inline",
			auth:    "Bearer inline",
		},
		{
			name:    "insecure, basic auth",
			cluster: "insecure-skip-tls-verify: true",
			user:    "username: admin\n    password: secret",
			auth:    "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:secret")),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.Mkdir(filepath.Join(dir, "certs"), 0o755))
			writeFile(t, filepath.Join(dir, "certs", "ca.crt"), ca)
			writeFile(t, filepath.Join(dir, "certs", "token"), "from-file\n")
			kc := fmt.Sprintf(`apiVersion: v1
kind: Config
current-context: ctx-b
clusters:
- name: other
  cluster: {server: "https://192.0.2.1:6443"}
- name: test
  cluster:
    server: %s
    %s
contexts:
- name: ctx-a
  context: {cluster: other, user: nobody}
- name: ctx-b
  context: {cluster: test, user: me, namespace: ignored}
users:
- name: nobody
  user: {token: wrong}
- name: me
  user:
    %s
`, s.srv.URL, tc.cluster, tc.user)
			path := filepath.Join(dir, "kubeconfig")
			writeFile(t, path, kc)
			assert.Equal(t, tc.auth, getWith(t, s, APIConfig{KubeConfigFile: path}))
		})
	}
}

func TestKubeConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"exec plugin", `current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {exec: {command: aws, args: [eks, get-token]}}}]`, "exec and auth-provider plugins are not supported"},
		{"no context", `current-context: c
contexts: []`, `current-context "c" not found`},
		{"no cluster", `current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]`, `cluster "k" not found`},
		{"bad CA", `current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: bm90IGEgY2VydA==}}]`, "no PEM certificate"},
		{"not yaml", "current-context: [", "parse kubeconfig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kubeconfig")
			writeFile(t, path, tc.body)
			_, err := NewClient(APIConfig{KubeConfigFile: path}, "")
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestInClusterTokenRotation: in cluster (here with token_file and ca_file
// standing in for the service account's), the token is read again for
// every request, so a token rotated during a watch is used by the next.
func TestInClusterTokenRotation(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/token", "token-1\n")
	s := newScript(t, true, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 0:
			_, _ = fmt.Fprint(w, listJSON("1"))
		case 1:
			// The token rotates while the watch is open; the server
			// then ends the watch.
			writeFile(t, dir+"/token", "token-2\n")
		default:
			hang(w, r)
		}
	})
	writeFile(t, dir+"/ca.crt", certPEM(t, s.srv))
	u, err := url.Parse(s.srv.URL)
	require.NoError(t, err)
	t.Setenv("KUBERNETES_SERVICE_HOST", u.Hostname())
	t.Setenv("KUBERNETES_SERVICE_PORT", u.Port())
	rf := podReflector(t, APIConfig{TokenFile: dir + "/token", CAFile: dir + "/ca.crt"}, ListWatch[Pod]{}, func([]Event[Pod]) {})
	run(t, rf)
	require.Eventually(t, func() bool { return len(s.requests()) >= 3 }, 10*time.Second, 5*time.Millisecond)
	reqs := s.requests()
	assert.Equal(t, "Bearer token-1", reqs[0].Header.Get("Authorization"))
	assert.Equal(t, "Bearer token-1", reqs[1].Header.Get("Authorization"))
	assert.Equal(t, "Bearer token-2", reqs[2].Header.Get("Authorization"), "the rotated token is read for the next request")
}

func TestConnectErrors(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		name string
		cfg  APIConfig
		want string
	}{
		{"no cluster", APIConfig{}, "not in a cluster: KUBERNETES_SERVICE_HOST"},
		{"bad URL", APIConfig{APIServer: "kubernetes.default.svc:443"}, "want http(s)://host[:port]"},
		{"missing kubeconfig", APIConfig{KubeConfigFile: "/nonexistent/kubeconfig"}, "read kubeconfig"},
		{"missing token file", APIConfig{APIServer: "https://127.0.0.1:6443", TokenFile: missing}, "token_file: read token file"},
		{"missing CA file", APIConfig{APIServer: "https://127.0.0.1:6443", CAFile: missing}, "ca_file: read CA file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewClient(tc.cfg, "")
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("in cluster, no token", func(t *testing.T) {
		t.Setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
		t.Setenv("KUBERNETES_SERVICE_PORT", "6443")
		_, err := NewClient(APIConfig{TokenFile: missing}, "")
		require.ErrorContains(t, err, "token_file: read token file")
		if _, statErr := os.Stat(DefaultServiceAccountDir); statErr != nil {
			_, err = NewClient(APIConfig{}, "")
			require.ErrorContains(t, err, "in-cluster service account token")
		}
	})
}

// TestPostJSON: a 2xx answer is decoded; another status is a *StatusError
// with the server's message and never the request body.
func TestPostJSON(t *testing.T) {
	s := newScript(t, false, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			_, _ = fmt.Fprint(w, `{"status":{"authenticated":true}}`)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = fmt.Fprint(w, `{"kind":"Status","reason":"Forbidden","message":"no","code":403}`)
	})
	c, err := NewClient(APIConfig{APIServer: s.srv.URL}, "weft-test")
	require.NoError(t, err)
	defer c.Close()
	var out struct {
		Status struct {
			Authenticated bool `json:"authenticated"`
		} `json:"status"`
	}
	require.NoError(t, c.PostJSON(t.Context(), "/apis/authentication.k8s.io/v1/tokenreviews", map[string]string{"token": "s3cret"}, &out))
	assert.True(t, out.Status.Authenticated)
	assert.Equal(t, "application/json", s.requests()[0].Header.Get("Content-Type"))

	err = c.PostJSON(t.Context(), "/apis/authentication.k8s.io/v1/tokenreviews", map[string]string{"token": "s3cret"}, &out)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, StatusError{Code: 403, Reason: "Forbidden", Message: "no"}, *se)
	assert.NotContains(t, err.Error(), "s3cret")
}
