package deploy

import (
	"fmt"
	"net"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/weftobs/weft/extensions/weftpinsextension"
)

// testPodIP stands in for the downward API's status.podIP.
const testPodIP = "10.244.1.17"

// pinsConfig is the merged weft_pins section the agent of ac runs with,
// unmarshalled over the extension's defaults and validated.
func pinsConfig(t testing.TB, ac agentConfig) *weftpinsextension.Config {
	t.Helper()
	section, err := mergedConfig(t, ac, map[string]string{"POD_IP": testPodIP, "NODE_NAME": "node-a"}).Sub("extensions::weft_pins")
	require.NoError(t, err)
	cfg := weftpinsextension.NewFactory().CreateDefaultConfig().(*weftpinsextension.Config)
	require.NoError(t, section.Unmarshal(cfg))
	require.NoError(t, cfg.Validate())
	return cfg
}

// portName is a Kubernetes port name (IANA_SVC_NAME): at most 15
// characters, lower-case letters, digits and single inner hyphens, at
// least one letter.
var portName = regexp.MustCompile(`^[a-z0-9]([a-z0-9]|-[a-z0-9])*$`)

// Gossip is on in every overlay: bound on the pod IP, encrypted with a key
// file, and the agent declares the port for both protocols memberlist
// uses, under valid, unique names.
func TestGossipPortsDeclared(t *testing.T) {
	for _, dir := range append([]string{"base"}, overlays...) {
		t.Run(dir, func(t *testing.T) {
			b := mustBundle(t, dir)
			cfg := pinsConfig(t, configOf(t, b))
			require.True(t, cfg.Gossip.Enabled, "gossip::enabled")
			assert.False(t, cfg.Gossip.Insecure, "gossip::insecure")
			assert.NotEmpty(t, cfg.Gossip.SecretKeyFile, "gossip::secret_key_file")
			host, port, err := net.SplitHostPort(cfg.Gossip.Bind)
			require.NoError(t, err)
			assert.Equal(t, testPodIP, host, "gossip::bind listens on the pod IP")
			want, err := strconv.Atoi(port)
			require.NoError(t, err)
			assert.Empty(t, cfg.Gossip.Advertise, "peers reach the bind address itself")

			c := b.DaemonSets[0].Spec.Template.Spec.Containers[0]
			names := map[string]bool{}
			protos := map[corev1.Protocol]bool{}
			for _, p := range c.Ports {
				assert.LessOrEqual(t, len(p.Name), 15, "port name %q", p.Name)
				assert.Regexp(t, portName, p.Name)
				assert.Regexp(t, `[a-z]`, p.Name, "port name %q has a letter", p.Name)
				assert.False(t, names[p.Name], "port name %q twice", p.Name)
				names[p.Name] = true
				if int(p.ContainerPort) == want {
					protos[p.Protocol] = true
					assert.Zero(t, p.HostPort, "gossip stays on the pod IP")
				}
			}
			assert.Equal(t, map[corev1.Protocol]bool{corev1.ProtocolTCP: true, corev1.ProtocolUDP: true}, protos,
				"the agent declares gossip port %d for TCP and UDP", want)
		})
	}
}

// The join address is the SRV name of the agents' headless Service's
// port that targets the gossip port: the same service, namespace and port
// name as rendered, so the agents find each other.
func TestGossipJoinFindsAgents(t *testing.T) {
	for _, dir := range append([]string{"base"}, overlays...) {
		t.Run(dir, func(t *testing.T) {
			b := mustBundle(t, dir)
			cfg := pinsConfig(t, configOf(t, b))
			require.Len(t, cfg.Gossip.Join, 1)
			_, bindPort, err := net.SplitHostPort(cfg.Gossip.Bind)
			require.NoError(t, err)
			assert.Empty(t, joinViolations(b, cfg.Gossip.Join[0], bindPort))
		})
	}
	// The check fails on a join that misses the rendered Service.
	b := mustBundle(t, "overlays/prod")
	for _, bad := range []string{
		"dnssrv+_grpc._tcp.weft-query.weft-system.svc",    // the StoreAPI's port
		"dnssrv+_gossip._tcp.weft-query.monitoring.svc",   // another namespace
		"dnssrv+_gossip._tcp.weft.weft-system.svc",        // another service
		"dnssrv+_gossip._udp.weft-query.weft-system.svc",  // not a _tcp record
		"weft-query.weft-system.svc:7946",                 // A records and a fixed port, not the Service's port
		"dnssrv+_gossip._tcp.weft-query.weft-system.svc.", // rooted: not the form the agents use
	} {
		assert.NotEmpty(t, joinViolations(b, bad, "7946"), bad)
	}
}

// joinViolations says what is wrong with join as the way an agent of b
// finds the others, whose gossip listens on bindPort.
func joinViolations(b *bundle, join, bindPort string) []string {
	m := srvName.FindStringSubmatch(join)
	if m == nil {
		return []string{fmt.Sprintf("gossip::join %q is not dnssrv+_<port>._tcp.<service>.<namespace>.svc", join)}
	}
	portName, svcName, ns := m[1], m[2], m[3]
	i := slices.IndexFunc(b.Services, func(s *corev1.Service) bool { return s.Name == svcName && s.Namespace == ns })
	if i < 0 {
		return []string{fmt.Sprintf("gossip::join names Service %s in namespace %s, which is not rendered", svcName, ns)}
	}
	s := b.Services[i]
	var v []string
	if s.Spec.ClusterIP != corev1.ClusterIPNone {
		v = append(v, fmt.Sprintf("Service %s is not headless: its SRV records would name a virtual IP, not the agents", svcName))
	}
	agent := b.DaemonSets[0].Spec.Template
	for k, val := range s.Spec.Selector {
		if agent.Labels[k] != val {
			v = append(v, fmt.Sprintf("Service %s does not select the agents (%s=%s)", svcName, k, val))
		}
	}
	ports := map[string]int32{}
	for _, cp := range agent.Spec.Containers[0].Ports {
		if cp.Protocol == corev1.ProtocolTCP || cp.Protocol == "" {
			ports[cp.Name] = cp.ContainerPort
		}
	}
	j := slices.IndexFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == portName })
	switch {
	case j < 0:
		v = append(v, fmt.Sprintf("Service %s has no port named %q: _%s._tcp resolves to nothing", svcName, portName, portName))
	case s.Spec.Ports[j].Protocol != "" && s.Spec.Ports[j].Protocol != corev1.ProtocolTCP:
		v = append(v, fmt.Sprintf("Service %s port %s is not TCP", svcName, portName))
	case strconv.Itoa(int(portNumber(s.Spec.Ports[j].TargetPort, ports))) != bindPort:
		v = append(v, fmt.Sprintf("Service %s port %s does not target the agent's TCP gossip port %s", svcName, portName, bindPort))
	}
	return v
}

// The key file is where a read-only volume of the Secret weft-gossip puts
// its key "key", readable by the agent's user; the Secret is not optional
// (no silent start without it), and no Secret ships with the manifests.
func TestGossipKeyFromSecret(t *testing.T) {
	for _, dir := range append([]string{"base"}, overlays...) {
		t.Run(dir, func(t *testing.T) {
			b := mustBundle(t, dir)
			assert.NotRegexp(t, `(?m)^kind: Secret$`, string(render(t, dir)), "a key is never committed")
			keyFile := pinsConfig(t, configOf(t, b)).Gossip.SecretKeyFile
			assert.Empty(t, keyViolations(b, keyFile))
		})
	}
	b := mustBundle(t, "overlays/prod")
	keyFile := pinsConfig(t, configOf(t, b)).Gossip.SecretKeyFile
	mutations := map[string]func(*corev1.Volume, *corev1.VolumeMount){
		"writable mount":  func(_ *corev1.Volume, m *corev1.VolumeMount) { m.ReadOnly = false },
		"optional secret": func(v *corev1.Volume, _ *corev1.VolumeMount) { v.Secret.Optional = new(true) },
		"other secret":    func(v *corev1.Volume, _ *corev1.VolumeMount) { v.Secret.SecretName = "other" },
		"other path":      func(v *corev1.Volume, _ *corev1.VolumeMount) { v.Secret.Items[0].Path = "gossip.key" },
		"owner only":      func(v *corev1.Volume, _ *corev1.VolumeMount) { v.Secret.DefaultMode = new(int32(0o400)) },
		"moved mount":     func(_ *corev1.Volume, m *corev1.VolumeMount) { m.MountPath = "/etc/weft/key" },
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			b := mustBundle(t, "overlays/prod") // decoded afresh: ours to change
			require.Empty(t, keyViolations(b, keyFile))
			p := &b.DaemonSets[0].Spec.Template.Spec
			i := slices.IndexFunc(p.Volumes, func(v corev1.Volume) bool { return v.Secret != nil })
			require.GreaterOrEqual(t, i, 0)
			j := slices.IndexFunc(p.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == p.Volumes[i].Name })
			require.GreaterOrEqual(t, j, 0)
			mutate(&p.Volumes[i], &p.Containers[0].VolumeMounts[j])
			assert.NotEmpty(t, keyViolations(b, keyFile))
		})
	}
}

// keyViolations says what keeps the agent of b from reading its gossip key
// at keyFile from the Secret weft-gossip, key "key".
func keyViolations(b *bundle, keyFile string) []string {
	p := b.DaemonSets[0].Spec.Template.Spec
	c := p.Containers[0]
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if rel, ok := strings.CutPrefix(keyFile, strings.TrimSuffix(m.MountPath, "/")+"/"); ok && rel != "" {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		return []string{fmt.Sprintf("no volume is mounted over secret_key_file %s", keyFile)}
	}
	var v []string
	if !mount.ReadOnly {
		v = append(v, fmt.Sprintf("volume %s is mounted read-write", mount.Name))
	}
	i := slices.IndexFunc(p.Volumes, func(vol corev1.Volume) bool { return vol.Name == mount.Name })
	if i < 0 || p.Volumes[i].Secret == nil {
		return append(v, fmt.Sprintf("volume %s is not a Secret", mount.Name))
	}
	s := p.Volumes[i].Secret
	if s.SecretName != "weft-gossip" {
		v = append(v, fmt.Sprintf("volume %s holds Secret %s, not weft-gossip (deploy/README.md tells users to create weft-gossip)", mount.Name, s.SecretName))
	}
	if s.Optional != nil && *s.Optional {
		v = append(v, fmt.Sprintf("Secret volume %s is optional: without the Secret the agent would start and fail on a missing key file instead of waiting in ContainerCreating", mount.Name))
	}
	rel := strings.TrimPrefix(keyFile, strings.TrimSuffix(mount.MountPath, "/")+"/")
	mode := int32(0o644) // the API server's default
	if s.DefaultMode != nil {
		mode = *s.DefaultMode
	}
	if len(s.Items) > 0 {
		j := slices.IndexFunc(s.Items, func(it corev1.KeyToPath) bool { return it.Path == rel })
		switch {
		case j < 0:
			v = append(v, fmt.Sprintf("Secret volume %s puts no key at %s", mount.Name, rel))
		case s.Items[j].Key != "key":
			v = append(v, fmt.Sprintf("Secret volume %s puts key %q at %s, want \"key\"", mount.Name, s.Items[j].Key, rel))
		case s.Items[j].Mode != nil:
			mode = *s.Items[j].Mode
		}
	} else if rel != "key" {
		v = append(v, fmt.Sprintf("Secret volume %s without items has its key \"key\" at key, not %s", mount.Name, rel))
	}
	// Secret files belong to root:root (no fsGroup); the agent reads them
	// as owner (uid 0), through group 0 (a supplemental group) or as other.
	uid, groups := int64(-1), []int64{}
	if sc := p.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = *sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			groups = append(groups, *sc.RunAsGroup)
		}
		groups = append(groups, sc.SupplementalGroups...)
		if sc.FSGroup != nil {
			groups = append(groups, *sc.FSGroup)
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = *sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			groups = append(groups, *sc.RunAsGroup)
		}
	}
	fsGroup := p.SecurityContext != nil && p.SecurityContext.FSGroup != nil
	readable := mode&0o004 != 0 ||
		(uid == 0 && mode&0o400 != 0) ||
		((slices.Contains(groups, 0) || fsGroup) && mode&0o040 != 0)
	if !readable {
		v = append(v, fmt.Sprintf("the agent (uid %d, groups %v) cannot read %s (mode %#o, root:root)", uid, groups, keyFile, mode))
	}
	return v
}

// The rendered policies, evaluated for gossip: agents reach each other on
// 7946 over TCP and UDP, through both policies and by a rule of their
// own; no other pod reaches an agent there, and the gossip rule opens no
// other port between agents.
func TestNetworkPolicyGossip(t *testing.T) {
	query := queryPod(t)
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	for _, dir := range append([]string{"base"}, overlays...) {
		t.Run(dir, func(t *testing.T) {
			b := mustBundle(t, dir)
			nps, agent := b.NetworkPolicies, agentPod(b)
			_, port, err := net.SplitHostPort(pinsConfig(t, configOf(t, b)).Gossip.Bind)
			require.NoError(t, err)
			p, err := strconv.Atoi(port)
			require.NoError(t, err)
			gossip := int32(p)
			// Another agent, on another node: same labels.
			other := agent
			for _, proto := range []corev1.Protocol{tcp, udp} {
				assert.True(t, connects(nps, other, agent, gossip, proto), "agent → agent gossip/%s", proto)
				for name, from := range map[string]pod{"grafana": grafanaPod, "an application": appPod, "another pod of weft-system": strayPod, "Thanos Query": query} {
					assert.False(t, admits(nps, agent, networkingv1.PolicyTypeIngress, from, gossip, proto), "%s → agent gossip/%s", name, proto)
				}
			}
			for _, port := range []int32{gossip + 1, 8686, 10901} {
				assert.False(t, connects(nps, other, agent, port, tcp), "agent → agent on %d", port)
			}
			// Egress by a rule that names the agents and the gossip port,
			// not only through the rule that opens every pod to scraping.
			np := named(t, nps, "weft")
			for _, proto := range []corev1.Protocol{tcp, udp} {
				assert.True(t, slices.ContainsFunc(np.Spec.Egress, func(r networkingv1.NetworkPolicyEgressRule) bool {
					return len(r.To) > 0 && len(r.Ports) > 0 && ruleAdmits(r.To, r.Ports, np.Namespace, other, gossip, proto) &&
						!ruleAdmits(r.To, r.Ports, np.Namespace, appPod, gossip, proto)
				}), "a rule of its own lets the agent reach the other agents on gossip/%s", proto)
			}
		})
	}
}

// deploy/README.md tells users to create the Secret the DaemonSet mounts,
// with the key name it reads, and names the SRV record the agents join.
func TestGossipDocumented(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	require.NoError(t, err)
	readme := string(raw)
	b := mustBundle(t, "overlays/prod")
	cfg := pinsConfig(t, configOf(t, b))
	i := slices.IndexFunc(b.DaemonSets[0].Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Secret != nil })
	require.GreaterOrEqual(t, i, 0)
	s := b.DaemonSets[0].Spec.Template.Spec.Volumes[i].Secret
	require.Len(t, s.Items, 1)
	for _, want := range []string{
		fmt.Sprintf("kubectl -n %s create secret generic %s --from-literal=%s=", b.DaemonSets[0].Namespace, s.SecretName, s.Items[0].Key),
		strings.TrimPrefix(cfg.Gossip.Join[0], "dnssrv+"),
		"FailedMount", // what a missing Secret looks like
	} {
		assert.True(t, strings.Contains(readme, want), "README.md does not say %q", want)
	}
	assert.Equal(t, s.Items[0].Path, path.Base(cfg.Gossip.SecretKeyFile))
}
