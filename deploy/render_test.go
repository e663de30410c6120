// Package deploy holds the tests of the Kubernetes manifests under deploy/:
// every kustomization renders with the kustomize Go API, every rendered
// object decodes strictly into its k8s.io/api type, and the policy in
// policy_test.go holds for all of them.
package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// overlays are the kustomizations a user applies: the two overlays and the
// examples that add optional components. Each must render and pass policy.
var overlays = []string{
	"overlays/dev",
	"overlays/prod",
	"examples/prometheusrule-watch",
	"examples/root-log-reader",
	"examples/thanos-query",
	"examples/thanos-ruler",
	"examples/export-sampling",
}

// bundle is one rendered kustomization, decoded into k8s.io/api types.
type bundle struct {
	Namespaces          []*corev1.Namespace
	ServiceAccounts     []*corev1.ServiceAccount
	ConfigMaps          []*corev1.ConfigMap
	Services            []*corev1.Service
	DaemonSets          []*appsv1.DaemonSet
	Deployments         []*appsv1.Deployment
	ClusterRoles        []*rbacv1.ClusterRole
	ClusterRoleBindings []*rbacv1.ClusterRoleBinding
	Roles               []*rbacv1.Role
	RoleBindings        []*rbacv1.RoleBinding
	PriorityClasses     []*schedulingv1.PriorityClass
	NetworkPolicies     []*networkingv1.NetworkPolicy
}

var (
	renderMu    sync.Mutex
	renderCache = map[string][]byte{}
)

// render runs kustomize on dir (relative to deploy/) and returns the output
// as YAML, as `kubectl kustomize` prints it. Outputs are cached per dir.
func render(t testing.TB, dir string) []byte {
	t.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	if out, ok := renderCache[dir]; ok {
		return out
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	require.NoError(t, err, "kustomize build %s", dir)
	out, err := m.AsYaml()
	require.NoError(t, err)
	renderCache[dir] = out
	return out
}

// splitYAML splits a multi-document YAML stream into its documents.
func splitYAML(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), b...), []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

// decodeStrict converts one YAML document to JSON (duplicate keys fail) and
// decodes it into v the way the API server's strict field validation does:
// field names match case-sensitively (encoding/json alone would accept
// "readOnlyRootFileSystem"), unknown and duplicate fields fail.
func decodeStrict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// decodeBundle decodes every rendered object into its k8s.io/api type; an
// unknown kind or an unknown field is an error.
func decodeBundle(rendered []byte) (*bundle, error) {
	b := &bundle{}
	var errs []error
	for i, doc := range splitYAML(rendered) {
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, err))
			continue
		}
		var target any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Namespace":
			target = appendNew(&b.Namespaces)
		case "v1 ServiceAccount":
			target = appendNew(&b.ServiceAccounts)
		case "v1 ConfigMap":
			target = appendNew(&b.ConfigMaps)
		case "v1 Service":
			target = appendNew(&b.Services)
		case "apps/v1 DaemonSet":
			target = appendNew(&b.DaemonSets)
		case "apps/v1 Deployment":
			target = appendNew(&b.Deployments)
		case "rbac.authorization.k8s.io/v1 ClusterRole":
			target = appendNew(&b.ClusterRoles)
		case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
			target = appendNew(&b.ClusterRoleBindings)
		case "rbac.authorization.k8s.io/v1 Role":
			target = appendNew(&b.Roles)
		case "rbac.authorization.k8s.io/v1 RoleBinding":
			target = appendNew(&b.RoleBindings)
		case "scheduling.k8s.io/v1 PriorityClass":
			target = appendNew(&b.PriorityClasses)
		case "networking.k8s.io/v1 NetworkPolicy":
			target = appendNew(&b.NetworkPolicies)
		default:
			errs = append(errs, fmt.Errorf("%s %s/%s: no strict decoder for this kind; add one", tm.APIVersion, tm.Kind, tm.Metadata.Name))
			continue
		}
		if err := decodeStrict(doc, target); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", tm.Kind, tm.Metadata.Name, err))
		}
	}
	return b, errors.Join(errs...)
}

// appendNew appends a new zero object to *list and returns it.
func appendNew[T any](list *[]*T) *T {
	v := new(T)
	*list = append(*list, v)
	return v
}

// named returns the object called name in list; t fails if there is none.
func named[T interface{ GetName() string }](t testing.TB, list []T, name string) T {
	t.Helper()
	for _, o := range list {
		if o.GetName() == name {
			return o
		}
	}
	require.FailNow(t, "not rendered", "no object named %s", name)
	var zero T
	return zero
}

// mustBundle renders dir and decodes it strictly.
func mustBundle(t testing.TB, dir string) *bundle {
	t.Helper()
	b, err := decodeBundle(render(t, dir))
	require.NoError(t, err, "strict decoding of %s", dir)
	return b
}

func TestOverlaysRenderAndDecodeStrictly(t *testing.T) {
	for _, dir := range append([]string{"base"}, overlays...) {
		t.Run(dir, func(t *testing.T) {
			b := mustBundle(t, dir)
			require.Len(t, b.DaemonSets, 1)
			require.Len(t, b.Namespaces, 1)
			require.Equal(t, "weft-system", b.Namespaces[0].Name)
			for _, ds := range b.DaemonSets {
				require.Equal(t, "weft-system", ds.Namespace)
			}
			for _, np := range b.NetworkPolicies {
				require.Equal(t, "weft-system", np.Namespace, "NetworkPolicy %s", np.Name)
			}
			for _, d := range b.Deployments {
				require.Equal(t, "weft-system", d.Namespace, "Deployment %s", d.Name)
			}
			for _, s := range b.Services {
				require.Equal(t, "weft-system", s.Namespace, "Service %s", s.Name)
			}
		})
	}
	t.Run("grafana", func(t *testing.T) {
		b := mustBundle(t, "grafana")
		require.Len(t, b.ConfigMaps, 3)
	})
}

// The strict decoder is what the other tests rely on: a misspelt field in
// any object fails it.
func TestDecodeStrictRejectsUnknownFields(t *testing.T) {
	rendered := render(t, "overlays/prod")
	for _, c := range []struct{ name, from, to string }{
		{"misspelt pod field", "      serviceAccountName: weft", "      serviceAcountName: weft"},
		{"misspelt container field", "        readOnlyRootFilesystem: true", "        readOnlyRootFileSystem: true"},
		{"duplicate key", "      serviceAccountName: weft\n", "      serviceAccountName: weft\n      serviceAccountName: other\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Contains(t, string(rendered), c.from)
			_, err := decodeBundle([]byte(strings.Replace(string(rendered), c.from, c.to, 1)))
			require.Error(t, err)
		})
	}
	_, err := decodeBundle([]byte("apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n"))
	require.ErrorContains(t, err, "no strict decoder")
}
