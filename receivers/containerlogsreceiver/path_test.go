package containerlogsreceiver

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestMetaFromPath(t *testing.T) {
	id := strings.Repeat("ab", 32)
	tests := []struct {
		path string
		want map[string]any
	}{
		{"/var/log/pods/bookinfo_reviews-v2-5d8f7b9c4-x7k2p_6f1e2d3c-aaaa-bbbb-cccc-0123456789ab/istio-proxy/3.log", map[string]any{
			"k8s.namespace.name": "bookinfo", "k8s.pod.name": "reviews-v2-5d8f7b9c4-x7k2p",
			"k8s.pod.uid": "6f1e2d3c-aaaa-bbbb-cccc-0123456789ab", "k8s.container.name": "istio-proxy",
			"k8s.container.restart_count": int64(3),
		}},
		{"/var/log/pods/ns_pod_uid/c/0.log.20240101-000000.gz", map[string]any{
			"k8s.namespace.name": "ns", "k8s.pod.name": "pod", "k8s.pod.uid": "uid", "k8s.container.name": "c",
			"k8s.container.restart_count": int64(0),
		}},
		{"/var/log/containers/cart-7d9f_shop_server-" + id + ".log", map[string]any{
			"k8s.namespace.name": "shop", "k8s.pod.name": "cart-7d9f", "k8s.container.name": "server",
		}},
		{"/var/log/pods/nounderscore/c/0.log", map[string]any{}},
		{"/var/log/pods/ns_pod_uid/c/app.log", map[string]any{}},
		{"/tmp/x.log", map[string]any{}},
		{"/var/log/containers/short_ns_c-123.log", map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			attrs := pcommon.NewMap()
			if m, ok := metaFromPath(tt.path); ok {
				m.putResource(attrs)
			}
			assert.Equal(t, tt.want, attrs.AsRaw())
		})
	}
}
