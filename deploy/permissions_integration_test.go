//go:build integration

package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// identity is what the kubelet gives a container's process: user, primary
// group, supplementary groups, the capabilities it adds after dropping ALL,
// and no_new_privs (allowPrivilegeEscalation: false).
type identity struct {
	uid, gid    int64
	groups      []int64
	caps        []corev1.Capability
	noNewPrivs  bool
	description string
}

func identityOf(t testing.TB, pod corev1.PodSpec, c corev1.Container) identity {
	t.Helper()
	id := identity{description: c.Name}
	if ps := pod.SecurityContext; ps != nil {
		if ps.RunAsUser != nil {
			id.uid = *ps.RunAsUser
		}
		if ps.RunAsGroup != nil {
			id.gid = *ps.RunAsGroup
		}
		id.groups = append(id.groups, ps.SupplementalGroups...)
	}
	sc := c.SecurityContext
	require.NotNil(t, sc, c.Name)
	if sc.RunAsUser != nil {
		id.uid = *sc.RunAsUser
	}
	if sc.RunAsGroup != nil {
		id.gid = *sc.RunAsGroup
	}
	require.NotNil(t, sc.Capabilities)
	require.Contains(t, sc.Capabilities.Drop, corev1.Capability("ALL"))
	id.caps = sc.Capabilities.Add
	id.noNewPrivs = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
	return id
}

// run executes argv as id through util-linux's setpriv: the user and
// groups are set, the bounding set holds only the added capabilities (so
// even uid 0 gets no others at exec), nothing is inheritable.
func (id identity) run(argv ...string) error {
	args := []string{fmt.Sprintf("--reuid=%d", id.uid), fmt.Sprintf("--regid=%d", id.gid)}
	if len(id.groups) == 0 {
		args = append(args, "--clear-groups")
	} else {
		var gs []string
		for _, g := range id.groups {
			gs = append(gs, fmt.Sprint(g))
		}
		args = append(args, "--groups="+strings.Join(gs, ","))
	}
	bounding := "-all"
	for _, c := range id.caps {
		bounding += ",+" + strings.ToLower(string(c))
	}
	args = append(args, "--inh-caps=-all", "--bounding-set="+bounding)
	if id.noNewPrivs {
		args = append(args, "--no-new-privs")
	}
	out, err := exec.Command("setpriv", append(append(args, "--"), argv...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %w: %s", id.description, argv, err, out)
	}
	return nil
}

// hostLayout builds, under root, what a node has: the kubelet's
// /var/log/pods tree (directories 0755 root) with log files of each mode,
// one directory and file belonging to another user, and the data directory
// as the kubelet's DirectoryOrCreate makes it (root 0755).
type hostLayout struct {
	root, data                     string
	log0640, log0600, otherUserLog string
}

func newHostLayout(t testing.TB) hostLayout {
	t.Helper()
	root := t.TempDir()
	// t.TempDir's directories are 0700; the node's path to them is not.
	require.NoError(t, os.Chmod(filepath.Dir(root), 0o755))
	require.NoError(t, os.Chmod(root, 0o755))
	h := hostLayout{root: root, data: filepath.Join(root, "var/lib/weft")}
	require.NoError(t, os.MkdirAll(h.data, 0o755))
	container := filepath.Join(root, "var/log/pods/shop_cart-7d9_0b1c/cart")
	require.NoError(t, os.MkdirAll(container, 0o755))
	for _, p := range []string{filepath.Join(root, "var"), filepath.Join(root, "var/lib"), filepath.Join(root, "var/log"), filepath.Join(root, "var/log/pods"), filepath.Join(root, "var/log/pods/shop_cart-7d9_0b1c"), container} {
		require.NoError(t, os.Chmod(p, 0o755))
	}
	write := func(path string, mode os.FileMode, uid int) string {
		require.NoError(t, os.WriteFile(path, []byte("2026-11-25T22:00:00.000000000Z stdout F hello\n"), mode))
		require.NoError(t, os.Chmod(path, mode))
		require.NoError(t, os.Chown(path, uid, uid))
		return path
	}
	h.log0640 = write(filepath.Join(container, "0.log"), 0o640, 0)
	h.log0600 = write(filepath.Join(container, "1.log"), 0o600, 0)
	other := filepath.Join(root, "var/log/pods/shop_other_9f8e/app")
	require.NoError(t, os.MkdirAll(other, 0o700))
	h.otherUserLog = write(filepath.Join(other, "0.log"), 0o600, 1234)
	require.NoError(t, os.Chown(other, 1234, 1234))
	require.NoError(t, os.Chown(filepath.Dir(other), 1234, 1234))
	require.NoError(t, os.Chmod(filepath.Dir(other), 0o700))
	return h
}

// hostArgs maps the container's /var/lib/weft to the layout's data dir.
func (h hostLayout) hostArgs(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = strings.ReplaceAll(a, "/var/lib/weft", h.data)
	}
	return out
}

// The DaemonSet's users, groups and capabilities work on real Linux
// permission semantics, as the kubelet would apply them: the init container
// hands the data directory to the agent at every start (restarts and
// upgrades included), the agent writes there and reads the container logs
// it is meant to read, and nothing more.
func TestPodIdentitiesOnHostFiles(t *testing.T) {
	require.Equal(t, 0, os.Geteuid(), "this test switches users and capabilities as the kubelet does and needs root (CI runs as root)")
	_, err := exec.LookPath("setpriv")
	require.NoError(t, err, "setpriv is missing: apt-get install util-linux")

	for _, c := range []struct {
		dir string
		// A previous pod left the data directory owned by this uid (an
		// upgrade from the other variant); -1: a fresh node.
		previousOwner int
		read0600      bool // the agent reads 0600 root:root logs
		readOther     bool // and 0600 logs of another user in a 0700 directory
	}{
		{dir: "overlays/prod", previousOwner: -1},
		{dir: "overlays/prod", previousOwner: 0},
		{dir: "examples/root-log-reader", previousOwner: 65532, read0600: true, readOther: true},
	} {
		t.Run(fmt.Sprintf("%s/previous-owner=%d", c.dir, c.previousOwner), func(t *testing.T) {
			b := mustBundle(t, c.dir)
			pod := b.DaemonSets[0].Spec.Template.Spec
			require.Len(t, pod.InitContainers, 1)
			initID := identityOf(t, pod, pod.InitContainers[0])
			agentID := identityOf(t, pod, pod.Containers[0])
			h := newHostLayout(t)
			if c.previousOwner >= 0 {
				require.NoError(t, os.WriteFile(filepath.Join(h.data, "checkpoint"), []byte("x"), 0o600))
				for _, p := range []string{h.data, filepath.Join(h.data, "checkpoint")} {
					require.NoError(t, os.Chown(p, c.previousOwner, c.previousOwner))
				}
			}
			// The init container runs at every pod start.
			for range 2 {
				require.NoError(t, initID.run(h.hostArgs(pod.InitContainers[0].Command)...))
			}
			st, err := os.Stat(h.data)
			require.NoError(t, err)
			assert.Equal(t, uint32(agentID.uid), st.Sys().(*syscall.Stat_t).Uid, "the agent owns its data directory")

			// The agent writes its state.
			require.NoError(t, agentID.run("mkdir", "-p", filepath.Join(h.data, "queue")))
			require.NoError(t, agentID.run("touch", filepath.Join(h.data, "queue", "q.db")))
			if c.previousOwner >= 0 {
				require.NoError(t, agentID.run("sh", "-c", "echo y >> "+filepath.Join(h.data, "checkpoint")), "state left by the previous pod")
			}
			// It reads the logs it must read, and only reads them.
			require.NoError(t, agentID.run("cat", h.log0640))
			check := func(ok bool, err error, what string) {
				if ok {
					assert.NoError(t, err, what)
				} else {
					assert.Error(t, err, what)
				}
			}
			check(c.read0600, agentID.run("cat", h.log0600), "read a 0600 root log")
			check(c.readOther, agentID.run("cat", h.otherUserLog), "read another user's 0600 log in a 0700 directory")
			assert.Error(t, agentID.run("sh", "-c", "echo x >> "+h.otherUserLog), "write another user's log (no CAP_DAC_OVERRIDE)")
			assert.Error(t, agentID.run("touch", filepath.Join(filepath.Dir(h.otherUserLog), "new.log")), "create files in another user's directory")
			if agentID.uid != 0 {
				assert.Error(t, agentID.run("sh", "-c", "echo x >> "+h.log0640), "write a root log (group 0 has read only)")
			}
		})
	}
}
