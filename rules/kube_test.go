package rules

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
)

// fakeKubeAPI serves PrometheusRule lists per namespace and records the
// requests' label selectors and tokens.
type fakeKubeAPI struct {
	mu       sync.Mutex
	objects  map[string][]map[string]any // by namespace
	status   int
	selector []string
	auth     []string
}

func (f *fakeKubeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.selector = append(f.selector, r.URL.Query().Get("labelSelector"))
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	if f.status != 0 {
		w.WriteHeader(f.status)
		return
	}
	var ns string
	if _, err := namespaceOf(r.URL.Path, &ns); err != nil {
		http.NotFound(w, r)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRuleList", "items": f.objects[ns]})
}

func namespaceOf(path string, ns *string) (int, error) {
	const pre, post = "/apis/monitoring.coreos.com/v1/namespaces/", "/prometheusrules"
	if len(path) <= len(pre)+len(post) || path[:len(pre)] != pre || path[len(path)-len(post):] != post {
		return 0, os.ErrNotExist
	}
	*ns = path[len(pre) : len(path)-len(post)]
	return 1, nil
}

func promRuleObject(ns, name, group, expr string) map[string]any {
	return map[string]any{
		"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
		"metadata": map[string]any{
			"name": name, "namespace": ns, "uid": "u-1", "resourceVersion": "7", "generation": 1,
			"creationTimestamp": "2026-01-01T00:00:00Z", "labels": map[string]any{"team": "a"},
			"managedFields": []any{map[string]any{"manager": "kubectl"}},
		},
		"spec": map[string]any{"groups": []any{map[string]any{
			"name": group, "rules": []any{map[string]any{"alert": "A", "expr": expr, "for": "1m"}},
		}}},
	}
}

func TestKubernetesSource(t *testing.T) {
	api := &fakeKubeAPI{objects: map[string][]map[string]any{
		"shop":  {promRuleObject("shop", "errors", "shop.errors", "up == 0")},
		"other": {promRuleObject("other", "x", "other", "up == 0")},
	}}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600))
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", twoRules)

	e := startExtension(t, componenttest.NewNopTelemetrySettings(), func(c *Config) {
		c.RuleFiles = []string{dir}
		c.ReloadInterval = 3600e9 // reloads by hand
		c.Kubernetes = KubernetesConfig{Enabled: true, APIServer: srv.URL, Namespaces: []string{"shop"}, LabelSelector: "team=a", TokenFile: tokenFile}
	})
	s := e.Status()
	require.True(t, s.LastReloadSuccess, s.LastError)
	assert.Equal(t, []string{filepath.Join(dir, "r.yaml"), "kubernetes:shop/errors"}, s.Files)
	assert.Equal(t, 3, s.Rules)
	api.mu.Lock()
	assert.Equal(t, "team=a", api.selector[0])
	assert.Equal(t, "Bearer s3cret", api.auth[0])
	api.mu.Unlock()

	// An invalid object is rejected with its name; the old set runs on.
	api.mu.Lock()
	api.objects["shop"] = append(api.objects["shop"], promRuleObject("shop", "bad", "bad", "rate(up[5m]"))
	api.mu.Unlock()
	err := e.Reload()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kubernetes:shop/bad")
	assert.Equal(t, 3, e.Status().Rules)

	// The API failing keeps the old set too.
	api.mu.Lock()
	api.status = http.StatusForbidden
	api.mu.Unlock()
	err = e.Reload()
	require.ErrorContains(t, err, "HTTP 403")
	assert.Equal(t, 3, e.Status().Rules)

	// Fixed: the new object runs.
	api.mu.Lock()
	api.status = 0
	api.objects["shop"][1] = promRuleObject("shop", "bad", "fixed", "rate(up[5m]) > 1")
	api.mu.Unlock()
	require.NoError(t, e.Reload())
	assert.Equal(t, 4, e.Status().Rules)
}
