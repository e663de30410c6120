package kubepods

import (
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}

func certPEM(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

func TestKubeConfig(t *testing.T) {
	s := newScript(t, true, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			_, _ = fmt.Fprint(w, listJSON("1", podJSON("default", "a", "1", "10.0.0.1")))
			return
		}
		hang(w, r)
	})
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
			before := len(s.requests())
			rec := &recorder{}
			wt, err := New(Config{KubeConfigFile: path}, zaptest.NewLogger(t), rec.handle)
			require.NoError(t, err)
			run(t, wt)
			require.Eventually(t, func() bool { return len(s.requests()) > before }, 10*time.Second, 5*time.Millisecond)
			assert.Equal(t, tc.auth, s.requests()[before].Header.Get("Authorization"))
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
			_, err := New(Config{KubeConfigFile: path}, zaptest.NewLogger(t), func([]Event) {})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
