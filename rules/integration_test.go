//go:build integration

package rules

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/internal/backends"
)

// startAlertmanager runs the Debian package's Alertmanager on a free
// loopback port (no cluster listener) and returns its base URL.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	bin, err := backends.FindAlertmanager()
	require.NoError(t, err)
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "alertmanager.log"))
	require.NoError(t, err)
	t.Cleanup(func() {
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("alertmanager output:\n%s", b)
		}
	})
	am, err := backends.StartAlertmanager(t.Context(), bin, dir, out)
	require.NoError(t, err)
	t.Cleanup(am.Stop)
	return am.URL()
}

type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

func amAlerts(t *testing.T, url string) []amAlert {
	t.Helper()
	resp, err := http.Get(url + "/api/v2/alerts")
	require.NoError(t, err)
	defer resp.Body.Close()
	var as []amAlert
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&as))
	return as
}

// amReceived reads alertmanager_alerts_received_total{status="firing"}.
func amReceived(t *testing.T, url string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "alertmanager_alerts_received_total{") && strings.Contains(l, `status="firing"`) {
			v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			require.NoError(t, err)
			sum += v
		}
	}
	return sum
}

func TestAlertmanagerReceivesAlertWithEvidence(t *testing.T) {
	amURL := startAlertmanager(t)

	dir := t.TempDir()
	writeFile(t, dir, "pods.yaml", podAlertRules)
	st := newTestStore(t, "")
	now := time.Now()
	for i := byte(1); i <= 3; i++ {
		appendFailingSpan(t, st, "reviews", "bookinfo", "reviews-v2", traceID(i), now.Add(time.Duration(i)*time.Second-time.Minute), fmt.Sprintf("upstream reset %d", i))
	}

	const resend = time.Second
	cfg := testConfig()
	cfg.RuleFiles = []string{dir}
	cfg.EvaluationInterval = 250 * time.Millisecond
	cfg.ResendDelay = resend
	cfg.Alertmanagers = []AlertmanagerConfig{{URL: amURL}}
	cfg.ExternalLabels = map[string]string{"node": "n1"}
	cfg.Evidence.LinkTemplate = "http://jaeger.test/trace/{{ .TraceID }}"
	startEngine(t, st, cfg, Settings{}, nil)

	var got amAlert
	require.Eventually(t, func() bool {
		for _, a := range amAlerts(t, amURL) {
			if a.Labels["alertname"] == "PodDown" && a.Annotations[annTraceIDs] != "" {
				got = a
				return true
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, "the alert reaches Alertmanager with evidence")
	assert.Equal(t, "n1", got.Labels["node"], "external labels")
	assert.Equal(t, "page", got.Labels["severity"])
	assert.Equal(t, "failing_spans", got.Annotations[annSource])
	ids := strings.Split(got.Annotations[annTraceIDs], ",")
	require.Len(t, ids, 3)
	for _, id := range ids {
		c, err := st.Correlate(t.Context(), mustTraceID(t, id))
		require.NoError(t, err)
		assert.NotEmpty(t, c.Spans, "trace %s exists in the local store", id)
		assert.NotEmpty(t, c.Logs, "trace %s has logs in the local store", id)
	}
	assert.Contains(t, got.Annotations[annLinks], "http://jaeger.test/trace/"+ids[0])
	assert.Contains(t, got.Annotations[annLogs], "upstream reset 3")

	// Resent no more often than once per resend delay.
	c0, t0 := amReceived(t, amURL), time.Now()
	require.Eventually(t, func() bool { return amReceived(t, amURL) >= c0+2 }, 30*time.Second, 50*time.Millisecond)
	assert.GreaterOrEqual(t, time.Since(t0), 2*resend-cfg.EvaluationInterval, "two resends need two resend delays")

	// The pod reports again: the alert resolves and leaves Alertmanager's
	// active alerts.
	appendSample(t, st, labels.FromStrings("__name__", "pod_up", "k8s_namespace_name", "bookinfo", "k8s_pod_name", "reviews-v2"), time.Now(), 1, "")
	require.Eventually(t, func() bool {
		for _, a := range amAlerts(t, amURL) {
			if a.Labels["alertname"] == "PodDown" {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "the alert resolves")
}
