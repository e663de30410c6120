package containerlogsreceiver

import (
	"path/filepath"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// podMeta is what the kubelet's log path tells about a container:
// /var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log
type podMeta struct {
	namespace, pod, uid, container, restart string
}

// metaFromPath extracts pod metadata from a kubelet log path. Rotated names
// (0.log.20240101-000000, 0.log.20240101-000000.gz) are understood too, and
// so are the /var/log/containers/<pod>_<namespace>_<container>-<id>.log
// links (which carry no pod UID nor restart count).
func metaFromPath(path string) (podMeta, bool) {
	if m, ok := metaFromContainersLink(path); ok {
		return m, true
	}
	file := filepath.Base(path)
	containerDir := filepath.Dir(path)
	podDir := filepath.Base(filepath.Dir(containerDir))
	i := strings.Index(file, ".log")
	if i <= 0 {
		return podMeta{}, false
	}
	restart := file[:i]
	for _, c := range restart {
		if c < '0' || c > '9' {
			return podMeta{}, false
		}
	}
	first := strings.IndexByte(podDir, '_')
	last := strings.LastIndexByte(podDir, '_')
	if first <= 0 || last <= first+1 || last == len(podDir)-1 {
		return podMeta{}, false
	}
	return podMeta{
		namespace: podDir[:first],
		pod:       podDir[first+1 : last],
		uid:       podDir[last+1:],
		container: filepath.Base(containerDir),
		restart:   restart,
	}, true
}

// putResource sets the OTel semantic-convention resource attributes.
func (m podMeta) putResource(attrs pcommon.Map) {
	attrs.PutStr("k8s.namespace.name", m.namespace)
	attrs.PutStr("k8s.pod.name", m.pod)
	if m.uid != "" {
		attrs.PutStr("k8s.pod.uid", m.uid)
	}
	attrs.PutStr("k8s.container.name", m.container)
	if n, ok := atoi(m.restart); ok {
		attrs.PutInt("k8s.container.restart_count", n)
	}
}

func atoi(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func metaFromContainersLink(path string) (podMeta, bool) {
	if filepath.Base(filepath.Dir(path)) != "containers" {
		return podMeta{}, false
	}
	name, ok := strings.CutSuffix(filepath.Base(path), ".log")
	if !ok {
		return podMeta{}, false
	}
	first := strings.IndexByte(name, '_')
	if first <= 0 {
		return podMeta{}, false
	}
	second := strings.IndexByte(name[first+1:], '_')
	if second <= 0 {
		return podMeta{}, false
	}
	second += first + 1
	rest := name[second+1:]
	dash := strings.LastIndexByte(rest, '-')
	if dash <= 0 || len(rest)-dash-1 != 64 {
		return podMeta{}, false
	}
	return podMeta{pod: name[:first], namespace: name[first+1 : second], container: rest[:dash]}, true
}
