package rules

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promrules "github.com/prometheus/prometheus/rules"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// pinRecorder records Settings.Pin calls, keeping the latest until per
// trace as weft_pins would keep the largest.
type pinRecorder struct {
	mu    sync.Mutex
	until map[pcommon.TraceID]time.Time
	calls int
}

func (r *pinRecorder) pin(id pcommon.TraceID, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.until == nil {
		r.until = map[pcommon.TraceID]time.Time{}
	}
	if until.After(r.until[id]) {
		r.until[id] = until
	}
	r.calls++
}

func (r *pinRecorder) get() (map[pcommon.TraceID]time.Time, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[pcommon.TraceID]time.Time, len(r.until))
	for k, v := range r.until {
		out[k] = v
	}
	return out, r.calls
}

// TestPinEvidenceUntil: an active alert pins its traces until the
// notification's evaluation time + 30m + the evaluation interval (and
// again, later, at each resend); a resolved one until its end + 30m; an
// alert without evidence pins nothing; no Pin, no pinning.
func TestPinEvidenceUntil(t *testing.T) {
	cfg := testConfig()
	cfg.EvaluationInterval = 15 * time.Second
	var rec pinRecorder
	e := newEngine(cfg, Settings{Pin: rec.pin})
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	active := &promrules.Alert{Labels: labels.FromStrings("alertname", "A"), ActiveAt: t0, LastSentAt: t0}
	resolved := &promrules.Alert{Labels: labels.FromStrings("alertname", "B"), ActiveAt: t0, LastSentAt: t0, ResolvedAt: t0.Add(-time.Minute)}
	silent := &promrules.Alert{Labels: labels.FromStrings("alertname", "C"), ActiveAt: t0, LastSentAt: t0}
	evs := []*evidence{
		{traceIDs: []pcommon.TraceID{traceID(1), traceID(2)}},
		{traceIDs: []pcommon.TraceID{traceID(3)}},
		nil,
	}
	e.pinEvidence([]*promrules.Alert{active, resolved, silent}, evs)
	got, calls := rec.get()
	assert.Equal(t, 3, calls)
	assert.Equal(t, map[pcommon.TraceID]time.Time{
		traceID(1): t0.Add(30*time.Minute + 15*time.Second),
		traceID(2): t0.Add(30*time.Minute + 15*time.Second),
		traceID(3): t0.Add(29 * time.Minute),
	}, got)

	// A resend a minute later moves the active alert's pins on.
	active.LastSentAt = t0.Add(time.Minute)
	e.pinEvidence([]*promrules.Alert{active}, evs[:1])
	got, _ = rec.get()
	assert.Equal(t, t0.Add(31*time.Minute+15*time.Second), got[traceID(1)])

	newEngine(cfg, Settings{}).pinEvidence([]*promrules.Alert{active}, evs[:1]) // no Pin: nothing to call
}

// TestFiringAlertPinsEvidence: through the running engine, the traces a
// firing alert cites as evidence are pinned (Settings.Pin), and pinned
// again at each resend.
func TestFiringAlertPinsEvidence(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pods.yaml", podAlertRules)
	st := newTestStore(t, "")
	now := time.Now()
	for i := byte(1); i <= 3; i++ {
		appendFailingSpan(t, st, "reviews", "bookinfo", "reviews-v2", traceID(i), now.Add(time.Duration(i)*time.Second-time.Minute), "upstream reset")
	}
	cfg := testConfig()
	cfg.RuleFiles = []string{dir}
	cfg.EvaluationInterval = 100 * time.Millisecond
	cfg.Evidence.Timeout = 5 * time.Second
	var rec pinRecorder
	startEngine(t, st, cfg, Settings{Pin: rec.pin}, nil)

	require.Eventually(t, func() bool { got, _ := rec.get(); return len(got) == 3 }, 20*time.Second, 20*time.Millisecond)
	got, calls := rec.get()
	for i := byte(1); i <= 3; i++ {
		until := got[traceID(i)]
		assert.WithinDuration(t, time.Now().Add(30*time.Minute+cfg.EvaluationInterval), until, 10*time.Second, "trace %d", i)
	}
	// Prometheus resends a firing alert at most once a minute (its
	// resend delay); the first send is enough here: each send pins all.
	assert.GreaterOrEqual(t, calls, 3)
}
