package rules

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const pendingRule = `groups:
- name: restart
  interval: 15s
  rules:
  - alert: ErrorsSeen
    expr: errors_total > 0
    for: 2m
`

// TestRestartKeepsPendingState: an alert pending for 90 s of a 2m 'for'
// is stopped with the agent; after the restart (WAL replay of the store)
// its pending time is restored from ALERTS_FOR_STATE, as Prometheus does.
func TestRestartKeepsPendingState(t *testing.T) {
	tests := []struct {
		name        string
		grace       time.Duration
		wantFiresAt time.Duration // after the first evaluation after the restart
	}{
		// 'for' ≥ for_grace_period: the 90 s count. The restore happens at
		// the second evaluation (+15s), the downtime is not counted, 30 s
		// remain: fires at +45s.
		{"restored", 10 * time.Second, 45 * time.Second},
		// 'for' < for_grace_period (Prometheus's default 10m): no restore,
		// the full 2m start again.
		{"grace period longer than for", 10 * time.Minute, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			rules := writeFile(t, t.TempDir(), "r.yaml", pendingRule)
			series := labels.FromStrings("__name__", "errors_total", "k8s_pod_name", "p")
			t0 := time.Now().Add(-20 * time.Minute).Truncate(time.Minute)
			restartAt := t0.Add(2 * time.Minute) // 30 s of downtime after the last evaluation

			// Before the restart: pending from t0 to t0+90s.
			st := newTestStore(t, dir)
			for ts := t0.Add(-time.Minute); !ts.After(t0.Add(10 * time.Minute)); ts = ts.Add(15 * time.Second) {
				v := 0.0
				if !ts.Before(t0) {
					v = 1
				}
				appendSample(t, st, series, ts, v, "")
			}
			mod := func(c *Config) { c.ForGracePeriod = tt.grace }
			_, groups, _ := newEvalEngine(t, st, mod, rules)
			g := groups[0]
			i := 0
			for ts := t0; !ts.After(t0.Add(90 * time.Second)); ts = ts.Add(15 * time.Second) {
				evalAsRun(g, i, ts)
				i++
				as := g.AlertingRules()[0].ActiveAlerts()
				require.Len(t, as, 1)
				require.Equal(t, "pending", as[0].State.String(), "at +%s", ts.Sub(t0))
			}
			require.NoError(t, st.Shutdown(context.Background()))

			// After the restart: a new store on the same WAL, a new rule
			// manager.
			st2 := newTestStore(t, dir)
			_, groups2, _ := newEvalEngine(t, st2, mod, rules)
			g2 := groups2[0]
			var firedAt time.Duration
			i = 0
			for ts := restartAt; !ts.After(restartAt.Add(3 * time.Minute)); ts = ts.Add(15 * time.Second) {
				evalAsRun(g2, i, ts)
				i++
				as := g2.AlertingRules()[0].ActiveAlerts()
				require.Len(t, as, 1)
				if as[0].State.String() == "firing" {
					firedAt = ts.Sub(restartAt)
					break
				}
			}
			assert.Equal(t, tt.wantFiresAt, firedAt)
		})
	}
}
