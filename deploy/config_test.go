package deploy

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// Paths inside the container where the DaemonSet mounts its ConfigMaps.
const (
	configDir = "/etc/weft/config"
	rulesDir  = "/etc/weft/rules"
)

// agentConfig is what one rendered overlay gives the agent: its arguments,
// its environment (downward API values stubbed) and the files of the
// ConfigMaps mounted at configDir and rulesDir.
type agentConfig struct {
	Args  []string
	Env   map[string]string
	Files map[string]string // container path → content
}

// configOf resolves the agent's arguments, environment and mounted files
// from a rendered bundle, following the references kustomize rewrote
// (hash-suffixed ConfigMap names).
func configOf(t testing.TB, b *bundle) agentConfig {
	t.Helper()
	require.Len(t, b.DaemonSets, 1)
	p := b.DaemonSets[0].Spec.Template.Spec
	i := slices.IndexFunc(p.Containers, func(c corev1.Container) bool { return c.Name == "weft" })
	require.GreaterOrEqual(t, i, 0, "container weft")
	c := p.Containers[i]
	cms := map[string]*corev1.ConfigMap{}
	for _, cm := range b.ConfigMaps {
		cms[cm.Name] = cm
	}
	ac := agentConfig{Args: c.Args, Env: map[string]string{}, Files: map[string]string{}}
	for _, ef := range c.EnvFrom {
		require.NotNil(t, ef.ConfigMapRef, "envFrom only from ConfigMaps (never Secrets)")
		cm := cms[ef.ConfigMapRef.Name]
		require.NotNil(t, cm, "envFrom names ConfigMap %s, which is not rendered", ef.ConfigMapRef.Name)
		for k, v := range cm.Data {
			ac.Env[ef.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			ac.Env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil || e.ValueFrom.ResourceFieldRef != nil:
			ac.Env[e.Name] = "(downward API)"
		default:
			t.Fatalf("env %s: only values, fieldRef and resourceFieldRef are expected", e.Name)
		}
	}
	vols := map[string]corev1.Volume{}
	for _, v := range p.Volumes {
		vols[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		v := vols[m.Name]
		if v.ConfigMap == nil {
			continue
		}
		cm := cms[v.ConfigMap.Name]
		require.NotNil(t, cm, "volume %s names ConfigMap %s, which is not rendered", v.Name, v.ConfigMap.Name)
		require.Empty(t, v.ConfigMap.Items, "volume %s: every key is mounted", v.Name)
		for k, content := range cm.Data {
			ac.Files[path.Join(m.MountPath, k)] = content
		}
	}
	return ac
}

// configFiles are the --config arguments of the agent.
func (ac agentConfig) configFiles() []string {
	var out []string
	for i, a := range ac.Args {
		if a == "--config" && i+1 < len(ac.Args) {
			out = append(out, ac.Args[i+1])
		}
	}
	return out
}

var envRef = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

func TestAgentConfigWiring(t *testing.T) {
	embedded, err := os.ReadFile("../cmd/weft/config/default.yaml")
	require.NoError(t, err)
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			ac := configOf(t, mustBundle(t, dir))
			files := ac.configFiles()
			require.NotEmpty(t, files)
			assert.Equal(t, "weft:default", files[0], "the embedded default profile comes first")
			assert.Contains(t, files, configDir+"/agent.yaml")
			sources := []string{string(embedded)}
			for _, f := range files[1:] {
				content, ok := ac.Files[f]
				require.True(t, ok, "--config %s is not a key of a mounted ConfigMap", f)
				sources = append(sources, content)
			}
			// Every variable read without a fallback must be set.
			for _, s := range sources {
				for _, m := range envRef.FindAllStringSubmatch(s, -1) {
					if m[2] == "" {
						assert.Contains(t, ac.Env, m[1], "the configuration reads ${env:%s} without a fallback", m[1])
					}
				}
			}
			// And the overlay sets the variables it exists for.
			for _, name := range []string{"WEFT_LOG_LEVEL", "WEFT_JAEGER_ENDPOINT", "WEFT_REMOTE_WRITE_URL", "WEFT_ALERTMANAGER_URL", "WEFT_FLUENT_ENDPOINT", "WEFT_DATA_DIR", "POD_IP", "NODE_NAME", "GOMEMLIMIT"} {
				assert.NotEmpty(t, ac.Env[name], "%s is not set", name)
			}
			// weft_rules reads /etc/weft/rules/*.yaml: the rules ConfigMap
			// must be mounted there with matching keys, and carry the
			// shipped PrometheusRule unchanged (cmd/weft's
			// TestShippedRulesAgree pins that file to the one the rules
			// loader's tests load).
			shipped, err := os.ReadFile("base/rules/high-error-rate.prometheusrule.yaml")
			require.NoError(t, err)
			var rules []string
			for f, content := range ac.Files {
				if ok, _ := path.Match(rulesDir+"/*.yaml", f); ok {
					rules = append(rules, f)
					assert.Equal(t, string(shipped), content, f)
				}
			}
			assert.Equal(t, []string{rulesDir + "/high-error-rate.prometheusrule.yaml"}, rules)
		})
	}
}

// The headless Service (weft-query) selects the agent pods and its target
// ports are ports the agent declares. It is the only Service of the agents;
// others (the thanos-query and thanos-ruler components', the ruler's
// headless too) select other pods.
func TestQueryServiceSelectsAgents(t *testing.T) {
	for _, dir := range append([]string{"base"}, overlays...) {
		b := mustBundle(t, dir)
		pod := b.DaemonSets[0].Spec.Template
		declared := map[string]bool{}
		for _, p := range pod.Spec.Containers[0].Ports {
			declared[p.Name] = true
		}
		s := named(t, b.Services, "weft-query")
		for _, o := range b.Services {
			if o != s {
				assert.NotEqual(t, s.Spec.Selector, o.Spec.Selector, "%s: Service %s selects the agents too", dir, o.Name)
			}
		}
		assert.Equal(t, "None", s.Spec.ClusterIP, "%s: headless", dir)
		require.NotEmpty(t, s.Spec.Selector, "%s: a Service without a selector has no endpoints", dir)
		for k, v := range s.Spec.Selector {
			assert.Equal(t, v, pod.Labels[k], "%s: selector %s=%s does not match the pod labels", dir, k, v)
		}
		for _, p := range s.Spec.Ports {
			assert.True(t, declared[p.TargetPort.StrVal], "%s: target port %s is not declared by the agent", dir, p.TargetPort.String())
		}
	}
}

func TestLogLevelPerOverlay(t *testing.T) {
	for dir, want := range map[string]string{"overlays/dev": "debug", "overlays/prod": "info"} {
		assert.Equal(t, want, configOf(t, mustBundle(t, dir)).Env["WEFT_LOG_LEVEL"], dir)
	}
	dev := configOf(t, mustBundle(t, "overlays/dev")).Env["WEFT_JAEGER_ENDPOINT"]
	prod := configOf(t, mustBundle(t, "overlays/prod")).Env["WEFT_JAEGER_ENDPOINT"]
	assert.NotEqual(t, dev, prod, "dev and prod send traces to different Jaegers")
}

// prometheusRule is the part of the prometheus-operator CRD weft reads; the
// strict decoder fails on any other field.
type prometheusRule struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Groups []struct {
			Name     string `json:"name"`
			Interval string `json:"interval,omitempty"`
			Rules    []struct {
				Alert       string            `json:"alert,omitempty"`
				Record      string            `json:"record,omitempty"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels,omitempty"`
				Annotations map[string]string `json:"annotations,omitempty"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

func TestPrometheusRuleDecodesStrictly(t *testing.T) {
	ac := configOf(t, mustBundle(t, "overlays/prod"))
	var pr prometheusRule
	require.NoError(t, decodeStrict([]byte(ac.Files[rulesDir+"/high-error-rate.prometheusrule.yaml"]), &pr))
	assert.Equal(t, "monitoring.coreos.com/v1", pr.APIVersion)
	assert.Equal(t, "PrometheusRule", pr.Kind)
	var alerts []string
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
		}
	}
	assert.Equal(t, []string{"HighErrorRate", "HighErrorRateIstio"}, alerts)
	require.Error(t, decodeStrict([]byte(strings.Replace(ac.Files[rulesDir+"/high-error-rate.prometheusrule.yaml"], "    for: 2m", "    fro: 2m", 1)), &prometheusRule{}),
		"a misspelt rule field fails")
}

// argoApplication is the part of Argo CD's Application CRD the example uses.
type argoApplication struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name       string   `json:"name"`
		Namespace  string   `json:"namespace"`
		Finalizers []string `json:"finalizers"`
	} `json:"metadata"`
	Spec struct {
		Project string `json:"project"`
		Source  struct {
			RepoURL        string `json:"repoURL"`
			TargetRevision string `json:"targetRevision"`
			Path           string `json:"path"`
		} `json:"source"`
		Destination struct {
			Server    string `json:"server"`
			Namespace string `json:"namespace"`
		} `json:"destination"`
		SyncPolicy struct {
			Automated struct {
				Prune    bool `json:"prune"`
				SelfHeal bool `json:"selfHeal"`
			} `json:"automated"`
			SyncOptions []string `json:"syncOptions"`
			Retry       struct {
				Limit   int `json:"limit"`
				Backoff struct {
					Duration    string `json:"duration"`
					Factor      int    `json:"factor"`
					MaxDuration string `json:"maxDuration"`
				} `json:"backoff"`
			} `json:"retry"`
		} `json:"syncPolicy"`
	} `json:"spec"`
}

func TestArgoCDApplication(t *testing.T) {
	raw, err := os.ReadFile("argocd/application.yaml")
	require.NoError(t, err)
	var app argoApplication
	require.NoError(t, decodeStrict(raw, &app))
	assert.Equal(t, "argoproj.io/v1alpha1", app.APIVersion)
	assert.Equal(t, "Application", app.Kind)
	// The path is an overlay this package renders and checks, relative to
	// the repository root.
	p, ok := strings.CutPrefix(app.Spec.Source.Path, "deploy/")
	require.True(t, ok, "source.path %q is not under deploy/", app.Spec.Source.Path)
	assert.Contains(t, overlays, p)
	b := mustBundle(t, p)
	assert.Equal(t, b.Namespaces[0].Name, app.Spec.Destination.Namespace)
	assert.NotEqual(t, "HEAD", app.Spec.Source.TargetRevision, "sync a release, not a moving branch")
}

// The NetworkPolicy (in the base, so in every overlay) selects the agent
// pods and lets in every port the agent serves (except the collector's
// health_check, which only the kubelet's probes would use), the query API
// only from a labelled namespace, the StoreAPI only from pods selected by
// label in the agents' namespace, and lets DNS and the API server out.
// (Which pods exactly: networkpolicy_test.go evaluates the rendered
// policies.)
func TestNetworkPolicyCoversAgentPorts(t *testing.T) {
	for _, dir := range append([]string{"base"}, overlays...) {
		b := mustBundle(t, dir)
		np := named(t, b.NetworkPolicies, "weft")
		pod := b.DaemonSets[0].Spec.Template
		require.NotEmpty(t, np.Spec.PodSelector.MatchLabels, "%s: the policy selects pods by label", dir)
		for k, v := range np.Spec.PodSelector.MatchLabels {
			assert.Equal(t, v, pod.Labels[k], "%s: podSelector %s=%s", dir, k, v)
		}
		var types []string
		for _, pt := range np.Spec.PolicyTypes {
			types = append(types, string(pt))
		}
		assert.ElementsMatch(t, []string{"Ingress", "Egress"}, types, "%s: both directions are restricted", dir)
		in := map[int32]bool{}
		for _, r := range np.Spec.Ingress {
			for _, p := range r.Ports {
				in[p.Port.IntVal] = true
				if p.Port.IntVal == 10901 {
					// The StoreAPI: only from pods of this namespace, by label.
					require.NotEmpty(t, r.From, "%s: 10901 from anywhere", dir)
					for _, from := range r.From {
						require.Nil(t, from.NamespaceSelector, "%s: 10901 from other namespaces", dir)
						require.NotNil(t, from.PodSelector, "%s: 10901 from pods", dir)
						assert.NotEmpty(t, from.PodSelector.MatchExpressions, "%s: 10901 from every pod", dir)
					}
				}
				if p.Port.IntVal != 8686 {
					continue
				}
				// The query API: only from namespaces named by label.
				require.NotEmpty(t, r.From, "%s: 8686 from anywhere", dir)
				for _, from := range r.From {
					require.NotNil(t, from.NamespaceSelector, "%s: 8686 from a namespace", dir)
					assert.NotEmpty(t, from.NamespaceSelector.MatchLabels, "%s: 8686 from every namespace", dir)
				}
			}
		}
		for _, p := range pod.Spec.Containers[0].Ports {
			if p.Name != "health" {
				assert.True(t, in[p.ContainerPort], "%s: port %s (%d) is not allowed in", dir, p.Name, p.ContainerPort)
			}
		}
		out := map[string]bool{}
		for _, r := range np.Spec.Egress {
			for _, p := range r.Ports {
				out[fmt.Sprintf("%s/%d", *p.Protocol, p.Port.IntVal)] = true
			}
		}
		for _, want := range []string{"UDP/53", "TCP/53", "TCP/443", "TCP/6443"} {
			assert.True(t, out[want], "%s: egress %s (DNS; the API server for discovery and token reviews)", dir, want)
		}
	}
}
