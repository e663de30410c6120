package democonfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/weftobs/weft/internal/simnode"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRulesMatchDeploy: the demo evaluates the HighErrorRate rules that
// deploy/ ships; the rules package's copy, which its tests load and
// evaluate, is the reference (cmd/weft's TestShippedRulesAgree holds
// deploy/base to it).
func TestRulesMatchDeploy(t *testing.T) {
	ref, err := os.ReadFile("../../rules/testdata/deploy/high-error-rate.rules.yaml")
	require.NoError(t, err)
	assert.Equal(t, string(ref), string(rules), "internal/democonfig/rules differs from rules/testdata/deploy")

	dir, err := WriteRules(t.TempDir())
	require.NoError(t, err)
	written, err := os.ReadFile(filepath.Join(dir, "high-error-rate.rules.yaml"))
	require.NoError(t, err)
	assert.Equal(t, string(ref), string(written))
}

func TestScrapeJobsGroupByContainer(t *testing.T) {
	jobs, err := ScrapeJobs([]simnode.Endpoint{
		{Namespace: "bookinfo", Pod: "reviews-v1", Container: "istio-proxy", URL: "http://127.0.0.1:1/stats/prometheus"},
		{Namespace: "functions", Pod: "hello", Container: "queue-proxy", URL: "http://127.0.0.1:2/metrics"},
		{Namespace: "bookinfo", Pod: "reviews-v1", Container: "reviews", URL: "http://127.0.0.1:3/metrics"},
	})
	require.NoError(t, err)
	assert.Equal(t, []ScrapeJob{
		{Name: "envoy", Path: "/stats/prometheus", Targets: []ScrapeTarget{{Addr: "127.0.0.1:1", Namespace: "bookinfo", Pod: "reviews-v1", Container: "istio-proxy"}}},
		{Name: "queue-proxy", Path: "/metrics", Targets: []ScrapeTarget{{Addr: "127.0.0.1:2", Namespace: "functions", Pod: "hello", Container: "queue-proxy"}}},
		{Name: "apps", Path: "/metrics", Targets: []ScrapeTarget{{Addr: "127.0.0.1:3", Namespace: "bookinfo", Pod: "reviews-v1", Container: "reviews"}}},
	}, jobs)
}

// TestRenderWiresOptionalBackends: Jaeger, Prometheus and Alertmanager
// appear in the configuration only when the demo runs them.
func TestRenderWiresOptionalBackends(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
		not  []string
	}{
		{"none", Config{PodsDir: "/p"}, []string{"include: [/p/*/*/*.log]"},
			[]string{"otlp_grpc/jaeger", "prometheus_remote_write", "alertmanagers"}},
		{"all", Config{PodsDir: "/p", Jaeger: "127.0.0.1:1", Prometheus: "http://127.0.0.1:2/api/v1/write", Alertmanager: "http://127.0.0.1:3"},
			[]string{"otlp_grpc/jaeger", "endpoint: http://127.0.0.1:2/api/v1/write", "- url: http://127.0.0.1:3"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			require.NoError(t, Render(&b, tc.cfg))
			for _, s := range tc.want {
				assert.Contains(t, b.String(), s)
			}
			for _, s := range tc.not {
				assert.NotContains(t, b.String(), s)
			}
		})
	}
}
