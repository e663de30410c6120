package podscrapereceiver

import (
	"context"
	"log/slog"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/discovery/kubernetes"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftobs/weft/internal/kube"
)

// groupCollector runs a discoverer and keeps its current target groups by
// source, as the receiver's update does (an empty group removes one).
type groupCollector struct {
	mu     sync.Mutex
	groups map[string]*targetgroup.Group
	sends  int
}

func collect(t *testing.T, d discoverer) *groupCollector {
	t.Helper()
	c := &groupCollector{groups: map[string]*targetgroup.Group{}}
	ctx, cancel := context.WithCancel(t.Context())
	ch := make(chan []*targetgroup.Group)
	var wg sync.WaitGroup
	wg.Go(func() { d.Run(ctx, ch) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case tgs := <-ch:
				c.mu.Lock()
				c.sends++
				for _, g := range tgs {
					if len(g.Targets) > 0 {
						c.groups[g.Source] = g
					} else {
						delete(c.groups, g.Source)
					}
				}
				c.mu.Unlock()
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return c
}

func (c *groupCollector) snapshot() map[string]*targetgroup.Group {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*targetgroup.Group, len(c.groups))
	for k, g := range c.groups {
		out[k] = g
	}
	return out
}

// prometheusPodSD is Prometheus's own Kubernetes pod discovery (client-go
// informers), the reference the receiver's discovery must match. It is
// linked into this test binary only.
func prometheusPodSD(t *testing.T, apiURL, field string, namespaces []string) discoverer {
	t.Helper()
	u, err := url.Parse(apiURL)
	require.NoError(t, err)
	sd := &kubernetes.SDConfig{
		Role:             kubernetes.RolePod,
		APIServer:        promconfig.URL{URL: u},
		HTTPClientConfig: promconfig.DefaultHTTPClientConfig,
		Selectors:        []kubernetes.SelectorConfig{{Role: kubernetes.RolePod, Field: field}},
	}
	sd.NamespaceDiscovery.Names = namespaces
	metrics := sd.NewDiscovererMetrics(prometheus.NewRegistry(), nil)
	require.NoError(t, metrics.Register())
	d, err := kubernetes.New(slog.New(slog.DiscardHandler), metrics, sd)
	require.NoError(t, err)
	return d
}

func ptrTrue() *bool { b := true; return &b }

// diffPods are pods with every shape the pod role treats differently.
func diffPods() []*corev1.Pod {
	multi := pod("default", "multi", "node-a", "10.244.1.20",
		map[string]string{"app": "multi", "app.kubernetes.io/name": "multi-x", "team/owner": "obs"},
		map[string]string{"prometheus.io/scrape": "true", "sidecar.istio.io/status": istioStatus, "ünïcode-key": "v"},
		corev1.Container{Name: "web", Image: "web:1", Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
			{ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
			{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
		}},
		corev1.Container{Name: "sidecar", Image: "sidecar:2"},
		corev1.Container{Name: "istio-proxy", Image: "proxyv2:1.24", Ports: []corev1.ContainerPort{{Name: "http-envoy-prom", ContainerPort: 15090, Protocol: corev1.ProtocolTCP}}},
	)
	multi.Spec.InitContainers = []corev1.Container{
		{Name: "istio-init", Image: "proxyv2:1.24"},
		{Name: "migrate", Image: "migrate:3", Ports: []corev1.ContainerPort{{Name: "admin", ContainerPort: 7000, Protocol: corev1.ProtocolTCP}}},
	}
	multi.Status.HostIP = "192.168.0.10"
	multi.Status.ContainerStatuses = []corev1.ContainerStatus{
		{Name: "web", ContainerID: "containerd://aaa"},
		{Name: "istio-proxy", ContainerID: "containerd://bbb"},
	}
	multi.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "istio-init", ContainerID: "containerd://ccc"}}
	multi.OwnerReferences = []metav1.OwnerReference{
		{APIVersion: "v1", Kind: "ConfigMap", Name: "not-the-controller", UID: "u1"},
		{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "multi-5f7c", UID: "u2", Controller: ptrTrue()},
	}

	noPorts := pod("functions", "no-ports", "node-a", "10.244.1.21", map[string]string{"app": "fn"}, nil,
		corev1.Container{Name: "fn", Image: "fn:1"})
	noPorts.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "fn-job", UID: "u3", Controller: ptrTrue()}}

	notReady := pod("default", "not-ready", "node-a", "10.244.1.22", map[string]string{"app": "slow"}, nil,
		container("app", port("http", 8080)))
	notReady.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
		{Type: corev1.PodReady, Status: corev1.ConditionFalse},
	}

	noConditions := pod("default", "no-conditions", "node-a", "10.244.1.23", nil, nil, container("app", port("http", 8080)))
	noConditions.Status.Conditions = nil
	noConditions.Status.Phase = corev1.PodPending

	pending := pod("default", "pending", "node-a", "", map[string]string{"app": "later"}, nil, container("app", port("http", 8080)))
	pending.Status.Phase = corev1.PodPending

	ipv6 := pod("default", "ipv6", "node-a", "fd00::17", nil, nil, container("app", port("http", 8080)))

	other := pod("default", "elsewhere", "node-b", "10.244.2.10", nil, nil, container("app", port("http", 8080)))
	return []*corev1.Pod{multi, noPorts, notReady, noConditions, pending, ipv6, other}
}

// TestDiscoveryMatchesPrometheus runs the receiver's discovery and
// Prometheus's discovery/kubernetes side by side against the fake API and
// requires identical target groups after the initial list, after pods are
// added, changed and deleted during the watch, and after the server
// expired the watch's resourceVersion (both relist).
func TestDiscoveryMatchesPrometheus(t *testing.T) {
	for _, tc := range []struct {
		name       string
		namespaces []string
		// visible is how many diffPods have targets in the scenario.
		visible int
	}{
		{name: "all namespaces", visible: 5},
		{name: "two namespaces", namespaces: []string{"default", "functions"}, visible: 5},
		{name: "one namespace", namespaces: []string{"default"}, visible: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t)
			for _, p := range diffPods() {
				api.Apply(p)
			}
			cfg := createDefaultConfig().(*Config)
			cfg.NodeName = "node-a"
			set := receivertest.NewNopSettings(component.MustNewType(typeStr))
			set.Logger = zaptest.NewLogger(t)
			r, err := newReceiver(set, cfg, nil)
			require.NoError(t, err)
			ours, err := r.newDiscovery(sdKey{api: kube.APIConfig{APIServer: api.URL()}, namespaces: joinComma(tc.namespaces)})
			require.NoError(t, err)
			got := collect(t, ours)
			want := collect(t, prometheusPodSD(t, api.URL(), "spec.nodeName=node-a", tc.namespaces))

			// same waits until both discoveries show every change of the
			// step (done) and then requires equal groups.
			same := func(step string, n int, done func(map[string]*targetgroup.Group) bool) {
				t.Helper()
				ok := assert.Eventually(t, func() bool {
					w, g := want.snapshot(), got.snapshot()
					return len(w) == n && done(w) && done(g) && assert.ObjectsAreEqual(w, g)
				}, 20*time.Second, 10*time.Millisecond, step)
				if !ok {
					require.Equal(t, want.snapshot(), got.snapshot(), step)
					require.Len(t, want.snapshot(), n, step)
				}
			}
			same("initial list", tc.visible, func(map[string]*targetgroup.Group) bool { return true })
			require.Contains(t, got.snapshot(), "pod/default/multi")
			multi := got.snapshot()["pod/default/multi"]
			assert.Len(t, multi.Targets, 7, "3 ports + 1 portless + 1 sidecar port + 2 init containers")
			// Both watch now; wait until every watch is open so that the
			// changes below arrive as watch events.
			require.Eventually(t, func() bool { return api.Watches() >= 2*max(1, len(tc.namespaces)) }, 20*time.Second, 10*time.Millisecond)

			// Changes during the watch.
			pods := diffPods()
			ready := pods[2].DeepCopy()
			ready.Status.Conditions[1].Status = corev1.ConditionTrue
			ready.Labels["version"] = "v2"
			api.Apply(ready)
			gotIP := pods[4].DeepCopy()
			gotIP.Status.PodIP, gotIP.Status.Phase = "10.244.1.24", corev1.PodRunning
			api.Apply(gotIP)
			fewer := pods[0].DeepCopy()
			fewer.Spec.Containers = fewer.Spec.Containers[:1]
			fewer.Spec.Containers[0].Ports = fewer.Spec.Containers[0].Ports[:1]
			delete(fewer.Annotations, "prometheus.io/scrape")
			api.Apply(fewer)
			api.Delete("functions", "no-ports")
			api.Delete("default", "ipv6")
			api.Apply(pod("functions", "new-fn", "node-a", "10.244.1.25", map[string]string{"serving.knative.dev/revision": "r1"}, nil,
				container("user-container", port("user-port", 8080)), container("queue-proxy", port("http-usermetric", 9091))))
			visible := tc.visible // +1 pending got an IP, -2 deleted, +1 new
			if len(tc.namespaces) == 1 {
				visible = tc.visible + 1 - 1 // new-fn and no-ports are in functions
			}
			same("after changes", visible, func(g map[string]*targetgroup.Group) bool {
				nr, pending, multi := g["pod/default/not-ready"], g["pod/default/pending"], g["pod/default/multi"]
				_, ipv6 := g["pod/default/ipv6"]
				_, noPorts := g["pod/functions/no-ports"]
				_, newFn := g["pod/functions/new-fn"]
				return nr != nil && nr.Labels["__meta_kubernetes_pod_ready"] == "true" && nr.Labels["__meta_kubernetes_pod_label_version"] == "v2" &&
					pending != nil && multi != nil && len(multi.Targets) == 3 && !ipv6 && !noPorts && newFn == (len(tc.namespaces) != 1)
			})

			// The server expires the watch's version: both relist, and
			// changes made since still arrive.
			watches := api.Watches()
			api.Expire()
			api.Delete("default", "no-conditions")
			moved := ready.DeepCopy()
			moved.Status.PodIP = "10.244.1.26"
			api.Apply(moved)
			same("after expiry", visible-1, func(g map[string]*targetgroup.Group) bool {
				_, gone := g["pod/default/no-conditions"]
				nr := g["pod/default/not-ready"]
				return !gone && nr != nil && nr.Targets[0]["__address__"] == "10.244.1.26:8080"
			})
			assert.Greater(t, api.Watches(), watches, "watches were opened again")
		})
	}
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ","
		}
		out += v
	}
	return out
}
