package rules

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promrules "github.com/prometheus/prometheus/rules"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const highErrorRateRules = `groups:
- name: errors
  interval: 15s
  rules:
  - alert: HighErrorRate
    expr: rate(http_requests_total{status=~"5.."}[5m]) > 0.01
    for: 2m
    keep_firing_for: 30s
    labels:
      severity: page
    annotations:
      summary: '{{ $labels.k8s_pod_name }} returns 5xx at {{ printf "%.4f" $value }}/s'
  - record: job:http_errors:rate5m
    expr: sum by (job) (rate(http_requests_total{status=~"5.."}[5m]))
`

func TestEvaluationStateMachine(t *testing.T) {
	st := newTestStore(t, "")
	dir := t.TempDir()
	f := writeFile(t, dir, "errors.yaml", highErrorRateRules)
	e, groups, snk := newEvalEngine(t, st, func(c *Config) {
		c.Evidence.Timeout = 10 * time.Second // this test checks content, not the budget
		c.Evidence.LinkTemplate = "http://jaeger.test/trace/{{ .TraceID }}"
	}, f)
	require.Len(t, groups, 1)
	g := groups[0]

	base := time.Now().Add(-22 * time.Minute).Truncate(time.Minute)
	series := labels.FromStrings("__name__", "http_requests_total", "job", "bookinfo/reviews", "status", "500",
		"k8s_namespace_name", "bookinfo", "k8s_pod_name", "reviews-v2")
	exemplarAt := map[int64]string{} // ms → trace ID
	v, n := 0.0, byte(0)
	for ts := base; !ts.After(base.Add(21 * time.Minute)); ts = ts.Add(15 * time.Second) {
		tid := ""
		if d := ts.Sub(base); d > 3*time.Minute && d <= 9*time.Minute {
			v++
			n++
			tid = traceID(n).String()
			exemplarAt[ts.UnixMilli()] = tid
		}
		appendSample(t, st, series, ts, v, tid)
	}

	// The condition, evaluated independently by the engine.
	cond := func(ts time.Time) bool {
		q, err := e.engine.NewInstantQuery(t.Context(), st.Queryable(), nil, `rate(http_requests_total{status=~"5.."}[5m]) > 0.01`, ts)
		require.NoError(t, err)
		defer q.Close()
		r := q.Exec(t.Context())
		require.NoError(t, r.Err)
		return len(r.Value.(promql.Vector)) == 1
	}

	var firstTrue, firstFalseAfter time.Time
	type obs struct {
		ts    time.Time
		state string
	}
	var states []obs
	i := 0
	for ts := base.Add(time.Minute); !ts.After(base.Add(20 * time.Minute)); ts = ts.Add(15 * time.Second) {
		c := cond(ts)
		if c && firstTrue.IsZero() {
			firstTrue = ts
		}
		if !c && !firstTrue.IsZero() && firstFalseAfter.IsZero() {
			firstFalseAfter = ts
		}
		snk.setNow(ts)
		evalAsRun(g, i, ts)
		i++
		state := "inactive"
		if as := g.AlertingRules()[0].ActiveAlerts(); len(as) > 0 {
			require.Len(t, as, 1)
			state = as[0].State.String()
		}
		states = append(states, obs{ts, state})
	}
	require.False(t, firstTrue.IsZero(), "the burst must make the condition true")
	require.False(t, firstFalseAfter.IsZero(), "the condition must end after the burst")

	fireAt := firstTrue.Add(2 * time.Minute)
	resolveAt := firstFalseAfter.Add(30 * time.Second) // keep_firing_for
	for _, o := range states {
		want := "inactive"
		switch {
		case !o.ts.Before(firstTrue) && o.ts.Before(fireAt):
			want = "pending"
		case !o.ts.Before(fireAt) && o.ts.Before(resolveAt):
			want = "firing"
		}
		assert.Equal(t, want, o.state, "state at +%s", o.ts.Sub(base))
	}

	// Notifications: first at fireAt, resent every resend_delay (1m),
	// resolved once at resolveAt.
	sends := snk.take()
	var firingAt []time.Time
	var resolved int
	for _, s := range sends {
		require.Len(t, s.alerts, 1)
		a := s.alerts[0]
		assert.Equal(t, "HighErrorRate", a.Labels.Get("alertname"))
		assert.Equal(t, "page", a.Labels.Get("severity"))
		assert.Equal(t, "reviews-v2", a.Labels.Get("k8s_pod_name"))
		assert.True(t, a.StartsAt.Equal(fireAt), "startsAt %s, want %s", a.StartsAt, fireAt)
		assert.Regexp(t, `^reviews-v2 returns 5xx at 0\.\d{4}/s$`, a.Annotations.Get("summary"))
		if !a.EndsAt.After(s.at) {
			assert.True(t, a.EndsAt.Equal(resolveAt), "endsAt of a resolved alert: +%s", a.EndsAt.Sub(base))
			// Resolved: resent (with the evidence it fired with) like a
			// firing alert, as Prometheus does for 15 minutes.
			resolved++
			assert.NotEmpty(t, a.Annotations.Get(annTraceIDs))
			continue
		}
		require.Zero(t, resolved, "no firing notification after the resolved one")
		assert.True(t, a.EndsAt.Equal(s.at.Add(4*time.Minute)), "endsAt = ts + 4·max(interval, resend_delay)")
		firingAt = append(firingAt, s.at)
	}
	// After a send, the next waits until resend_delay (1m) has passed,
	// at the first evaluation strictly after it: every 75s here.
	assert.Equal(t, 6, resolved, "resolved sends at +13m45s … +20m")
	require.NotEmpty(t, firingAt)
	for i, ts := range firingAt {
		assert.True(t, ts.Equal(fireAt.Add(time.Duration(i)*75*time.Second)), "send %d at +%s", i, ts.Sub(base))
	}
	assert.True(t, firingAt[len(firingAt)-1].Add(75*time.Second).After(resolveAt), "no firing send missed")

	// Evidence on the first firing notification: the three newest
	// exemplar trace IDs of the series up to the firing time.
	first := sends[0].alerts[0]
	var want []string
	for ts := fireAt; len(want) < 3; ts = ts.Add(-15 * time.Second) {
		if id, ok := exemplarAt[ts.UnixMilli()]; ok {
			want = append(want, id)
		}
	}
	assert.Equal(t, strings.Join(want, ","), first.Annotations.Get(annTraceIDs))
	assert.Equal(t, "exemplars", first.Annotations.Get(annSource))
	assert.Equal(t, "http://jaeger.test/trace/"+want[0], strings.Split(first.Annotations.Get(annLinks), "\n")[0])

	// ALERTS and ALERTS_FOR_STATE series and the recording rule were
	// written to the store.
	instant := func(q string, ts time.Time) promql.Vector {
		qq, err := e.engine.NewInstantQuery(t.Context(), st.Queryable(), nil, q, ts)
		require.NoError(t, err)
		defer qq.Close()
		r := qq.Exec(t.Context())
		require.NoError(t, r.Err)
		return r.Value.(promql.Vector)
	}
	pend := instant(`ALERTS{alertname="HighErrorRate",alertstate="pending"}`, firstTrue)
	require.Len(t, pend, 1)
	fire := instant(`ALERTS{alertname="HighErrorRate",alertstate="firing"}`, fireAt)
	require.Len(t, fire, 1)
	fs := instant(`ALERTS_FOR_STATE{alertname="HighErrorRate"}`, fireAt)
	require.Len(t, fs, 1)
	assert.Equal(t, float64(firstTrue.Unix()), fs[0].F)
	// job:http_errors:rate5m (sum by job) is a cluster rule: the node
	// records its partial, this node's share, and not the rule itself.
	require.Empty(t, instant(`job:http_errors:rate5m`, base.Add(6*time.Minute)))
	rec := instant(`{__name__=~"weft:partial:.+",job="bookinfo/reviews"}`, base.Add(6*time.Minute))
	require.Len(t, rec, 1)
	direct := instant(`sum by (job) (rate(http_requests_total{status=~"5.."}[5m]))`, base.Add(6*time.Minute))
	require.Len(t, direct, 1)
	assert.InDelta(t, direct[0].F, rec[0].F, 1e-12)
}

// evalAsRun evaluates a group at ts the way its run loop does: the for
// state is restored after the second evaluation.
func evalAsRun(g *promrules.Group, i int, ts time.Time) {
	g.Eval(context.Background(), ts)
	if i == 1 {
		g.RestoreForState(ts)
	}
}

// TestStoreEngine: rules evaluate on the store's PromQL engine, the one
// weft_query serves from: weft_store's query::max_samples bounds a rule,
// and a subquery without a step takes the engine's 1m default (the rules
// engine's own engine had no default and could not run one).
func TestStoreEngine(t *testing.T) {
	st := weftstoretest.Start(t, func(c *weftstoreextension.Config) { c.Query.MaxSamples = 100 })
	f := writeFile(t, t.TempDir(), "engine.yaml", `groups:
- name: engine
  interval: 15s
  rules:
  - record: up:max_over_time10m
    expr: max_over_time(up[10m:])
  - record: up:count_over_time10m
    expr: count_over_time(up[10m])
`)
	e, groups, _ := newEvalEngine(t, st, nil, f)
	assert.Same(t, st.Engine(), e.engine, "the store's engine, not one of its own")
	require.Len(t, groups, 1)

	base := time.Now().Add(-12 * time.Minute).Truncate(time.Minute)
	up := labels.FromStrings("__name__", "up", "job", "a")
	for i := range 10*12 + 1 { // 10 minutes at 5 s: 121 samples
		appendSample(t, st, up, base.Add(time.Duration(i)*5*time.Second), 1, "")
	}
	groups[0].Eval(t.Context(), base.Add(10*time.Minute))
	rs := groups[0].Rules()
	require.Len(t, rs, 2)
	require.NoError(t, rs[0].LastError(), "subquery without a step")
	assert.Equal(t, promrules.HealthGood, rs[0].Health())
	require.ErrorContains(t, rs[1].LastError(), "query processing would load too many samples into memory",
		"121 samples over query::max_samples (100)")
}
