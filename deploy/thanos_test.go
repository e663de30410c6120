package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftobs/weft/internal/backends"
)

// thanosExample renders the production overlay with the thanos-query
// component (deploy/components/thanos-query).
const thanosExample = "examples/thanos-query"

var (
	thanosVersionOnce sync.Once
	thanosVersion     string
)

// makefileThanosVersion is the Thanos version `make tools` builds and
// `make test` passes as WEFT_THANOS (the Makefile's THANOS_VERSION).
func makefileThanosVersion(t testing.TB) string {
	t.Helper()
	thanosVersionOnce.Do(func() {
		raw, err := os.ReadFile("../Makefile")
		if err != nil {
			return
		}
		if m := regexp.MustCompile(`(?m)^THANOS_VERSION\s*:=\s*(\S+)\s*$`).FindSubmatch(raw); m != nil {
			thanosVersion = string(m[1])
		}
	})
	require.NotEmpty(t, thanosVersion, "THANOS_VERSION in ../Makefile")
	return thanosVersion
}

// queryFlags splits Thanos Query's arguments after the "query" command
// into flag names (without "--") and their values, in order; an argument
// that is not a --flag is reported.
func queryFlags(args []string) (flags map[string][]string, bad []string) {
	flags = map[string][]string{}
	for _, a := range args {
		name, ok := strings.CutPrefix(a, "--")
		if !ok || name == "" {
			bad = append(bad, a)
			continue
		}
		name, value, _ := strings.Cut(name, "=")
		flags[name] = append(flags[name], value)
	}
	return flags, bad
}

// srvName is dnssrv+_<port>._tcp.<service>.<namespace>.svc, the form the
// component uses to find the agents.
var srvName = regexp.MustCompile(`^dnssrv\+_([a-z0-9-]+)\._tcp\.([a-z0-9-]+)\.([a-z0-9-]+)\.svc$`)

// registryHost reports whether an image reference starts with a registry
// host name (the first path element has a dot or a port, or is localhost),
// as the container runtime reads it.
func registryHost(image string) bool {
	first, _, found := strings.Cut(image, "/")
	return found && (strings.ContainsAny(first, ".:") || first == "localhost")
}

// queryViolations returns everything wrong with the rendered Thanos Query
// of b: its discovery must name the agents' headless Service, port and
// namespace; the flags this deployment relies on must be set; the pod is
// hardened like the agent's; its Service and probes use its HTTP port.
func queryViolations(b *bundle, wantTag string) []string {
	var v []string
	bad := func(format string, a ...any) { v = append(v, fmt.Sprintf(format, a...)) }
	i := slices.IndexFunc(b.Deployments, func(d *appsv1.Deployment) bool { return d.Name == "thanos-query" })
	if i < 0 {
		return []string{"no Deployment thanos-query"}
	}
	d := b.Deployments[i]
	p := d.Spec.Template.Spec
	if len(p.Containers) != 1 || len(p.InitContainers) != 0 {
		return []string{"thanos-query: one container expected"}
	}
	c := p.Containers[0]
	cn := "Deployment thanos-query container " + c.Name

	// Image: Thanos's own, at the version the tests run, no registry host.
	v = append(v, imageViolations(cn, c.Image)...)
	if registryHost(c.Image) {
		bad("%s: image %q names a registry host", cn, c.Image)
	}
	if ref, _, _ := strings.Cut(c.Image, "@"); ref != "thanosio/thanos:"+wantTag {
		bad("%s: image %q, want thanosio/thanos:%s (the Makefile's THANOS_VERSION)", cn, c.Image, wantTag)
	}

	// Arguments.
	if len(c.Args) == 0 || c.Args[0] != "query" || len(c.Command) != 0 {
		bad("%s: args must start with the query command (and the image's entrypoint run)", cn)
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
	if e, ok := one("endpoint"); ok {
		v = append(v, srvViolations(b, cn, e)...)
	}
	for _, name := range []string{"store.response-timeout", "query.timeout", "store.sd-dns-interval"} {
		if s, ok := one(name); ok {
			if dur, err := model.ParseDuration(s); err != nil || dur <= 0 {
				bad("%s: --%s=%s is not a positive duration (0 disables it)", cn, name, s)
			}
		}
	}
	if pr, ok := one("query.partial-response"); ok && pr != "" && pr != "true" {
		bad("%s: --query.partial-response=%s", cn, pr)
	}
	for _, name := range []string{"no-query.partial-response", "query.replica-label", "endpoint-strict", "endpoint-group"} {
		if _, ok := flags[name]; ok {
			bad("%s: --%s (agents are separate stores, not replicas or groups; a node down gives a partial answer)", cn, name)
		}
	}

	// The HTTP port: the one it listens on, the probes' and the Service's.
	httpPort := int32(-1)
	if a, ok := one("http-address"); ok {
		if _, port, found := strings.Cut(a, ":"); found {
			var n int32
			if _, err := fmt.Sscan(port, &n); err == nil {
				httpPort = n
			}
		}
	}
	ports := map[string]int32{}
	for _, cp := range c.Ports {
		ports[cp.Name] = cp.ContainerPort
	}
	if ports["http"] != httpPort {
		bad("%s: container port http %d is not the --http-address port %d", cn, ports["http"], httpPort)
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
	si := slices.IndexFunc(b.Services, func(s *corev1.Service) bool { return s.Name == "thanos-query" })
	if si < 0 {
		bad("no Service thanos-query")
	} else {
		s := b.Services[si]
		if s.Spec.ClusterIP == corev1.ClusterIPNone || len(s.Spec.Selector) == 0 {
			bad("Service thanos-query: a ClusterIP Service with a selector")
		}
		for k, val := range s.Spec.Selector {
			if d.Spec.Template.Labels[k] != val {
				bad("Service thanos-query: selector %s=%s does not match the Query pods", k, val)
			}
		}
		if !slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool {
			return sp.Name == "http" && portNumber(sp.TargetPort, ports) == httpPort
		}) {
			bad("Service thanos-query: no port http targeting %d", httpPort)
		}
	}

	// Pod and container: as hardened as the agent.
	sa := slices.IndexFunc(b.ServiceAccounts, func(s *corev1.ServiceAccount) bool { return s.Name == p.ServiceAccountName })
	if p.ServiceAccountName == "" || p.ServiceAccountName == "default" || sa < 0 {
		bad("%s: serviceAccountName %q is not its own", cn, p.ServiceAccountName)
	}
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		bad("%s: a service account token is mounted (Query never calls the Kubernetes API)", cn)
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
	sc := c.SecurityContext
	switch {
	case sc == nil:
		bad("%s: no securityContext", cn)
	default:
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
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 || sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
			bad("%s: runs as root", cn)
		}
	}
	v = append(v, resourceViolations(cn, c.Resources)...)
	return v
}

// srvViolations checks the --endpoint value e: a DNS SRV name whose port
// name, Service and namespace are the agents' headless Service and its
// port that targets the agent's StoreAPI port (named grpc).
func srvViolations(b *bundle, cn, e string) []string {
	m := srvName.FindStringSubmatch(e)
	if m == nil {
		return []string{fmt.Sprintf("%s: --endpoint=%s is not dnssrv+_<port>._tcp.<service>.<namespace>.svc", cn, e)}
	}
	portName, svcName, ns := m[1], m[2], m[3]
	i := slices.IndexFunc(b.Services, func(s *corev1.Service) bool { return s.Name == svcName && s.Namespace == ns })
	if i < 0 {
		return []string{fmt.Sprintf("%s: --endpoint names Service %s in namespace %s, which is not rendered", cn, svcName, ns)}
	}
	s := b.Services[i]
	var v []string
	if s.Spec.ClusterIP != corev1.ClusterIPNone {
		v = append(v, fmt.Sprintf("%s: Service %s is not headless: its SRV records would name one virtual IP, not every agent", cn, svcName))
	}
	agent := b.DaemonSets[0].Spec.Template
	for k, val := range s.Spec.Selector {
		if agent.Labels[k] != val {
			v = append(v, fmt.Sprintf("%s: Service %s does not select the agents (%s=%s)", cn, svcName, k, val))
		}
	}
	ports := map[string]int32{}
	for _, cp := range agent.Spec.Containers[0].Ports {
		ports[cp.Name] = cp.ContainerPort
	}
	j := slices.IndexFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == portName })
	switch {
	case j < 0:
		v = append(v, fmt.Sprintf("%s: Service %s has no port named %q: the SRV name _%s._tcp resolves to nothing", cn, svcName, portName, portName))
	case s.Spec.Ports[j].Protocol != "" && s.Spec.Ports[j].Protocol != corev1.ProtocolTCP:
		v = append(v, fmt.Sprintf("%s: Service %s port %s is not TCP", cn, svcName, portName))
	case ports["grpc"] == 0 || portNumber(s.Spec.Ports[j].TargetPort, ports) != ports["grpc"]:
		v = append(v, fmt.Sprintf("%s: Service %s port %s does not target the agent's StoreAPI port (grpc, %d)", cn, svcName, portName, ports["grpc"]))
	}
	return v
}

// portNumber resolves a port that may be a name among ports.
func portNumber(p intstr.IntOrString, ports map[string]int32) int32 {
	if p.Type == intstr.String {
		if n, ok := ports[p.StrVal]; ok {
			return n
		}
		return -1
	}
	return p.IntVal
}

func TestThanosQueryComponent(t *testing.T) {
	b := mustBundle(t, thanosExample)
	assert.Empty(t, queryViolations(b, makefileThanosVersion(t)))
	require.Len(t, b.Deployments, 1)
	assert.Equal(t, "weft-system", b.Deployments[0].Namespace)
	// The component adds Query's objects and changes nothing of the agent's.
	prod := mustBundle(t, "overlays/prod")
	assert.Equal(t, prod.DaemonSets, b.DaemonSets)
	assert.Equal(t, prod.ConfigMaps, b.ConfigMaps)
	assert.Equal(t, named(t, prod.NetworkPolicies, "weft"), named(t, b.NetworkPolicies, "weft"))
	// The image reference carries no registry host anywhere in the
	// component's files (the runtime's default registry resolves it).
	entries, err := os.ReadDir("components/thanos-query")
	require.NoError(t, err)
	imageRef := regexp.MustCompile(`(?m)^[\s-]*(?:image|newName):\s*(\S+)`)
	refs := 0
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join("components/thanos-query", e.Name()))
		require.NoError(t, err)
		for _, m := range imageRef.FindAllStringSubmatch(string(raw), -1) {
			assert.False(t, registryHost(m[1]), "%s: %s", e.Name(), m[0])
			refs++
		}
	}
	assert.Equal(t, 2, refs, "the Deployment's image and the kustomization's newName")
}

// Each mutation breaks one rule queryViolations checks.
func TestThanosQueryRejects(t *testing.T) {
	query := func(b *bundle) *corev1.Container { return &b.Deployments[0].Spec.Template.Spec.Containers[0] }
	setArg := func(b *bundle, prefix, to string) {
		c := query(b)
		i := slices.IndexFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, prefix) })
		require.GreaterOrEqual(t, i, 0, prefix)
		if to == "" {
			c.Args = slices.Delete(c.Args, i, i+1)
			return
		}
		c.Args[i] = to
	}
	agentService := func(b *bundle) *corev1.Service { return named(t, b.Services, "weft-query") }
	yes, no, root := true, false, int64(0)
	for _, c := range []struct {
		name   string
		mutate func(*bundle)
		want   string
	}{
		{"Service port renamed", func(b *bundle) {
			s := agentService(b)
			s.Spec.Ports[slices.IndexFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "grpc" })].Name = "grpc-store"
		}, `has no port named "grpc"`},
		{"SRV name in another namespace", func(b *bundle) {
			setArg(b, "--endpoint=", "--endpoint=dnssrv+_grpc._tcp.weft-query.monitoring.svc")
		}, "Service weft-query in namespace monitoring, which is not rendered"},
		{"SRV name of another Service", func(b *bundle) {
			setArg(b, "--endpoint=", "--endpoint=dnssrv+_grpc._tcp.thanos-query.weft-system.svc")
		}, "is not headless"},
		{"SRV port on the query API", func(b *bundle) {
			setArg(b, "--endpoint=", "--endpoint=dnssrv+_query._tcp.weft-query.weft-system.svc")
		}, "does not target the agent's StoreAPI port"},
		{"plain DNS instead of SRV", func(b *bundle) {
			setArg(b, "--endpoint=", "--endpoint=dns+weft-query.weft-system.svc:10901")
		}, "is not dnssrv+"},
		{"no endpoint", func(b *bundle) { setArg(b, "--endpoint=", "") }, "--endpoint given 0 times"},
		{"replica label", func(b *bundle) {
			query(b).Args = append(query(b).Args, "--query.replica-label=node")
		}, "--query.replica-label"},
		{"partial response off", func(b *bundle) {
			setArg(b, "--query.partial-response", "--no-query.partial-response")
		}, "--query.partial-response given 0 times"},
		{"no store response timeout", func(b *bundle) {
			setArg(b, "--store.response-timeout=", "--store.response-timeout=0s")
		}, "--store.response-timeout=0s is not a positive duration"},
		{"positional argument", func(b *bundle) { query(b).Args = append(query(b).Args, "extra") }, `argument "extra" is not a --flag`},
		{"registry host", func(b *bundle) { query(b).Image = "registry.example:5000/thanosio/thanos:v0.42.4" }, "names a registry host"},
		{"other version", func(b *bundle) { query(b).Image = "thanosio/thanos:v0.39.0" }, "the Makefile's THANOS_VERSION"},
		{"latest", func(b *bundle) { query(b).Image = "thanosio/thanos:latest" }, "uses :latest"},
		{"readiness on /ready", func(b *bundle) { query(b).ReadinessProbe.HTTPGet.Path = "/ready" }, `readinessProbe path "/ready"`},
		{"liveness on the gRPC port", func(b *bundle) { query(b).LivenessProbe.HTTPGet.Port = intstr.FromInt32(10901) }, "livenessProbe port 10901"},
		{"http-address elsewhere", func(b *bundle) { setArg(b, "--http-address=", "--http-address=0.0.0.0:9090") }, "is not the --http-address port 9090"},
		{"Service selects the agents", func(b *bundle) {
			named(t, b.Services, "thanos-query").Spec.Selector = b.DaemonSets[0].Spec.Selector.MatchLabels
		}, "does not match the Query pods"},
		{"root", func(b *bundle) { b.Deployments[0].Spec.Template.Spec.SecurityContext.RunAsUser = &root }, "non-root uid"},
		{"writable root filesystem", func(b *bundle) { query(b).SecurityContext.ReadOnlyRootFilesystem = &no }, "readOnlyRootFilesystem"},
		{"escalation", func(b *bundle) { query(b).SecurityContext.AllowPrivilegeEscalation = &yes }, "allowPrivilegeEscalation"},
		{"a capability", func(b *bundle) { query(b).SecurityContext.Capabilities.Add = []corev1.Capability{"NET_RAW"} }, "drop ALL and add none"},
		{"token mounted", func(b *bundle) { b.Deployments[0].Spec.Template.Spec.AutomountServiceAccountToken = nil }, "token is mounted"},
		{"no memory limit", func(b *bundle) { delete(query(b).Resources.Limits, corev1.ResourceMemory) }, "resources.limits.memory not set"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := decodeBundle(render(t, thanosExample))
			require.NoError(t, err)
			require.Empty(t, queryViolations(b, makefileThanosVersion(t)), "the unmodified component passes")
			c.mutate(b)
			v := queryViolations(b, makefileThanosVersion(t))
			require.NotEmpty(t, v)
			assert.Contains(t, strings.Join(v, "\n"), c.want)
		})
	}
}

// thanosBinary returns $WEFT_THANOS, which must be an executable file when
// set (`make test` sets it to the binary `make tools` built, the Makefile's
// THANOS_VERSION). Unset, noThanos decides: plain `go test` skips,
// `-tags integration` fails.
func thanosBinary(t testing.TB) string {
	t.Helper()
	p := os.Getenv("WEFT_THANOS")
	if p == "" {
		noThanos(t)
		return ""
	}
	require.NoError(t, backends.Executable(p), "$WEFT_THANOS=%s: run `make tools` (it builds Thanos %s there)", p, makefileThanosVersion(t))
	// The module build reports no version (`thanos --version` is empty);
	// the Makefile names the file after it.
	if v, ok := strings.CutPrefix(filepath.Base(p), "thanos-"); ok {
		require.Equal(t, makefileThanosVersion(t), v, "$WEFT_THANOS=%s is not the Makefile's THANOS_VERSION", p)
	}
	return p
}

// helpFlag matches a flag in kingpin's help: --name, or --[no-]name for a
// boolean.
var helpFlag = regexp.MustCompile(`--(\[no-\])?([a-z0-9][a-z0-9._-]*)`)

// Every flag the component passes exists in the Thanos binary of the
// Makefile's version (a flag Thanos does not know makes it exit at start),
// and none of them is hidden there (hidden flags are not a stable interface).
func TestThanosQueryFlagsExist(t *testing.T) {
	bin := thanosBinary(t)
	out, err := exec.Command(bin, "query", "--help").CombinedOutput()
	require.NoError(t, err, "%s query --help:\n%s", bin, out)
	known := map[string]bool{}
	for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
		known[m[2]] = true
		if m[1] != "" {
			known["no-"+m[2]] = true
		}
	}
	// The help really lists query's flags, and not every name.
	require.True(t, known["query.replica-label"], "query --help lists query's flags:\n%s", out)
	require.False(t, known["endpoint.sd-interval"], "not a flag of v0.42.4 (the DNS interval is --store.sd-dns-interval)")

	c := named(t, mustBundle(t, thanosExample).Deployments, "thanos-query").Spec.Template.Spec.Containers[0]
	flags, notFlags := queryFlags(c.Args[1:])
	require.Empty(t, notFlags)
	require.NotEmpty(t, flags)
	for name := range flags {
		assert.True(t, known[name], "--%s is not a flag of %s query", name, bin)
	}
}
