package deploy

import (
	"fmt"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Capabilities a container may add, by container name, each for a reason
// documented in deploy/README.md: the init container changes the data
// directory's owner; the agent may read 0600 logs in the root-log-reader
// variant.
var allowedCaps = map[string][]corev1.Capability{
	"data-dir-owner": {"CHOWN"},
	"weft":           {"DAC_READ_SEARCH"},
}

// hostPaths are the only host directories the pod may mount; the log
// directories only read-only.
var hostPaths = map[string]bool{ // path → may be written
	"/var/log/pods":       false,
	"/var/log/containers": false,
	"/var/lib/weft":       true,
}

// hostPorts the agent may open on the node (OTLP gRPC and HTTP, in an overlay).
var hostPorts = []int32{4317, 4318}

// reviewRules are the only rules that may create anything: the reviews
// weft_query's Kubernetes authentication sends (TokenReview,
// SubjectAccessReview), which write nothing, each exactly this, and only in
// the agent's own ClusterRole.
var reviewRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
	{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
}

// agentRole is the ClusterRole bound to the agent's ServiceAccount.
const agentRole = "weft"

// policy returns every violation of the deployment rules in b.
func policy(b *bundle) []string {
	var v []string
	bad := func(format string, a ...any) { v = append(v, fmt.Sprintf(format, a...)) }

	// RBAC: read-only verbs, no wildcards, nothing on secrets; the agent's
	// role may also create the two reviews.
	checkRules := func(kind, name string, rules []rbacv1.PolicyRule) {
		for i, r := range rules {
			where := fmt.Sprintf("%s %s rule %d", kind, name, i)
			if kind == "ClusterRole" && name == agentRole && slices.ContainsFunc(reviewRules, func(rr rbacv1.PolicyRule) bool {
				return reflect.DeepEqual(rr, r)
			}) {
				continue
			}
			for _, res := range r.Resources {
				if res == "*" || strings.HasPrefix(res, "secrets") {
					bad("%s: resource %q (no secrets, no wildcards)", where, res)
				}
			}
			for _, g := range r.APIGroups {
				if g == "*" {
					bad("%s: apiGroup \"*\"", where)
				}
			}
			if len(r.NonResourceURLs) > 0 {
				bad("%s: nonResourceURLs %v", where, r.NonResourceURLs)
			}
			for _, verb := range r.Verbs {
				if !slices.Contains([]string{"get", "list", "watch"}, verb) {
					bad("%s: verb %q (only get, list, watch; create only in ClusterRole %s, exactly on tokenreviews and subjectaccessreviews)", where, verb, agentRole)
				}
			}
		}
	}
	roles := map[string]bool{}
	for _, r := range b.ClusterRoles {
		checkRules("ClusterRole", r.Name, r.Rules)
		if r.AggregationRule != nil {
			bad("ClusterRole %s: aggregationRule (its rules would come from elsewhere)", r.Name)
		}
		roles[r.Name] = true
	}
	for _, r := range b.Roles {
		checkRules("Role", r.Name, r.Rules)
	}
	for _, rb := range b.ClusterRoleBindings {
		if rb.RoleRef.Kind != "ClusterRole" || !roles[rb.RoleRef.Name] {
			bad("ClusterRoleBinding %s: binds %s %s, which this deployment does not define", rb.Name, rb.RoleRef.Kind, rb.RoleRef.Name)
		}
	}
	if len(b.RoleBindings) > 0 {
		bad("RoleBindings are not expected (%d)", len(b.RoleBindings))
	}

	sas := map[string]bool{}
	for _, sa := range b.ServiceAccounts {
		sas[sa.Name] = true
	}
	for _, ds := range b.DaemonSets {
		p := ds.Spec.Template.Spec
		name := "DaemonSet " + ds.Name
		if p.HostNetwork || p.HostPID || p.HostIPC {
			bad("%s: host network, PID or IPC namespace", name)
		}
		if p.ServiceAccountName == "" || p.ServiceAccountName == "default" || !sas[p.ServiceAccountName] {
			bad("%s: serviceAccountName %q is not the deployment's own ServiceAccount", name, p.ServiceAccountName)
		}
		if p.PriorityClassName == "" {
			bad("%s: no priorityClassName", name)
		}
		if !slices.ContainsFunc(p.Tolerations, func(t corev1.Toleration) bool {
			return t.Key == "" && t.Operator == corev1.TolerationOpExists && t.Effect == ""
		}) {
			bad("%s: no toleration for every taint (operator Exists, no key, no effect)", name)
		}
		podSeccomp := p.SecurityContext != nil && p.SecurityContext.SeccompProfile != nil &&
			p.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
		podNonRoot := p.SecurityContext != nil && p.SecurityContext.RunAsNonRoot != nil && *p.SecurityContext.RunAsNonRoot

		// Volumes: only the known host paths.
		hostVol := map[string]string{} // volume name → host path
		for _, vol := range p.Volumes {
			if vol.HostPath == nil {
				continue
			}
			clean := path.Clean(vol.HostPath.Path)
			if _, ok := hostPaths[clean]; !ok {
				bad("%s: hostPath volume %s mounts %s (allowed: /var/log/pods, /var/log/containers, /var/lib/weft)", name, vol.Name, clean)
			}
			hostVol[vol.Name] = clean
		}

		all := append(append([]corev1.Container{}, p.InitContainers...), p.Containers...)
		for i, c := range all {
			cn := fmt.Sprintf("%s container %s", name, c.Name)
			isInit := i < len(p.InitContainers)
			v = append(v, imageViolations(cn, c.Image)...)
			v = append(v, resourceViolations(cn, c.Resources)...)
			sc := c.SecurityContext
			if sc == nil {
				bad("%s: no securityContext", cn)
				continue
			}
			if sc.Privileged != nil && *sc.Privileged {
				bad("%s: privileged", cn)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				bad("%s: allowPrivilegeEscalation must be false", cn)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				bad("%s: readOnlyRootFilesystem must be true", cn)
			}
			seccomp := podSeccomp
			if sc.SeccompProfile != nil {
				seccomp = sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
			}
			if !seccomp {
				bad("%s: seccomp profile must be RuntimeDefault", cn)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				bad("%s: capabilities must drop ALL", cn)
			}
			var added []corev1.Capability
			if sc.Capabilities != nil {
				added = sc.Capabilities.Add
			}
			for _, c2 := range added {
				if !slices.Contains(allowedCaps[c.Name], c2) {
					bad("%s: adds capability %s (allowed here: %v)", cn, c2, allowedCaps[c.Name])
				}
			}
			nonRoot := podNonRoot
			if sc.RunAsNonRoot != nil {
				nonRoot = *sc.RunAsNonRoot
			}
			// Root is allowed only without any capability beyond the one
			// documented for this container.
			if !isInit && !nonRoot && !slices.Equal(added, []corev1.Capability{"DAC_READ_SEARCH"}) {
				bad("%s: runs as root without being the documented DAC_READ_SEARCH variant", cn)
			}
			for _, m := range c.VolumeMounts {
				hp, ok := hostVol[m.Name]
				if !ok {
					continue
				}
				if !hostPaths[hp] && !m.ReadOnly {
					bad("%s: host log directory %s mounted read-write at %s", cn, hp, m.MountPath)
				}
			}
			for _, port := range c.Ports {
				if port.HostPort != 0 && !slices.Contains(hostPorts, port.HostPort) {
					bad("%s: hostPort %d (only OTLP %v)", cn, port.HostPort, hostPorts)
				}
			}
			if isInit {
				continue
			}
			v = append(v, probeViolations(cn, c)...)
			v = append(v, envViolations(cn, c)...)
		}
	}
	return v
}

func imageViolations(cn, image string) []string {
	ref, digest, _ := strings.Cut(image, "@")
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	tag := ""
	if colon > slash {
		tag = ref[colon+1:]
	}
	switch {
	case tag == "" && digest == "":
		return []string{fmt.Sprintf("%s: image %q has no tag", cn, image)}
	case tag == "latest":
		return []string{fmt.Sprintf("%s: image %q uses :latest", cn, image)}
	}
	return nil
}

func resourceViolations(cn string, r corev1.ResourceRequirements) []string {
	var v []string
	for _, kind := range []struct {
		what string
		list corev1.ResourceList
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			q, ok := kind.list[res]
			if !ok || q.Sign() <= 0 {
				v = append(v, fmt.Sprintf("%s: resources.%s.%s not set", cn, kind.what, res))
			}
		}
	}
	if req, lim := r.Requests[corev1.ResourceMemory], r.Limits[corev1.ResourceMemory]; !req.IsZero() && !lim.IsZero() && req.Cmp(lim) > 0 {
		v = append(v, fmt.Sprintf("%s: memory request %s above the limit %s", cn, req.String(), lim.String()))
	}
	return v
}

func probeViolations(cn string, c corev1.Container) []string {
	var v []string
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, pr := range []struct {
		what, path string
		probe      *corev1.Probe
	}{{"livenessProbe", "/healthz", c.LivenessProbe}, {"readinessProbe", "/ready", c.ReadinessProbe}} {
		switch {
		case pr.probe == nil || pr.probe.HTTPGet == nil:
			v = append(v, fmt.Sprintf("%s: no %s (HTTP GET %s)", cn, pr.what, pr.path))
		case pr.probe.HTTPGet.Path != pr.path:
			v = append(v, fmt.Sprintf("%s: %s path %q, want %s", cn, pr.what, pr.probe.HTTPGet.Path, pr.path))
		case pr.probe.HTTPGet.Port.StrVal != "" && ports[pr.probe.HTTPGet.Port.StrVal] != 8686,
			pr.probe.HTTPGet.Port.StrVal == "" && pr.probe.HTTPGet.Port.IntVal != 8686:
			v = append(v, fmt.Sprintf("%s: %s port %s is not weft_query's 8686", cn, pr.what, pr.probe.HTTPGet.Port.String()))
		}
	}
	return v
}

func envViolations(cn string, c corev1.Container) []string {
	var v []string
	want := map[string]func(corev1.EnvVar) bool{
		"POD_IP": func(e corev1.EnvVar) bool {
			return e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP"
		},
		"NODE_NAME": func(e corev1.EnvVar) bool {
			return e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
		},
		"GOMEMLIMIT": func(e corev1.EnvVar) bool {
			r := e.ValueFrom
			return r != nil && r.ResourceFieldRef != nil && r.ResourceFieldRef.Resource == "limits.memory" &&
				(r.ResourceFieldRef.ContainerName == "" || r.ResourceFieldRef.ContainerName == c.Name) &&
				r.ResourceFieldRef.Divisor.Cmp(resource.MustParse("1")) == 0
		},
	}
	for name, ok := range want {
		i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
		if i < 0 || !ok(c.Env[i]) {
			v = append(v, fmt.Sprintf("%s: env %s is not set from the downward API as required", cn, name))
		}
	}
	return v
}

func TestPolicy(t *testing.T) {
	for _, dir := range append([]string{"base"}, overlays...) {
		t.Run(dir, func(t *testing.T) {
			assert.Empty(t, policy(mustBundle(t, dir)))
		})
	}
}

// role returns the rendered ClusterRole called name.
func role(b *bundle, name string) *rbacv1.ClusterRole {
	for _, r := range b.ClusterRoles {
		if r.Name == name {
			return r
		}
	}
	panic("no ClusterRole " + name)
}

// reviewRule returns the index of the agent role's rule on resource.
func reviewRule(b *bundle, resource string) int {
	return slices.IndexFunc(role(b, agentRole).Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, resource) })
}

// Each mutation of a rendered object breaks one rule; the policy must say so.
func TestPolicyRejects(t *testing.T) {
	agent := func(b *bundle) *corev1.Container { return &b.DaemonSets[0].Spec.Template.Spec.Containers[0] }
	pod := func(b *bundle) *corev1.PodSpec { return &b.DaemonSets[0].Spec.Template.Spec }
	mount := func(b *bundle, name string) *corev1.VolumeMount {
		c := agent(b)
		i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == name })
		require.GreaterOrEqual(t, i, 0, name)
		return &c.VolumeMounts[i]
	}
	yes, no := true, false
	for _, c := range []struct {
		name   string
		mutate func(*bundle)
		want   string
	}{
		{"secrets rule", func(b *bundle) {
			b.ClusterRoles[0].Rules = append(b.ClusterRoles[0].Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}})
		}, `resource "secrets"`},
		{"wildcard resource", func(b *bundle) { b.ClusterRoles[0].Rules[0].Resources = []string{"*"} }, `resource "*"`},
		{"write verb", func(b *bundle) { b.ClusterRoles[0].Rules[0].Verbs = append(b.ClusterRoles[0].Rules[0].Verbs, "patch") }, `verb "patch"`},
		{"binding to a foreign role", func(b *bundle) { b.ClusterRoleBindings[0].RoleRef.Name = "cluster-admin" }, "does not define"},
		{"create on pods", func(b *bundle) {
			role(b, agentRole).Rules[0].Verbs = append(role(b, agentRole).Rules[0].Verbs, "create")
		}, `verb "create"`},
		{"review rule widened", func(b *bundle) {
			r := &role(b, agentRole).Rules[reviewRule(b, "tokenreviews")]
			r.Resources = append(r.Resources, "localsubjectaccessreviews")
		}, `verb "create"`},
		{"review rule with another verb", func(b *bundle) {
			r := &role(b, agentRole).Rules[reviewRule(b, "subjectaccessreviews")]
			r.Verbs = append(r.Verbs, "delete")
		}, `verb "delete"`},
		{"reviews in the reader role", func(b *bundle) {
			role(b, "weft-query-reader").Rules = append(role(b, "weft-query-reader").Rules, reviewRules[0])
		}, "ClusterRole weft-query-reader rule 1: verb \"create\""},
		{"pod log mount writable", func(b *bundle) { mount(b, "varlogpods").ReadOnly = false }, "/var/log/pods mounted read-write"},
		{"containers log mount writable", func(b *bundle) { mount(b, "varlogcontainers").ReadOnly = false }, "/var/log/containers mounted read-write"},
		{"other host path", func(b *bundle) { pod(b).Volumes[0].HostPath.Path = "/" }, "hostPath volume data mounts /"},
		{"no liveness probe", func(b *bundle) { agent(b).LivenessProbe = nil }, "no livenessProbe"},
		{"no readiness probe", func(b *bundle) { agent(b).ReadinessProbe = nil }, "no readinessProbe"},
		{"readiness on the wrong path", func(b *bundle) { agent(b).ReadinessProbe.HTTPGet.Path = "/" }, `readinessProbe path "/"`},
		{"no memory limit", func(b *bundle) { delete(agent(b).Resources.Limits, corev1.ResourceMemory) }, "resources.limits.memory not set"},
		{"no cpu request", func(b *bundle) { delete(agent(b).Resources.Requests, corev1.ResourceCPU) }, "resources.requests.cpu not set"},
		{"latest tag", func(b *bundle) { agent(b).Image = "weftobs/weft:latest" }, "uses :latest"},
		{"untagged image", func(b *bundle) { agent(b).Image = "weftobs/weft" }, "has no tag"},
		{"untagged init image with a registry port", func(b *bundle) { pod(b).InitContainers[0].Image = "registry:5000/busybox" }, "has no tag"},
		{"seccomp unconfined", func(b *bundle) {
			pod(b).SecurityContext.SeccompProfile.Type = corev1.SeccompProfileTypeUnconfined
		}, "seccomp profile must be RuntimeDefault"},
		{"writable root filesystem", func(b *bundle) { agent(b).SecurityContext.ReadOnlyRootFilesystem = &no }, "readOnlyRootFilesystem must be true"},
		{"capabilities not dropped", func(b *bundle) { agent(b).SecurityContext.Capabilities.Drop = nil }, "must drop ALL"},
		{"extra capability", func(b *bundle) {
			agent(b).SecurityContext.Capabilities.Add = []corev1.Capability{"SYS_ADMIN"}
		}, "adds capability SYS_ADMIN"},
		{"privilege escalation", func(b *bundle) { agent(b).SecurityContext.AllowPrivilegeEscalation = &yes }, "allowPrivilegeEscalation must be false"},
		{"privileged", func(b *bundle) { agent(b).SecurityContext.Privileged = &yes }, "privileged"},
		{"root without the documented capability", func(b *bundle) { pod(b).SecurityContext.RunAsNonRoot = &no }, "runs as root"},
		{"host network", func(b *bundle) { pod(b).HostNetwork = true }, "host network"},
		{"default service account", func(b *bundle) { pod(b).ServiceAccountName = "default" }, "serviceAccountName"},
		{"no toleration", func(b *bundle) { pod(b).Tolerations = nil }, "toleration"},
		{"no priority class", func(b *bundle) { pod(b).PriorityClassName = "" }, "priorityClassName"},
		{"query port on the node", func(b *bundle) { agent(b).Ports[5].HostPort = 8686 }, "hostPort 8686"},
		{"GOMEMLIMIT fixed", func(b *bundle) {
			c := agent(b)
			i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
			c.Env[i] = corev1.EnvVar{Name: "GOMEMLIMIT", Value: "512MiB"}
		}, "env GOMEMLIMIT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := mustBundle(t, "overlays/prod")
			require.Empty(t, policy(b), "the unmodified overlay passes")
			c.mutate(b)
			v := policy(b)
			require.NotEmpty(t, v)
			assert.Contains(t, strings.Join(v, "\n"), c.want)
		})
	}
}
