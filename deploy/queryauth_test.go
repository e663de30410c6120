package deploy

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/weftobs/weft/extensions/weftqueryextension"
)

// mergedConfig merges the configuration files the agent loads (embedded
// default, then the overlay's --config files) as the collector does (maps
// key by key, lists replaced), with env's values substituted for
// ${env:…} (a variable missing from env takes its fallback).
func mergedConfig(t testing.TB, ac agentConfig, env map[string]string) *confmap.Conf {
	t.Helper()
	embedded, err := os.ReadFile("../cmd/weft/config/default.yaml")
	require.NoError(t, err)
	sources := []string{string(embedded)}
	for _, f := range ac.configFiles()[1:] {
		sources = append(sources, ac.Files[f])
	}
	conf := confmap.New()
	for _, src := range sources {
		expanded := envRef.ReplaceAllStringFunc(src, func(m string) string {
			sub := envRef.FindStringSubmatch(m)
			if v, ok := env[sub[1]]; ok {
				return v
			}
			return strings.TrimPrefix(sub[2], ":-")
		})
		var raw map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(expanded), &raw))
		require.NoError(t, conf.Merge(confmap.NewFromStringMap(raw)))
	}
	return conf
}

// queryConfig is the merged weft_query section (mergedConfig),
// unmarshalled as the collector does.
func queryConfig(t *testing.T, ac agentConfig, env map[string]string) *weftqueryextension.Config {
	t.Helper()
	section, err := mergedConfig(t, ac, env).Sub("extensions::weft_query")
	require.NoError(t, err)
	cfg := weftqueryextension.NewFactory().CreateDefaultConfig().(*weftqueryextension.Config)
	require.NoError(t, section.Unmarshal(cfg))
	return cfg
}

// The query API listens on the pod IP: every overlay's configuration turns
// on Kubernetes authentication and passes weft_query's own validation with
// a real pod IP, while the embedded default alone is refused there.
func TestQueryAPIRequiresKubernetesAuth(t *testing.T) {
	env := map[string]string{"POD_IP": "10.244.1.17", "NODE_NAME": "node-a"}
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			cfg := queryConfig(t, configOf(t, mustBundle(t, dir)), env)
			assert.Equal(t, "10.244.1.17:8686", cfg.HTTP.NetAddr.Endpoint)
			require.NoError(t, cfg.Validate())
			k := cfg.Auth.Kubernetes
			assert.True(t, k.Enabled, "auth.kubernetes.enabled")
			assert.False(t, cfg.Auth.AllowUnauthenticated)
			assert.Empty(t, k.APIServer, "in cluster: the service account's token and CA")
			assert.Empty(t, k.KubeConfigFile)
			assert.Equal(t, weftqueryextension.ResourceAttributes{Verb: "get", Resource: "nodes", Subresource: "weft", Name: "node-a"}, k.ResourceAttributes)
			assert.Empty(t, cfg.Auth.BearerToken, "no static secret in a ConfigMap")
			assert.Nil(t, cfg.Auth.Basic)
		})
	}
	// Without the overlay's files, the same pod IP is refused, naming the keys.
	cfg := queryConfig(t, agentConfig{Args: []string{"--config", "weft:default"}}, env)
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "endpoint")
	assert.Contains(t, err.Error(), "auth.allow_unauthenticated")
}

// The agent may create exactly the two reviews; the reader role grants
// exactly the permission the configuration checks, and only Grafana's
// binding (applied with deploy/grafana) uses it.
func TestQueryAPIRBAC(t *testing.T) {
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	}
	for _, dir := range append([]string{"base"}, overlays...) {
		t.Run(dir, func(t *testing.T) {
			b := mustBundle(t, dir)
			agent := role(b, agentRole)
			var creates []rbacv1.PolicyRule
			for _, r := range agent.Rules {
				if slices.Contains(r.Verbs, "create") {
					creates = append(creates, r)
				}
			}
			assert.Equal(t, want, creates, "create on exactly tokenreviews and subjectaccessreviews")
			bound := false
			for _, rb := range b.ClusterRoleBindings {
				assert.NotEqual(t, "weft-query-reader", rb.RoleRef.Name, "readers are bound by the operator (deploy/grafana), not by the agent's manifests")
				if rb.RoleRef.Name == agentRole {
					bound = slices.ContainsFunc(rb.Subjects, func(s rbacv1.Subject) bool {
						return s.Kind == "ServiceAccount" && s.Name == b.DaemonSets[0].Spec.Template.Spec.ServiceAccountName && s.Namespace == "weft-system"
					})
				}
			}
			assert.True(t, bound, "the agent's ServiceAccount holds its role")

			// The reader role is what the SubjectAccessReview asks for.
			ra := weftqueryextension.ResourceAttributes{Verb: "get", Resource: "nodes", Subresource: "weft"}
			if dir != "base" {
				ra = queryConfig(t, configOf(t, b), map[string]string{"POD_IP": "10.0.0.1", "NODE_NAME": "node-b"}).Auth.Kubernetes.ResourceAttributes
			}
			assert.Equal(t, []rbacv1.PolicyRule{{APIGroups: []string{ra.Group}, Resources: []string{ra.Resource + "/" + ra.Subresource}, Verbs: []string{ra.Verb}}},
				role(b, "weft-query-reader").Rules)
		})
	}
	t.Run("grafana", func(t *testing.T) {
		g := mustBundle(t, "grafana")
		require.Len(t, g.ClusterRoleBindings, 1)
		rb := g.ClusterRoleBindings[0]
		assert.Equal(t, rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "weft-query-reader"}, rb.RoleRef)
		require.Len(t, rb.Subjects, 1)
		assert.Equal(t, "ServiceAccount", rb.Subjects[0].Kind)
		assert.Equal(t, g.ConfigMaps[0].Namespace, rb.Subjects[0].Namespace, "Grafana's ServiceAccount, in Grafana's namespace")
		assert.Empty(t, g.ClusterRoles, "the role itself comes with the base")
	})
}
