package podscrapereceiver

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/receiver/receivertest"
	corev1 "k8s.io/api/core/v1"

	"github.com/weftobs/weft/internal/kube"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const istioStatus = `{"initContainers":["istio-init"],"containers":["istio-proxy"]}`

// nodePods are the pods of the golden tests: every preset's case, plus
// pods that must not become targets.
func nodePods(t *testing.T) []*corev1.Pod {
	t.Helper()
	var kn corev1.Pod
	require.NoError(t, json.Unmarshal(readFile(t, knativeFile), &kn))
	kn.Spec.NodeName = "node-a"
	kn.Status.Phase = corev1.PodRunning
	kn.Status.PodIP = "10.244.1.13"
	return []*corev1.Pod{
		// Istio metrics merging: prometheus.io/port points at the agent's
		// :15020, which serves Envoy's and the app's metrics together.
		pod("default", "reviews-v1-abc", "node-a", "10.244.1.10",
			map[string]string{"app": "reviews", "version": "v1"},
			map[string]string{"sidecar.istio.io/status": istioStatus, "prometheus.io/scrape": "true",
				"prometheus.io/port": "15020", "prometheus.io/path": "/stats/prometheus"},
			container("reviews", port("http", 9080)), container("istio-proxy", port("http-envoy-prom", 15090))),
		// Sidecar, no annotations.
		pod("default", "ratings-v1-xyz", "node-a", "10.244.1.11",
			map[string]string{"app": "ratings"}, map[string]string{"sidecar.istio.io/status": istioStatus},
			container("ratings", port("http", 9080)), container("istio-proxy", port("http-envoy-prom", 15090))),
		// Sidecar without merging, app annotated on its own port.
		pod("default", "productpage-v1-q", "node-a", "10.244.1.12",
			map[string]string{"app.kubernetes.io/name": "productpage"},
			map[string]string{"sidecar.istio.io/status": istioStatus, "prometheus.io/scrape": "true",
				"prometheus.io/port": "9080", "prometheus.io/path": "/metrics"},
			container("productpage", port("http", 9080)), container("istio-proxy", port("http-envoy-prom", 15090))),
		&kn,
		// The seed's ServiceMonitor target: app=my-function, port http-metrics.
		pod("functions", "my-function-1", "node-a", "10.244.1.14",
			map[string]string{"app": "my-function"}, nil,
			container("fn", port("http", 8081), port("http-metrics", 8080))),
		// Annotated without a port: every declared port but the sidecar's.
		pod("default", "plain-annotated", "node-a", "10.244.1.15",
			map[string]string{"app": "plain"}, map[string]string{"prometheus.io/scrape": "true", "prometheus.io/scheme": "https"},
			container("web", port("http", 8080), port("https", 8443)), container("istio-proxy", port("http-envoy-prom", 15090))),
		// Another node's pod and a finished pod are never targets.
		pod("default", "elsewhere", "node-b", "10.244.2.10",
			map[string]string{"app": "reviews"}, map[string]string{"sidecar.istio.io/status": istioStatus, "prometheus.io/scrape": "true"},
			container("istio-proxy", port("http-envoy-prom", 15090))),
		func() *corev1.Pod {
			p := pod("default", "finished-job", "node-a", "10.244.1.16",
				map[string]string{"app": "batch"}, map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "8080"},
				container("job", port("http", 8080)))
			p.Status.Phase = corev1.PodSucceeded
			return p
		}(),
	}
}

func presetConfig(apiURL string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.NodeName = "node-a"
	cfg.KubernetesAPI.APIServer = apiURL
	cfg.IstioSidecars, cfg.Annotations, cfg.Knative = true, true, true
	cfg.Monitors = []MonitorConfig{{
		Name: "my-function", Selector: LabelSelector{MatchLabels: map[string]string{"app": "my-function"}},
		Port: "http-metrics", Interval: 30 * time.Second,
	}}
	return cfg
}

// discoverGroups runs the receiver's pod discovery against api until want
// pods are known and returns the target groups.
func discoverGroups(t *testing.T, r *podScrapeReceiver, want int) []*targetgroup.Group {
	t.Helper()
	d, err := r.newDiscovery(r.jobs[len(r.jobs)-1].sd[0])
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	ch := make(chan []*targetgroup.Group)
	var (
		mu     sync.Mutex
		groups = map[string]*targetgroup.Group{}
		wg     sync.WaitGroup
	)
	wg.Add(2)
	go func() { defer wg.Done(); d.Run(ctx, ch) }()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case tgs := <-ch:
				mu.Lock()
				for _, g := range tgs {
					if len(g.Targets) > 0 {
						groups[g.Source] = g
					} else {
						delete(groups, g.Source)
					}
				}
				mu.Unlock()
			}
		}
	}()
	defer func() { cancel(); wg.Wait() }()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(groups) == want }, 20*time.Second, 10*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	out := make([]*targetgroup.Group, 0, len(groups))
	for _, g := range groups {
		out = append(out, g)
	}
	return out
}

func formatTargets(specs []*targetSpec) string {
	var b strings.Builder
	for _, s := range specs {
		res := make([]string, 0, len(s.resource))
		for k, v := range s.resource {
			res = append(res, k+"="+v)
		}
		sort.Strings(res)
		b.WriteString(s.url + "\n  labels: " + s.labels.String() + "\n  resource: " + strings.Join(res, " ") + "\n")
	}
	return b.String()
}

func TestPresetTargetsGolden(t *testing.T) {
	api := newFakeAPI(t)
	for _, p := range nodePods(t) {
		api.Apply(p)
	}
	set := receivertest.NewNopSettings(component.MustNewType(typeStr))
	cfg := presetConfig(api.URL())
	require.NoError(t, cfg.Validate())
	r, err := newReceiver(set, cfg, nil)
	require.NoError(t, err)
	groups := discoverGroups(t, r, 7) // the 8 pods less the other node's
	for _, sel := range api.Selectors() {
		assert.Equal(t, "spec.nodeName=node-a", sel, "discovery asks for this node's pods only")
	}
	for _, j := range r.jobs {
		t.Run(j.name, func(t *testing.T) {
			got := formatTargets(j.targets(groups, cfg.NodeName))
			path := filepath.Join("testdata", "golden", j.name+".txt")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run with -update to create")
			assert.Equal(t, string(want), got)
		})
	}
}

// TestPodDiscoveryEvents is the pods adapter over internal/kube's
// reflector: a batch of pod events becomes one send of target groups (a
// deleted pod an empty group of its source); an empty batch (a relist
// without changes) sends nothing.
func TestPodDiscoveryEvents(t *testing.T) {
	ch := make(chan []*targetgroup.Group, 1)
	d := &podDiscovery{ctx: t.Context(), ch: ch}
	p := &kube.Pod{
		Metadata: kube.ObjectMeta{Namespace: "shop", Name: "web-1", UID: "u1", Labels: map[string]string{"app.kubernetes.io/name": "web"}},
		Spec:     kube.PodSpec{NodeName: "node-a", Containers: []kube.Container{{Name: "web", Ports: []kube.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: "TCP"}}}}},
		Status:   kube.PodStatus{Phase: "Running", PodIP: "10.244.1.9"},
	}
	noIP := &kube.Pod{Metadata: kube.ObjectMeta{Namespace: "shop", Name: "pending"}}
	d.handle([]kube.Event[kube.Pod]{{Type: kube.Added, Object: p}, {Type: kube.Modified, Object: noIP}})
	tgs := <-ch
	require.Len(t, tgs, 2)
	assert.Equal(t, "pod/shop/web-1", tgs[0].Source)
	require.Len(t, tgs[0].Targets, 1)
	assert.Equal(t, model.LabelValue("10.244.1.9:8080"), tgs[0].Targets[0][model.AddressLabel])
	assert.Equal(t, model.LabelValue("web"), tgs[0].Labels["__meta_kubernetes_pod_label_app_kubernetes_io_name"])
	assert.Equal(t, model.LabelValue("unknown"), tgs[0].Labels["__meta_kubernetes_pod_ready"])
	assert.Equal(t, &targetgroup.Group{Source: "pod/shop/pending"}, tgs[1], "no IP: no targets")

	d.handle([]kube.Event[kube.Pod]{{Type: kube.Deleted, Object: p}})
	assert.Equal(t, []*targetgroup.Group{{Source: "pod/shop/web-1"}}, <-ch, "a deleted pod empties its group")

	d.handle(nil)
	assert.Empty(t, ch, "an empty batch sends nothing")
}
