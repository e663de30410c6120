package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// pod is a pod as a NetworkPolicy sees it: its namespace (whose labels
// are only the name label Kubernetes sets on every namespace, unless
// nsLabels adds more) and its labels.
type pod struct {
	namespace string
	nsLabels  map[string]string
	labels    map[string]string
}

func (p pod) namespaceLabels() labels.Set {
	l := labels.Set{"kubernetes.io/metadata.name": p.namespace}
	for k, v := range p.nsLabels {
		l[k] = v
	}
	return l
}

// selects reports whether sel selects l; an invalid selector selects
// nothing (the API server would refuse it).
func selects(sel *metav1.LabelSelector, l labels.Set) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(l)
}

// peerSelects reports whether peer, in a policy of namespace ns, selects p.
// ipBlock peers select no pod here (pod IPs are not modelled).
func peerSelects(peer networkingv1.NetworkPolicyPeer, ns string, p pod) bool {
	switch {
	case peer.IPBlock != nil:
		return false
	case peer.NamespaceSelector == nil && p.namespace != ns:
		return false
	case peer.NamespaceSelector != nil && !selects(peer.NamespaceSelector, p.namespaceLabels()):
		return false
	}
	return peer.PodSelector == nil || selects(peer.PodSelector, p.labels)
}

// portAdmits reports whether ports admit port/proto. Named ports are not
// resolved: these policies use numbers.
func portAdmits(ports []networkingv1.NetworkPolicyPort, port int32, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp != proto {
			continue
		}
		if p.Port == nil {
			return true
		}
		if p.Port.Type != intstr.Int {
			continue
		}
		end := p.Port.IntVal
		if p.EndPort != nil {
			end = *p.EndPort
		}
		if port >= p.Port.IntVal && port <= end {
			return true
		}
	}
	return false
}

// ruleAdmits reports whether one rule (its peers and ports) admits peer on
// port/proto, in a policy of namespace ns.
func ruleAdmits(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, ns string, peer pod, port int32, proto corev1.Protocol) bool {
	return (len(peers) == 0 || slices.ContainsFunc(peers, func(p networkingv1.NetworkPolicyPeer) bool { return peerSelects(p, ns, peer) })) &&
		portAdmits(ports, port, proto)
}

// policyTypes are np's directions, with the API server's default when
// none is written: Ingress, plus Egress if there are egress rules.
func policyTypes(np *networkingv1.NetworkPolicy) []networkingv1.PolicyType {
	if len(np.Spec.PolicyTypes) > 0 {
		return np.Spec.PolicyTypes
	}
	t := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	if len(np.Spec.Egress) > 0 {
		t = append(t, networkingv1.PolicyTypeEgress)
	}
	return t
}

// admits reports whether the policies let subject's traffic in direction
// dir with peer through on port/proto: open when no policy of that
// direction selects subject, else when a rule of one that does admits it.
func admits(nps []*networkingv1.NetworkPolicy, subject pod, dir networkingv1.PolicyType, peer pod, port int32, proto corev1.Protocol) bool {
	selected := false
	for _, np := range nps {
		if np.Namespace != subject.namespace || !selects(&np.Spec.PodSelector, subject.labels) || !slices.Contains(policyTypes(np), dir) {
			continue
		}
		selected = true
		if dir == networkingv1.PolicyTypeIngress {
			for _, r := range np.Spec.Ingress {
				if ruleAdmits(r.From, r.Ports, np.Namespace, peer, port, proto) {
					return true
				}
			}
			continue
		}
		for _, r := range np.Spec.Egress {
			if ruleAdmits(r.To, r.Ports, np.Namespace, peer, port, proto) {
				return true
			}
		}
	}
	return !selected
}

// connects reports whether from may open a connection to to on port/proto:
// to's ingress and from's egress must both admit it.
func connects(nps []*networkingv1.NetworkPolicy, from, to pod, port int32, proto corev1.Protocol) bool {
	return admits(nps, to, networkingv1.PolicyTypeIngress, from, port, proto) &&
		admits(nps, from, networkingv1.PolicyTypeEgress, to, port, proto)
}

// The pods the cases below talk about: kube-dns as every distribution
// labels it, Grafana in the monitoring namespace, an application pod and
// another pod in weft-system.
var (
	kubeDNSPod = pod{namespace: "kube-system", labels: map[string]string{"k8s-app": "kube-dns"}}
	grafanaPod = pod{namespace: "monitoring", labels: map[string]string{"app.kubernetes.io/name": "grafana"}}
	appPod     = pod{namespace: "shop", labels: map[string]string{"app": "reviews"}}
	strayPod   = pod{namespace: "weft-system", labels: map[string]string{"app": "debug"}}
)

func agentPod(b *bundle) pod {
	t := b.DaemonSets[0].Spec.Template
	return pod{namespace: b.DaemonSets[0].Namespace, labels: t.Labels}
}

// queryPod is Thanos Query's pod as the component renders it.
func queryPod(t testing.TB) pod {
	t.Helper()
	d := named(t, mustBundle(t, thanosExample).Deployments, "thanos-query")
	return pod{namespace: d.Namespace, labels: d.Spec.Template.Labels}
}

// The rendered policies, evaluated: Thanos Query reaches every agent's
// StoreAPI and nothing else reaches it; Grafana reaches Thanos Query; Thanos
// Query reaches DNS and the agents' StoreAPI only. Without the component,
// the agents' policy admits the same pods (they arrive with the component).
func TestNetworkPolicyStoreAPI(t *testing.T) {
	query := queryPod(t)
	for _, dir := range append([]string{"base"}, overlays...) {
		t.Run(dir, func(t *testing.T) {
			b := mustBundle(t, dir)
			nps, agent := b.NetworkPolicies, agentPod(b)
			const grpc, http = 10901, 10902
			tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
			assert.True(t, admits(nps, agent, networkingv1.PolicyTypeIngress, query, grpc, tcp), "Thanos Query → agent StoreAPI")
			for name, p := range map[string]pod{"grafana": grafanaPod, "an application": appPod, "another pod of weft-system": strayPod, "another agent": agent} {
				assert.False(t, connects(nps, p, agent, grpc, tcp), "%s → agent StoreAPI", name)
			}
			// The agents resolve names through kube-dns by their own rule,
			// not only through the rule that lets them reach any pod.
			np := named(t, nps, "weft")
			assert.True(t, slices.ContainsFunc(np.Spec.Egress, func(r networkingv1.NetworkPolicyEgressRule) bool {
				return len(r.To) > 0 && len(r.Ports) > 0 && ruleAdmits(r.To, r.Ports, np.Namespace, kubeDNSPod, 53, udp)
			}), "a rule of its own lets the agent reach kube-dns on 53/UDP")
			if len(b.Deployments) == 0 {
				return
			}
			assert.True(t, connects(nps, query, agent, grpc, tcp), "Thanos Query → agent StoreAPI, both policies")
			assert.True(t, connects(nps, grafanaPod, query, http, tcp), "Grafana → Thanos Query")
			assert.True(t, connects(nps, query, kubeDNSPod, 53, udp), "Thanos Query → DNS/UDP")
			assert.True(t, connects(nps, query, kubeDNSPod, 53, tcp), "Thanos Query → DNS/TCP")
			assert.False(t, connects(nps, appPod, query, http, tcp), "an application → Thanos Query (no credential of its own)")
			assert.False(t, connects(nps, query, agent, 8686, tcp), "Thanos Query → agent query API")
			assert.False(t, connects(nps, query, appPod, 80, tcp), "Thanos Query → an application")
		})
	}
}

// The evaluator itself: a policy that selects a pod closes the direction,
// an empty peer list admits everyone, ports and protocols must match.
func TestNetworkPolicyEvaluator(t *testing.T) {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	target := pod{namespace: "a", labels: map[string]string{"app": "x"}}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "a"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "y"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: new(intstr.FromInt32(80))}},
			}},
		},
	}
	nps := []*networkingv1.NetworkPolicy{np}
	y := pod{namespace: "a", labels: map[string]string{"app": "y"}}
	assert.True(t, connects(nps, y, target, 80, tcp))
	assert.False(t, connects(nps, y, target, 80, udp), "protocol")
	assert.False(t, connects(nps, y, target, 81, tcp), "port")
	assert.False(t, connects(nps, pod{namespace: "b", labels: y.labels}, target, 80, tcp), "a podSelector alone is this namespace")
	assert.False(t, connects(nps, strayPod, target, 80, tcp), "labels")
	assert.True(t, connects(nps, target, y, 80, tcp), "y is selected by no policy")
	np.Spec.Ingress[0].From = nil
	assert.True(t, connects(nps, pod{namespace: "b"}, target, 80, tcp), "no peers: from everywhere")
	np.Spec.Ingress = nil
	assert.False(t, connects(nps, y, target, 80, tcp), "selected, no rule: closed")
}

// Why the policies select peers with matchExpressions: the base's labels
// transformer (includeSelectors) adds the agent's labels to every
// matchLabels of a NetworkPolicy, peers included. The same StoreAPI rule
// written with matchLabels renders into a rule that admits agents, not
// Thanos Query.
func TestNetworkPolicyPeersSurviveLabelsTransformer(t *testing.T) {
	fsys := filesys.MakeFsInMemory()
	require.NoError(t, filepath.WalkDir("base", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return fsys.WriteFile("/"+p, raw)
	}))
	raw, err := fsys.ReadFile("/base/networkpolicy.yaml")
	require.NoError(t, err)
	const expr = `            matchExpressions:
              - {key: app.kubernetes.io/name, operator: In, values: [thanos-query]}
              - {key: app.kubernetes.io/component, operator: In, values: [query]}
`
	const lbls = `            matchLabels: {app.kubernetes.io/name: thanos-query, app.kubernetes.io/component: query}
`
	require.Contains(t, string(raw), expr)
	require.NoError(t, fsys.WriteFile("/base/networkpolicy.yaml", []byte(strings.Replace(string(raw), expr, lbls, 1))))
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, "/base")
	require.NoError(t, err)
	out, err := m.AsYaml()
	require.NoError(t, err)
	b, err := decodeBundle(out)
	require.NoError(t, err)
	assert.False(t, admits(b.NetworkPolicies, agentPod(b), networkingv1.PolicyTypeIngress, queryPod(t), 10901, corev1.ProtocolTCP),
		"with matchLabels the transformer rewrites the peer to the agent's labels")
}
