package storeapi

import (
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/thanos/pkg/exemplars/exemplarspb"
	"github.com/thanos-io/thanos/pkg/info/infopb"
	"github.com/thanos-io/thanos/pkg/rules/rulespb"
	"github.com/thanos-io/thanos/pkg/store/labelpb"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftobs/weft/internal/rulesapi"
)

func zmap(ls []labelpb.ZLabel) map[string]string {
	m := map[string]string{}
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

func TestInfo(t *testing.T) {
	st := startStore(t, nil)
	_, conn := serve(t, st, nil)
	c := infopb.NewInfoClient(conn)

	// Empty store: from now on, open-ended (what it takes next is selected
	// before the next Info).
	before := time.Now().UnixMilli()
	res, err := c.Info(t.Context(), &infopb.InfoRequest{})
	require.NoError(t, err)
	require.GreaterOrEqual(t, res.Store.MinTime, before)
	require.LessOrEqual(t, res.Store.MinTime, time.Now().UnixMilli())
	require.Equal(t, int64(math.MaxInt64), res.Store.MaxTime)

	t0 := time.Now().Add(-26 * time.Minute).UnixMilli()
	write(t, st, testSeries(t0), nil)
	res, err = c.Info(t.Context(), &infopb.InfoRequest{})
	require.NoError(t, err)
	require.Equal(t, "sidecar", res.ComponentType)
	require.Len(t, res.LabelSets, 1)
	require.Equal(t, testExt, zmap(res.LabelSets[0].Labels))
	// The head's min time: its oldest sample or the retention cut (the
	// store cuts at start, before the first sample).
	require.LessOrEqual(t, res.Store.MinTime, t0)
	require.GreaterOrEqual(t, res.Store.MinTime, time.Now().Add(-31*time.Minute).UnixMilli())
	// Open-ended, as a sidecar's live Prometheus: the store's newest sample
	// would be stale by the time Thanos Query uses the answer.
	require.Equal(t, int64(math.MaxInt64), res.Store.MaxTime)
	require.True(t, res.Store.SupportsWithoutReplicaLabels)
	require.Len(t, res.Store.TsdbInfos, 1)
	require.Equal(t, testExt, zmap(res.Store.TsdbInfos[0].Labels.Labels))
	require.NotNil(t, res.Rules)
	require.NotNil(t, res.Exemplars)
	require.Equal(t, res.Store.MinTime, res.Exemplars.MinTime)
}

func TestLabelNamesValues(t *testing.T) {
	st := startStore(t, nil)
	t0 := time.Now().Add(-26 * time.Minute).UnixMilli()
	write(t, st, testSeries(t0), nil)
	_, conn := serve(t, st, nil)
	c := storepb.NewStoreClient(conn)
	eq := func(n, v string) storepb.LabelMatcher {
		return storepb.LabelMatcher{Type: storepb.LabelMatcher_EQ, Name: n, Value: v}
	}
	end := time.Now().UnixMilli()

	names, err := c.LabelNames(t.Context(), &storepb.LabelNamesRequest{Start: t0, End: end, Matchers: []storepb.LabelMatcher{eq("__name__", "req")}})
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "cluster", "job", "le", "node"}, names.Names)

	names, err = c.LabelNames(t.Context(), &storepb.LabelNamesRequest{Start: t0, End: end, WithoutReplicaLabels: []string{"node"},
		Matchers: []storepb.LabelMatcher{eq("__name__", "req"), eq("node", "n1")}})
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "cluster", "job", "le"}, names.Names)

	names, err = c.LabelNames(t.Context(), &storepb.LabelNamesRequest{Start: t0, End: end, Matchers: []storepb.LabelMatcher{eq("node", "n2")}})
	require.NoError(t, err)
	require.Empty(t, names.Names)

	vals, err := c.LabelValues(t.Context(), &storepb.LabelValuesRequest{Label: "job", Start: t0, End: end, Matchers: []storepb.LabelMatcher{eq("__name__", "up")}})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, vals.Values)

	vals, err = c.LabelValues(t.Context(), &storepb.LabelValuesRequest{Label: "node", Start: t0, End: end})
	require.NoError(t, err)
	require.Equal(t, []string{"n1"}, vals.Values)

	vals, err = c.LabelValues(t.Context(), &storepb.LabelValuesRequest{Label: "node", Start: t0, End: end, Matchers: []storepb.LabelMatcher{eq("__name__", "nothing")}})
	require.NoError(t, err)
	require.Empty(t, vals.Values)

	vals, err = c.LabelValues(t.Context(), &storepb.LabelValuesRequest{Label: "job", Start: t0, End: end, Matchers: []storepb.LabelMatcher{eq("cluster", "other")}})
	require.NoError(t, err)
	require.Empty(t, vals.Values)

	// Long before the head's range: nothing.
	vals, err = c.LabelValues(t.Context(), &storepb.LabelValuesRequest{Label: "job", Start: 0, End: 1000})
	require.NoError(t, err)
	require.Empty(t, vals.Values)

	_, err = c.LabelValues(t.Context(), &storepb.LabelValuesRequest{Start: t0, End: end})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

// fakeRules is a rules engine with one group of an alerting and a
// recording rule.
type fakeRules struct{}

func (fakeRules) RuleGroups() []rulesapi.Group {
	at := time.Unix(1700000000, 0).UTC()
	alert := rulesapi.Alert{Labels: map[string]string{"alertname": "HighErrorRate", "service": "reviews"}, State: "firing", ActiveAt: at, Value: 0.5}
	return []rulesapi.Group{{
		Name: "g", File: "f.yaml", Interval: time.Minute, LastEvaluation: at, EvaluationTime: time.Second,
		Rules: []rulesapi.Rule{
			{Type: "alerting", Name: "HighErrorRate", Query: "x > 0", For: time.Minute, Labels: map[string]string{"severity": "page"},
				Health: "ok", State: "firing", Alerts: []rulesapi.Alert{alert}, LastEvaluation: at},
			{Type: "recording", Name: "job:x:rate5m", Query: "rate(x[5m])", Labels: map[string]string{"node": "overridden"}, Health: "ok", LastEvaluation: at},
			{Type: "recording", Name: "service:x:rate5m", Query: "sum by (service) (rate(x[5m]))", Health: "unknown", Scope: rulesapi.ScopeCluster},
			{Type: "recording", Name: "service:y:rate5m", Query: "sum by (service) (rate(y[5m]))", Health: "ok", Scope: rulesapi.ScopeCluster, LastEvaluation: at},
		},
	}}
}

func (fakeRules) Alerts() []rulesapi.Alert { return nil }

func rulesOf(t *testing.T, c rulespb.RulesClient, req *rulespb.RulesRequest) []*rulespb.RuleGroup {
	t.Helper()
	stream, err := c.Rules(t.Context(), req)
	require.NoError(t, err)
	var out []*rulespb.RuleGroup
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, r.GetGroup())
	}
}

func TestRules(t *testing.T) {
	st := startStore(t, nil)
	_, conn := serve(t, st, func(o *Options) { o.Rules = fakeRules{} })
	c := rulespb.NewRulesClient(conn)

	groups := rulesOf(t, c, &rulespb.RulesRequest{})
	require.Len(t, groups, 1)
	g := groups[0]
	require.Equal(t, "g", g.Name)
	require.Equal(t, 60.0, g.Interval)
	require.Len(t, g.Rules, 3, "the cluster rule evaluated elsewhere is left out")
	require.Equal(t, "service:y:rate5m", g.Rules[2].GetRecording().Name)
	a := g.Rules[0].GetAlert()
	require.NotNil(t, a)
	require.Equal(t, map[string]string{"severity": "page", "cluster": "c1", "node": "n1"}, zmap(a.Labels.Labels))
	require.Equal(t, rulespb.AlertState_FIRING, a.State)
	require.Len(t, a.Alerts, 1)
	require.Equal(t, map[string]string{"alertname": "HighErrorRate", "service": "reviews", "cluster": "c1", "node": "n1"}, zmap(a.Alerts[0].Labels.Labels))
	require.Equal(t, "5e-01", a.Alerts[0].Value)
	rec := g.Rules[1].GetRecording()
	require.NotNil(t, rec)
	require.Equal(t, map[string]string{"cluster": "c1", "node": "n1"}, zmap(rec.Labels.Labels))

	groups = rulesOf(t, c, &rulespb.RulesRequest{Type: rulespb.RulesRequest_RECORD})
	require.Len(t, groups, 1)
	require.Len(t, groups[0].Rules, 2)
	require.NotNil(t, groups[0].Rules[0].GetRecording())

	groups = rulesOf(t, c, &rulespb.RulesRequest{Type: rulespb.RulesRequest_ALERT, MatcherString: []string{`{severity="page"}`}})
	require.Len(t, groups, 1)
	require.Len(t, groups[0].Rules, 1)
	require.NotNil(t, groups[0].Rules[0].GetAlert())

	require.Empty(t, rulesOf(t, c, &rulespb.RulesRequest{RuleGroup: []string{"other"}}))
}

func TestExemplars(t *testing.T) {
	st := startStore(t, nil)
	t0 := time.Now().Add(-26 * time.Minute).UnixMilli()
	series := map[string][]sample{`{__name__="req", job="a", le="1"}`: floats(t0, 10, 1), `{__name__="other"}`: floats(t0, 10, 1)}
	exs := map[string][]exemplar.Exemplar{`{__name__="req", job="a", le="1"}`: {
		{Labels: labels.FromStrings("trace_id", "0af7651916cd43dd8448eb211c80319c"), Value: 0.3, Ts: t0 + 5_000, HasTs: true},
	}}
	write(t, st, series, exs)
	_, conn := serve(t, st, nil)
	c := exemplarspb.NewExemplarsClient(conn)
	read := func(q string) []*exemplarspb.ExemplarData {
		stream, err := c.Exemplars(t.Context(), &exemplarspb.ExemplarsRequest{Query: q, Start: t0, End: time.Now().UnixMilli()})
		require.NoError(t, err)
		var out []*exemplarspb.ExemplarData
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return out
			}
			require.NoError(t, err)
			out = append(out, r.GetData())
		}
	}
	got := read(`sum(rate(req{job="a"}[5m]))`)
	require.Len(t, got, 1)
	require.Equal(t, map[string]string{"__name__": "req", "job": "a", "le": "1", "cluster": "c1", "node": "n1"}, zmap(got[0].SeriesLabels.Labels))
	require.Len(t, got[0].Exemplars, 1)
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", zmap(got[0].Exemplars[0].Labels.Labels)["trace_id"])
	require.Equal(t, t0+5_000, got[0].Exemplars[0].Ts)

	require.Len(t, read(`req{node="n1"}`), 1)
	require.Empty(t, read(`req{node="n2"}`))
	require.Empty(t, read(`other`))

	stream, err := c.Exemplars(t.Context(), &exemplarspb.ExemplarsRequest{Query: "rate(", Start: 0, End: 1})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}
