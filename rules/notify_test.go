package rules

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extensions/weftstoreextension"
)

// podAlertRules fires at once with the labels of pod bookinfo/reviews-v2
// (absent() returns the equality matchers as labels). absent() is a
// cluster rule; the group's weft.io/scope forces it onto the node.
const podAlertRules = `groups:
- name: pods
  labels: {weft.io/scope: node}
  rules:
  - alert: PodDown
    expr: absent(pod_up{k8s_namespace_name="bookinfo", k8s_pod_name="reviews-v2"})
    labels: {severity: page}
    annotations: {summary: "{{ $labels.k8s_pod_name }} is down"}
`

func TestWebhookCarriesEvidence(t *testing.T) {
	var mu sync.Mutex
	var got []webhookMessage
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m webhookMessage
		if err := json.Unmarshal(b, &m); err != nil || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	writeFile(t, dir, "pods.yaml", podAlertRules)
	st := newTestStore(t, "")
	now := time.Now()
	// Failing traces of the pod (the newest three are expected, newest
	// first) and of another pod (not expected).
	for i := byte(1); i <= 4; i++ {
		appendFailingSpan(t, st, "reviews", "bookinfo", "reviews-v2", traceID(i), now.Add(time.Duration(i)*time.Second-time.Minute), "upstream reset "+string('0'+i))
	}
	appendFailingSpan(t, st, "ratings", "bookinfo", "ratings-v1", traceID(9), now.Add(-time.Second), "other pod")

	cfg := testConfig()
	cfg.RuleFiles = []string{dir}
	cfg.EvaluationInterval = 200 * time.Millisecond
	cfg.Webhooks = []string{srv.URL + "/hook"}
	cfg.ExternalLabels = map[string]string{"cluster": "test"}
	cfg.ExternalURL = "http://weft.test:8686"
	cfg.Evidence.LinkTemplate = "http://jaeger.test/trace/{{ .TraceID }}"
	cfg.Evidence.Timeout = 5 * time.Second // content is checked here, the budget in TestEvidenceBudget
	e := startEngine(t, st, cfg, Settings{}, nil)

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	}, 20*time.Second, 20*time.Millisecond)
	mu.Lock()
	m := got[0]
	mu.Unlock()
	assert.Equal(t, "4", m.Version)
	assert.Equal(t, "firing", m.Status)
	assert.Equal(t, webhookReceiver, m.Receiver)
	assert.Equal(t, map[string]string{"alertname": "PodDown"}, m.GroupLabels)
	assert.Equal(t, `{}:{alertname="PodDown"}`, m.GroupKey)
	assert.Equal(t, "http://weft.test:8686", m.ExternalURL)
	require.Len(t, m.Alerts, 1)
	a := m.Alerts[0]
	assert.Equal(t, "firing", a.Status)
	assert.Equal(t, map[string]string{
		"alertname": "PodDown", "severity": "page", "cluster": "test",
		"k8s_namespace_name": "bookinfo", "k8s_pod_name": "reviews-v2",
	}, a.Labels)
	assert.Len(t, a.Fingerprint, 16)
	assert.True(t, strings.HasPrefix(a.GeneratorURL, "http://weft.test:8686/graph?g0.expr="), a.GeneratorURL)
	assert.Equal(t, "reviews-v2 is down", a.Annotations["summary"])
	want := []string{traceID(4).String(), traceID(3).String(), traceID(2).String()}
	assert.Equal(t, strings.Join(want, ","), a.Annotations[annTraceIDs])
	assert.Equal(t, "failing_spans", a.Annotations[annSource])
	assert.Equal(t, "http://jaeger.test/trace/"+want[0]+"\nhttp://jaeger.test/trace/"+want[1]+"\nhttp://jaeger.test/trace/"+want[2], a.Annotations[annLinks])
	logs := strings.Split(a.Annotations[annLogs], "\n")
	require.Len(t, logs, 3)
	assert.Contains(t, logs[0], want[0])
	assert.Contains(t, logs[0], "bookinfo/reviews-v2 upstream reset 4")
	assert.Equal(t, m.CommonAnnotations, a.Annotations)
	for _, id := range want {
		sp, err := st.Trace(mustTraceID(t, id))
		require.NoError(t, err)
		assert.NotEmpty(t, sp, "trace %s is in the store", id)
	}

	// The query API sees the same alert with the same evidence.
	alerts := e.Alerts()
	require.Len(t, alerts, 1)
	assert.Equal(t, "firing", alerts[0].State)
	assert.Equal(t, "PodDown", alerts[0].Labels["alertname"])
	assert.Equal(t, want, alerts[0].TraceIDs)
	groups := e.RuleGroups()
	require.Len(t, groups, 1)
	require.Len(t, groups[0].Rules, 1)
	assert.Equal(t, "alerting", groups[0].Rules[0].Type)
	assert.Equal(t, "firing", groups[0].Rules[0].State)
	assert.Equal(t, "ok", groups[0].Rules[0].Health)
}

func mustTraceID(t *testing.T, s string) [16]byte {
	t.Helper()
	id, ok := parseTraceID(s)
	require.True(t, ok)
	return id
}

// slowSource blocks failing-trace lookups until release is closed.
type slowSource struct {
	release chan struct{}
	ids     []weftstoreextension.FailingTrace
}

func (s *slowSource) ExemplarQueryable() storage.ExemplarQueryable { return noExemplars{} }

func (s *slowSource) FailingTraces(weftstoreextension.TraceSelector) []weftstoreextension.FailingTrace {
	<-s.release
	return s.ids
}

func (s *slowSource) SearchLogs(weftstoreextension.LogQuery) ([]weftstoreextension.LogRecord, error) {
	return nil, nil
}

type noExemplars struct{}

func (noExemplars) ExemplarQuerier(context.Context) (storage.ExemplarQuerier, error) {
	return nil, io.EOF
}

func TestEvidenceBudget(t *testing.T) {
	src := &slowSource{release: make(chan struct{}), ids: []weftstoreextension.FailingTrace{{TraceID: traceID(7)}}}
	f, err := newEvidenceFinder(src, parser.NewParser(parser.Options{}), EvidenceConfig{MaxTraces: 3, Timeout: 100 * time.Millisecond})
	require.NoError(t, err)
	ref := alertRef{labels: labels.FromStrings("alertname", "A", "service", "reviews"), activeAt: time.Now(), at: time.Now()}

	start := time.Now()
	evs := f.find(t.Context(), "up == 0", []alertRef{ref})
	elapsed := time.Since(start)
	assert.Nil(t, evs[0], "no evidence while the lookup runs")
	assert.GreaterOrEqual(t, elapsed, 100*time.Millisecond)
	assert.Less(t, elapsed, 300*time.Millisecond, "the notification waits at most the budget")

	close(src.release)
	f.wait()
	start = time.Now()
	evs = f.find(t.Context(), "up == 0", []alertRef{ref})
	assert.Less(t, time.Since(start), 50*time.Millisecond, "cached evidence needs no lookup")
	require.NotNil(t, evs[0])
	assert.Equal(t, traceID(7), evs[0].traceIDs[0])
	f.mu.Lock()
	assert.Equal(t, int64(1), f.timeouts)
	f.mu.Unlock()

	// The resolved notification of the episode keeps its evidence; a new
	// episode (new activeAt) looks up again.
	resolved := ref
	resolved.resolved = true
	assert.Same(t, evs[0], f.find(t.Context(), "up == 0", []alertRef{resolved})[0])
	next := ref
	next.activeAt = ref.activeAt.Add(time.Hour)
	assert.NotSame(t, evs[0], f.find(t.Context(), "up == 0", []alertRef{next})[0])
	f.wait()
}

func TestWebhookMessage(t *testing.T) {
	now := time.Now()
	firing := &notifier.Alert{
		Labels:      labels.FromStrings("alertname", "A", "pod", "p1", "severity", "page"),
		Annotations: labels.FromStrings("summary", "s1"),
		StartsAt:    now.Add(-time.Minute), EndsAt: now.Add(time.Minute),
	}
	resolved := &notifier.Alert{
		Labels:      labels.FromStrings("alertname", "A", "pod", "p2", "severity", "page", "cluster", "own"),
		Annotations: labels.FromStrings("summary", "s2"),
		StartsAt:    now.Add(-time.Hour), EndsAt: now.Add(-time.Second),
	}
	tests := []struct {
		name       string
		alerts     []*notifier.Alert
		wantStatus string
		wantCommon map[string]string
	}{
		{"firing and resolved", []*notifier.Alert{firing, resolved}, "firing", map[string]string{"alertname": "A", "severity": "page"}},
		{"resolved only", []*notifier.Alert{resolved}, "resolved", map[string]string{"alertname": "A", "pod": "p2", "severity": "page", "cluster": "own"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := buildWebhookMessage(tt.alerts, labels.FromStrings("cluster", "ext"), "http://x", now)
			assert.Equal(t, tt.wantStatus, m.Status)
			assert.Equal(t, tt.wantCommon, m.CommonLabels)
			require.Len(t, m.Alerts, len(tt.alerts))
			for i, a := range tt.alerts {
				wantStatus := "firing"
				if !a.EndsAt.After(now) {
					wantStatus = "resolved"
				}
				assert.Equal(t, wantStatus, m.Alerts[i].Status)
				wantCluster := "ext"
				if v := a.Labels.Get("cluster"); v != "" {
					wantCluster = v // the alert's own label wins over external labels
				}
				assert.Equal(t, wantCluster, m.Alerts[i].Labels["cluster"])
			}
		})
	}
}

func TestParseTraceID(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"4bf92f3577b34da6a3ce929d0e0e4736", true},
		{"00000000000000000000000000000000", false}, // all zero: no ID
		{"4bf92f3577b34da6a3ce929d0e0e473", false},  // 31 digits
		{"4bf92f3577b34da6a3ce929d0e0e473g", false}, // not hex
		{"", false},
	} {
		id, ok := parseTraceID(tt.in)
		assert.Equal(t, tt.ok, ok, tt.in)
		if ok {
			assert.Equal(t, tt.in, id.String())
		}
	}
}
