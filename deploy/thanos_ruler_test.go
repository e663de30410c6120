package deploy

import (
	"bytes"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/weftobs/weft/internal/gobuild"
	"github.com/weftobs/weft/rules"
)

const (
	rulerComponent = "components/thanos-ruler"
	// rulerAgentOverride is the agents' extra configuration file the
	// component adds to weft-config and to the agent's --config list.
	rulerAgentOverride = "cluster-rules-ruler.yaml"
)

// rulerExample is the production overlay with the thanos-query and
// thanos-ruler components (examples/thanos-ruler, one of the overlays).
func rulerExample(testing.TB) string { return "examples/thanos-ruler" }

// containerPorts maps a container's port names to numbers.
func containerPorts(c corev1.Container) map[string]int32 {
	ports := map[string]int32{}
	for _, cp := range c.Ports {
		ports[cp.Name] = cp.ContainerPort
	}
	return ports
}

// addrPort is the port of a --*-address=host:port value (-1: none).
func addrPort(a string) int32 {
	_, port, found := strings.Cut(a, ":")
	var n int32
	if _, err := fmt.Sscan(port, &n); !found || err != nil {
		return -1
	}
	return n
}

// rulerViolations returns everything wrong with the rendered Thanos Ruler
// of b: it queries the rendered Thanos Query's HTTP port, sends to the
// agents' Alertmanager, loads the generated rule ConfigMap, writes only to
// an emptyDir, is hardened like Thanos Query, Thanos Query asks it, the
// policies let the traffic through, and the agents hand cluster rules to it.
func rulerViolations(b *bundle, wantTag string) []string {
	var v []string
	bad := func(format string, a ...any) { v = append(v, fmt.Sprintf(format, a...)) }
	depl := func(name string) *appsv1.Deployment {
		i := slices.IndexFunc(b.Deployments, func(d *appsv1.Deployment) bool { return d.Name == name })
		if i < 0 {
			return nil
		}
		return b.Deployments[i]
	}
	svc := func(name, ns string) *corev1.Service {
		i := slices.IndexFunc(b.Services, func(s *corev1.Service) bool { return s.Name == name && s.Namespace == ns })
		if i < 0 {
			return nil
		}
		return b.Services[i]
	}
	d, qd := depl("thanos-ruler"), depl("thanos-query")
	if d == nil || qd == nil {
		return []string{"Deployments thanos-ruler and thanos-query expected"}
	}
	p := d.Spec.Template.Spec
	if len(p.Containers) != 1 || len(p.InitContainers) != 0 {
		return []string{"thanos-ruler: one container expected"}
	}
	c := p.Containers[0]
	cn := "Deployment thanos-ruler container " + c.Name
	ports := containerPorts(c)

	v = append(v, imageViolations(cn, c.Image)...)
	if registryHost(c.Image) {
		bad("%s: image %q names a registry host", cn, c.Image)
	}
	if ref, _, _ := strings.Cut(c.Image, "@"); ref != "thanosio/thanos:"+wantTag {
		bad("%s: image %q, want thanosio/thanos:%s (the Makefile's THANOS_VERSION)", cn, c.Image, wantTag)
	}
	if len(c.Args) == 0 || c.Args[0] != "rule" || len(c.Command) != 0 {
		bad("%s: args must start with the rule command (and the image's entrypoint run)", cn)
		return v
	}
	flags, notFlags := queryFlags(c.Args[1:])
	for _, a := range notFlags {
		bad("%s: argument %q is not a --flag", cn, a)
	}
	one := func(name string) (string, bool) {
		vs := flags[name]
		if len(vs) != 1 {
			bad("%s: --%s given %d times, want once", cn, name, len(vs))
			return "", false
		}
		return vs[0], true
	}

	// --query: Thanos Query's HTTP port, by SRV name or URL.
	qc := qd.Spec.Template.Spec.Containers[0]
	qFlags, _ := queryFlags(qc.Args[1:])
	qHTTP := int32(-1)
	if a := qFlags["http-address"]; len(a) == 1 {
		qHTTP = addrPort(a[0])
	}
	if q, ok := one("query"); ok {
		var svcName, ns, portName string
		var portNum int32 = -1
		if m := srvName.FindStringSubmatch(q); m != nil {
			portName, svcName, ns = m[1], m[2], m[3]
		} else if u, err := url.Parse(q); err == nil && u.Scheme == "http" {
			parts := strings.Split(u.Hostname(), ".")
			if len(parts) >= 2 {
				svcName, ns = parts[0], parts[1]
			}
			fmt.Sscan(u.Port(), &portNum) //nolint:errcheck // -1 stays on error
		} else {
			bad("%s: --query=%s is neither dnssrv+_<port>._tcp.<service>.<namespace>.svc nor an http URL", cn, q)
		}
		switch s := svc(svcName, ns); {
		case svcName == "":
		case s == nil:
			bad("%s: --query names Service %s in namespace %s, which is not rendered", cn, svcName, ns)
		default:
			for k, val := range s.Spec.Selector {
				if qd.Spec.Template.Labels[k] != val {
					bad("%s: Service %s does not select Thanos Query (%s=%s)", cn, svcName, k, val)
				}
			}
			j := slices.IndexFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool {
				return portName != "" && sp.Name == portName || portName == "" && sp.Port == portNum
			})
			if j < 0 || portNumber(s.Spec.Ports[j].TargetPort, containerPorts(qc)) != qHTTP {
				bad("%s: --query=%s does not reach Thanos Query's HTTP port %d", cn, q, qHTTP)
			}
		}
	}

	// --alertmanagers.url: the agents' WEFT_ALERTMANAGER_URL, read from the
	// ConfigMap the DaemonSet reads it from.
	var amURL string
	if a, ok := one("alertmanagers.url"); ok {
		if a != "$(WEFT_ALERTMANAGER_URL)" {
			bad("%s: --alertmanagers.url=%s, want $(WEFT_ALERTMANAGER_URL) (the agents' value)", cn, a)
		}
		i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "WEFT_ALERTMANAGER_URL" })
		switch {
		case i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.ConfigMapKeyRef == nil:
			bad("%s: WEFT_ALERTMANAGER_URL is not taken from a ConfigMap", cn)
		default:
			ref := c.Env[i].ValueFrom.ConfigMapKeyRef
			agentReads := slices.ContainsFunc(b.DaemonSets[0].Spec.Template.Spec.Containers[0].EnvFrom, func(e corev1.EnvFromSource) bool {
				return e.ConfigMapRef != nil && e.ConfigMapRef.Name == ref.Name
			})
			if !agentReads {
				bad("%s: WEFT_ALERTMANAGER_URL from ConfigMap %s, which the agents do not read", cn, ref.Name)
			}
			for _, cm := range b.ConfigMaps {
				if cm.Name == ref.Name {
					amURL = cm.Data[ref.Key]
				}
			}
			if u, err := url.Parse(amURL); err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Port() == "" {
				bad("%s: WEFT_ALERTMANAGER_URL %q is not an http(s) URL with a port", cn, amURL)
			}
		}
	}

	// --rule-file: the generated ConfigMap, mounted read-only.
	mountOf := func(path string) (corev1.VolumeMount, *corev1.Volume) {
		for _, m := range c.VolumeMounts {
			if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
				for i := range p.Volumes {
					if p.Volumes[i].Name == m.Name {
						return m, &p.Volumes[i]
					}
				}
			}
		}
		return corev1.VolumeMount{}, nil
	}
	if rf, ok := one("rule-file"); ok {
		m, vol := mountOf(rf)
		switch {
		case vol == nil || vol.ConfigMap == nil || !strings.HasPrefix(vol.ConfigMap.Name, "thanos-ruler-rules"):
			bad("%s: --rule-file=%s is not on the ConfigMap thanos-ruler-rules", cn, rf)
		case !m.ReadOnly:
			bad("%s: the rule ConfigMap is mounted writable", cn)
		default:
			var data map[string]string
			for _, cm := range b.ConfigMaps {
				if cm.Name == vol.ConfigMap.Name {
					data = cm.Data
				}
			}
			matched := 0
			for key := range data {
				if ok, _ := filepath.Match(rf, filepath.Join(m.MountPath, key)); ok {
					matched++
				}
			}
			if matched != 1 {
				bad("%s: --rule-file=%s matches %d files of ConfigMap %s, want the cluster rule file", cn, rf, matched, vol.ConfigMap.Name)
			}
		}
	}
	if dd, ok := one("data-dir"); ok {
		if _, vol := mountOf(dd + "/x"); vol == nil || vol.EmptyDir == nil {
			bad("%s: --data-dir=%s is not on an emptyDir (the root filesystem is read-only)", cn, dd)
		}
	}
	if ei, ok := one("eval-interval"); ok {
		if dur, err := model.ParseDuration(ei); err != nil || dur <= 0 {
			bad("%s: --eval-interval=%s is not a positive duration", cn, ei)
		}
	}
	if lbls := flags["label"]; len(lbls) == 0 {
		bad("%s: no --label: the ruler's alerts and recordings need an external label of their own", cn)
	} else {
		for _, l := range lbls {
			if name, _, _ := strings.Cut(l, "="); name == "node" {
				bad("%s: --label=%s: node is the agents' external label", cn, l)
			}
		}
	}
	for _, name := range []string{"objstore.config", "objstore.config-file", "remote-write.config", "remote-write.config-file"} {
		if _, ok := flags[name]; ok {
			bad("%s: --%s: nothing is uploaded or written elsewhere", cn, name)
		}
	}

	// Ports, probes, Service: HTTP and gRPC as they listen.
	httpPort, grpcPort := int32(-1), int32(-1)
	if a, ok := one("http-address"); ok {
		httpPort = addrPort(a)
	}
	if a, ok := one("grpc-address"); ok {
		grpcPort = addrPort(a)
	}
	if ports["http"] != httpPort || ports["grpc"] != grpcPort {
		bad("%s: container ports http %d, grpc %d are not the --http-address/--grpc-address ports %d, %d", cn, ports["http"], ports["grpc"], httpPort, grpcPort)
	}
	for _, pr := range []struct {
		what, path string
		probe      *corev1.Probe
	}{{"livenessProbe", "/-/healthy", c.LivenessProbe}, {"readinessProbe", "/-/ready", c.ReadinessProbe}} {
		switch {
		case pr.probe == nil || pr.probe.HTTPGet == nil:
			bad("%s: no %s (HTTP GET %s)", cn, pr.what, pr.path)
		case pr.probe.HTTPGet.Path != pr.path:
			bad("%s: %s path %q, want %s", cn, pr.what, pr.probe.HTTPGet.Path, pr.path)
		case portNumber(pr.probe.HTTPGet.Port, ports) != httpPort:
			bad("%s: %s port %s is not the HTTP port %d", cn, pr.what, pr.probe.HTTPGet.Port.String(), httpPort)
		}
	}

	// Thanos Query asks the ruler: an --endpoint SRV name of the ruler's
	// Service port that targets its gRPC port.
	found := false
	for _, e := range qFlags["endpoint"] {
		m := srvName.FindStringSubmatch(e)
		if m == nil || m[2] != "thanos-ruler" {
			continue
		}
		found = true
		s := svc(m[2], m[3])
		if s == nil {
			bad("Deployment thanos-query: --endpoint=%s names no rendered Service", e)
			continue
		}
		for k, val := range s.Spec.Selector {
			if d.Spec.Template.Labels[k] != val {
				bad("Service thanos-ruler: selector %s=%s does not match the ruler pods", k, val)
			}
		}
		j := slices.IndexFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == m[1] })
		if j < 0 || portNumber(s.Spec.Ports[j].TargetPort, ports) != grpcPort {
			bad("Deployment thanos-query: --endpoint=%s does not reach the ruler's gRPC port %d", e, grpcPort)
		}
	}
	if !found {
		bad("Deployment thanos-query: no --endpoint for the ruler (its recordings and rules)")
	}

	// Pod and container: as hardened as Thanos Query.
	sa := slices.IndexFunc(b.ServiceAccounts, func(s *corev1.ServiceAccount) bool { return s.Name == p.ServiceAccountName })
	if p.ServiceAccountName == "" || p.ServiceAccountName == "default" || p.ServiceAccountName == qd.Spec.Template.Spec.ServiceAccountName || sa < 0 {
		bad("%s: serviceAccountName %q is not its own", cn, p.ServiceAccountName)
	}
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		bad("%s: a service account token is mounted (the ruler never calls the Kubernetes API)", cn)
	}
	if p.HostNetwork || p.HostPID || p.HostIPC {
		bad("%s: host namespaces", cn)
	}
	psc := p.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		bad("%s: the pod must run as a non-root uid (runAsNonRoot, runAsUser)", cn)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		bad("%s: seccomp profile must be RuntimeDefault", cn)
	}
	if sc := c.SecurityContext; sc == nil {
		bad("%s: no securityContext", cn)
	} else {
		if sc.Privileged != nil && *sc.Privileged {
			bad("%s: privileged", cn)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			bad("%s: allowPrivilegeEscalation must be false", cn)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			bad("%s: readOnlyRootFilesystem must be true", cn)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			bad("%s: capabilities must drop ALL and add none", cn)
		}
	}
	v = append(v, resourceViolations(cn, c.Resources)...)

	// Network: the ruler reaches Query's HTTP, the Alertmanager and DNS;
	// Query reaches the ruler's gRPC; nothing else reaches the ruler.
	nps := b.NetworkPolicies
	ruler := pod{namespace: d.Namespace, labels: d.Spec.Template.Labels}
	query := pod{namespace: qd.Namespace, labels: qd.Spec.Template.Labels}
	agent := agentPod(b)
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	must := func(ok bool, what string) {
		if !ok {
			bad("NetworkPolicy: %s", what)
		}
	}
	must(connects(nps, ruler, query, qHTTP, tcp), "thanos-ruler → thanos-query HTTP is not admitted")
	must(connects(nps, query, ruler, grpcPort, tcp), "thanos-query → thanos-ruler gRPC is not admitted")
	must(connects(nps, ruler, kubeDNSPod, 53, udp), "thanos-ruler → DNS is not admitted")
	if u, err := url.Parse(amURL); err == nil && amURL != "" {
		host := strings.Split(u.Hostname(), ".")
		var port int32
		fmt.Sscan(u.Port(), &port) //nolint:errcheck // 0 on error
		if len(host) >= 2 {
			am := pod{namespace: host[1], labels: map[string]string{"app.kubernetes.io/name": host[0]}}
			must(connects(nps, ruler, am, port, tcp), fmt.Sprintf("thanos-ruler → Alertmanager %s is not admitted", amURL))
		}
	}
	must(connects(nps, query, agent, 10901, tcp), "thanos-query → agents' StoreAPI is no longer admitted")
	must(connects(nps, grafanaPod, query, qHTTP, tcp), "Grafana → thanos-query is no longer admitted")
	must(!connects(nps, appPod, ruler, grpcPort, tcp), "an application reaches the ruler's gRPC")
	must(!connects(nps, appPod, ruler, httpPort, tcp), "an application reaches the ruler's HTTP")
	must(!connects(nps, ruler, agent, 10901, tcp), "the ruler reaches the agents' StoreAPI (it reads through Query)")
	must(!connects(nps, ruler, appPod, 80, tcp), "the ruler reaches an application")

	// The agents: cluster rules go to the ruler.
	ac := b.DaemonSets[0].Spec.Template.Spec.Containers[0]
	overridePath := ""
	for i, a := range ac.Args {
		if a == "--config" && i+1 < len(ac.Args) && strings.HasSuffix(ac.Args[i+1], "/"+rulerAgentOverride) {
			overridePath = ac.Args[i+1]
			if i+2 != len(ac.Args) {
				bad("DaemonSet weft: %s is not the last --config (a later file could set cluster_rules back)", overridePath)
			}
		}
	}
	if overridePath == "" {
		bad("DaemonSet weft: no --config .../%s: the agents would fire cluster rules themselves and record no partials", rulerAgentOverride)
		return v
	}
	var cfgMap string
	for _, m := range ac.VolumeMounts {
		if filepath.Dir(overridePath) == strings.TrimSuffix(m.MountPath, "/") {
			for _, vol := range b.DaemonSets[0].Spec.Template.Spec.Volumes {
				if vol.Name == m.Name && vol.ConfigMap != nil {
					cfgMap = vol.ConfigMap.Name
				}
			}
		}
	}
	var override struct {
		Extensions struct {
			WeftRules struct {
				Scope struct {
					ClusterRules string `json:"cluster_rules"`
				} `json:"scope"`
			} `json:"weft_rules"`
		} `json:"extensions"`
	}
	ci := slices.IndexFunc(b.ConfigMaps, func(cm *corev1.ConfigMap) bool { return cm.Name == cfgMap })
	switch {
	case ci < 0:
		bad("DaemonSet weft: %s is on no ConfigMap volume", overridePath)
	case yaml.Unmarshal([]byte(b.ConfigMaps[ci].Data[filepath.Base(overridePath)]), &override) != nil:
		bad("ConfigMap %s: %s does not parse", cfgMap, rulerAgentOverride)
	case override.Extensions.WeftRules.Scope.ClusterRules != "ruler":
		bad("ConfigMap %s: %s sets weft_rules scope.cluster_rules %q, want ruler", cfgMap, rulerAgentOverride, override.Extensions.WeftRules.Scope.ClusterRules)
	}
	return v
}

// rulerImageRef finds image references in the component's files.
var rulerImageRef = regexp.MustCompile(`(?m)^[\s-]*(?:image|newName):\s*(\S+)`)

func TestThanosRulerComponent(t *testing.T) {
	b := mustBundle(t, rulerExample(t))
	assert.Empty(t, rulerViolations(b, makefileThanosVersion(t)))
	assert.Empty(t, policy(b), "the repository's policy holds with the component")

	// It adds the ruler's objects and changes of the rest only: the agents'
	// --config list and weft-config (one key more), Thanos Query's
	// endpoints.
	base := mustBundle(t, thanosExample)
	assert.Len(t, b.Deployments, 2)
	assert.Equal(t, base.Services, slices.DeleteFunc(slices.Clone(b.Services), func(s *corev1.Service) bool { return s.Name == "thanos-ruler" }))
	wantArgs := append(slices.Clone(base.DaemonSets[0].Spec.Template.Spec.Containers[0].Args), "--config", "/etc/weft/config/"+rulerAgentOverride)
	assert.Equal(t, wantArgs, b.DaemonSets[0].Spec.Template.Spec.Containers[0].Args)
	baseCfg, cfg := configMapPrefixed(t, base, "weft-config-"), configMapPrefixed(t, b, "weft-config-")
	assert.Equal(t, baseCfg.Data["agent.yaml"], cfg.Data["agent.yaml"])
	assert.Len(t, cfg.Data, len(baseCfg.Data)+1)
	assert.Equal(t, named(t, base.NetworkPolicies, "weft"), named(t, b.NetworkPolicies, "weft"), "the agents' policy")
	assert.Equal(t, named(t, base.NetworkPolicies, "thanos-query"), named(t, b.NetworkPolicies, "thanos-query"), "Query's own policy (the component adds one beside it)")
	qArgs := named(t, base.Deployments, "thanos-query").Spec.Template.Spec.Containers[0].Args
	assert.Equal(t, append(slices.Clone(qArgs), "--endpoint=dnssrv+_grpc._tcp.thanos-ruler.weft-system.svc"),
		named(t, b.Deployments, "thanos-query").Spec.Template.Spec.Containers[0].Args)

	// No registry host anywhere in the component's files.
	entries, err := os.ReadDir(rulerComponent)
	require.NoError(t, err)
	refs := 0
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(rulerComponent, e.Name()))
		require.NoError(t, err)
		for _, m := range rulerImageRef.FindAllStringSubmatch(string(raw), -1) {
			assert.False(t, registryHost(m[1]), "%s: %s", e.Name(), m[0])
			refs++
		}
	}
	assert.Equal(t, 2, refs, "the Deployment's image and the kustomization's newName")
}

// configMapPrefixed returns the one ConfigMap of b whose (hashed) name
// starts with prefix.
func configMapPrefixed(t *testing.T, b *bundle, prefix string) *corev1.ConfigMap {
	t.Helper()
	var found []*corev1.ConfigMap
	for _, cm := range b.ConfigMaps {
		if strings.HasPrefix(cm.Name, prefix) {
			found = append(found, cm)
		}
	}
	require.Len(t, found, 1, prefix)
	return found[0]
}

// The shipped cluster rule file is `weft rules split` of the shipped rules
// (deploy/base/rules, the agents' weft-rules ConfigMap) with the default
// scope options the shipped profile uses: its rules are the plan's cluster
// file, its header names the same partition labels and object metrics.
func TestThanosRulerShippedRulesAreSplitOutput(t *testing.T) {
	files, err := filepath.Glob("base/rules/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	// The files are those of the agents' rule ConfigMap.
	rulesCM := configMapPrefixed(t, mustBundle(t, "overlays/prod"), "weft-rules-")
	var keys []string
	for _, f := range files {
		keys = append(keys, filepath.Base(f))
	}
	assert.ElementsMatch(t, keys, slices.Collect(maps.Keys(rulesCM.Data)), "base/rules/*.yaml is the agents' weft-rules ConfigMap")

	plan, err := rules.SplitFiles(files, rules.ScopeOptions{})
	require.NoError(t, err)
	body, err := plan.ClusterFile()
	require.NoError(t, err)
	shipped, err := os.ReadFile(filepath.Join(rulerComponent, "cluster-rules.yaml"))
	require.NoError(t, err)
	var head, rest []string
	for l := range strings.Lines(string(shipped)) {
		if len(rest) == 0 && strings.HasPrefix(l, "#") {
			head = append(head, l)
			continue
		}
		rest = append(rest, l)
	}
	assert.Equal(t, string(body), strings.Join(rest, ""), "regenerate: weft rules split -o %s/cluster-rules.yaml base/rules/*.yaml", rulerComponent)
	assert.Contains(t, head, "# Partition labels: "+strings.Join(plan.PartitionLabels, ", ")+".\n")
	assert.Contains(t, head, "# Object metrics: "+strings.Join(plan.ObjectMetrics, ", ")+".\n")
}

// The same through the subcommand an operator runs: the built binary's
// output is the shipped file byte for byte. It builds weft (seconds to
// minutes with a cold cache), so it runs with the tests of real programs:
// where WEFT_THANOS is set (`make test`), skipped by plain `go test`.
func TestThanosRulerShippedRulesEqualSubcommand(t *testing.T) {
	thanosBinary(t)
	bin := filepath.Join(t.TempDir(), "weft")
	require.NoError(t, gobuild.Build(t.Context(), "..", bin, "./cmd/weft", ""))
	files, err := filepath.Glob("base/rules/*.yaml")
	require.NoError(t, err)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, append([]string{"rules", "split"}, files...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	shipped, err := os.ReadFile(filepath.Join(rulerComponent, "cluster-rules.yaml"))
	require.NoError(t, err)
	assert.Equal(t, stdout.String(), string(shipped))
	t.Logf("weft rules split:\n%s", stderr.String())
}

// Every flag the component passes exists in the Thanos binary of the
// Makefile's version and is not hidden there.
func TestThanosRulerFlagsExist(t *testing.T) {
	bin := thanosBinary(t)
	out, err := exec.Command(bin, "rule", "--help").CombinedOutput()
	require.NoError(t, err, "%s rule --help:\n%s", bin, out)
	known := map[string]bool{}
	for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
		known[m[2]] = true
		if m[1] != "" {
			known["no-"+m[2]] = true
		}
	}
	require.True(t, known["alertmanagers.url"], "rule --help lists rule's flags:\n%s", out)
	require.False(t, known["query.replica-label"], "a flag of query, not of rule")

	b := mustBundle(t, rulerExample(t))
	c := named(t, b.Deployments, "thanos-ruler").Spec.Template.Spec.Containers[0]
	flags, notFlags := queryFlags(c.Args[1:])
	require.Empty(t, notFlags)
	require.NotEmpty(t, flags)
	for name := range flags {
		assert.True(t, known[name], "--%s is not a flag of %s rule", name, bin)
	}
}

// Each mutation breaks one rule rulerViolations checks.
func TestThanosRulerRejects(t *testing.T) {
	dir := rulerExample(t)
	ruler := func(b *bundle) *corev1.Container {
		return &named(t, b.Deployments, "thanos-ruler").Spec.Template.Spec.Containers[0]
	}
	setArg := func(c *corev1.Container, prefix, to string) {
		i := slices.IndexFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, prefix) })
		require.GreaterOrEqual(t, i, 0, prefix)
		if to == "" {
			c.Args = slices.Delete(c.Args, i, i+1)
			return
		}
		c.Args[i] = to
	}
	yes, root := true, int64(0)
	for _, c := range []struct {
		name   string
		mutate func(*bundle)
		want   string
	}{
		{"query on the gRPC port", func(b *bundle) {
			setArg(ruler(b), "--query=", "--query=dnssrv+_grpc._tcp.thanos-ruler.weft-system.svc")
		}, "does not reach Thanos Query's HTTP port"},
		{"query URL of another Service", func(b *bundle) {
			setArg(ruler(b), "--query=", "--query=http://weft-query.weft-system.svc:10902")
		}, "does not select Thanos Query"},
		{"query in another namespace", func(b *bundle) {
			setArg(ruler(b), "--query=", "--query=dnssrv+_http._tcp.thanos-query.monitoring.svc")
		}, "which is not rendered"},
		{"Alertmanager hard-coded", func(b *bundle) {
			setArg(ruler(b), "--alertmanagers.url=", "--alertmanagers.url=http://alertmanager.monitoring:9093")
		}, "want $(WEFT_ALERTMANAGER_URL)"},
		{"no Alertmanager", func(b *bundle) { setArg(ruler(b), "--alertmanagers.url=", "") }, "--alertmanagers.url given 0 times"},
		{"rule file elsewhere", func(b *bundle) {
			setArg(ruler(b), "--rule-file=", "--rule-file=/etc/rules/*.yaml")
		}, "is not on the ConfigMap thanos-ruler-rules"},
		{"rule file glob matches nothing", func(b *bundle) {
			setArg(ruler(b), "--rule-file=", "--rule-file=/etc/thanos/rules/*.yml")
		}, "matches 0 files"},
		{"data on the root filesystem", func(b *bundle) {
			setArg(ruler(b), "--data-dir=", "--data-dir=/data")
		}, "is not on an emptyDir"},
		{"node label", func(b *bundle) { setArg(ruler(b), "--label=", `--label=node="central"`) }, "node is the agents' external label"},
		{"no label", func(b *bundle) { setArg(ruler(b), "--label=", "") }, "no --label"},
		{"object storage", func(b *bundle) {
			ruler(b).Args = append(ruler(b).Args, "--objstore.config-file=/etc/objstore.yaml")
		}, "--objstore.config-file"},
		{"Query does not ask the ruler", func(b *bundle) {
			setArg(&named(t, b.Deployments, "thanos-query").Spec.Template.Spec.Containers[0], "--endpoint=dnssrv+_grpc._tcp.thanos-ruler", "")
		}, "no --endpoint for the ruler"},
		{"agents keep evaluating cluster rules", func(b *bundle) {
			ac := &b.DaemonSets[0].Spec.Template.Spec.Containers[0]
			ac.Args = ac.Args[:len(ac.Args)-2]
		}, "the agents would fire cluster rules themselves"},
		{"override not last", func(b *bundle) {
			ac := &b.DaemonSets[0].Spec.Template.Spec.Containers[0]
			ac.Args = append(ac.Args, "--config", "/etc/weft/config/agent.yaml")
		}, "is not the last --config"},
		{"override sets node", func(b *bundle) {
			cm := configMapPrefixed(t, b, "weft-config-")
			cm.Data[rulerAgentOverride] = "extensions:\n  weft_rules:\n    scope:\n      cluster_rules: node\n"
		}, `scope.cluster_rules "node"`},
		{"no egress to Alertmanager", func(b *bundle) {
			np := named(t, b.NetworkPolicies, "thanos-ruler")
			np.Spec.Egress = slices.DeleteFunc(np.Spec.Egress, func(r networkingv1.NetworkPolicyEgressRule) bool {
				return slices.ContainsFunc(r.Ports, func(p networkingv1.NetworkPolicyPort) bool { return p.Port != nil && p.Port.IntValue() == 9093 })
			})
		}, "thanos-ruler → Alertmanager"},
		{"Query's side of the policy missing", func(b *bundle) {
			b.NetworkPolicies = slices.DeleteFunc(b.NetworkPolicies, func(np *networkingv1.NetworkPolicy) bool { return np.Name == "thanos-query-ruler" })
		}, "thanos-ruler → thanos-query HTTP"},
		{"registry host", func(b *bundle) { ruler(b).Image = "registry.example:5000/thanosio/thanos:v0.42.4" }, "names a registry host"},
		{"other version", func(b *bundle) { ruler(b).Image = "thanosio/thanos:v0.39.0" }, "the Makefile's THANOS_VERSION"},
		{"readiness on /ready", func(b *bundle) { ruler(b).ReadinessProbe.HTTPGet.Path = "/ready" }, `readinessProbe path "/ready"`},
		{"root", func(b *bundle) {
			named(t, b.Deployments, "thanos-ruler").Spec.Template.Spec.SecurityContext.RunAsUser = &root
		}, "non-root uid"},
		{"escalation", func(b *bundle) { ruler(b).SecurityContext.AllowPrivilegeEscalation = &yes }, "allowPrivilegeEscalation"},
		{"token mounted", func(b *bundle) {
			named(t, b.Deployments, "thanos-ruler").Spec.Template.Spec.AutomountServiceAccountToken = nil
		}, "token is mounted"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := decodeBundle(render(t, dir))
			require.NoError(t, err)
			require.Empty(t, rulerViolations(b, makefileThanosVersion(t)), "the unmodified component passes")
			c.mutate(b)
			v := rulerViolations(b, makefileThanosVersion(t))
			require.NotEmpty(t, v)
			assert.Contains(t, strings.Join(v, "\n"), c.want)
		})
	}
}
