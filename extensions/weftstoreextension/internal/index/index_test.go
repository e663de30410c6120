package index

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
)

func TestSpanIndex(t *testing.T) {
	x := NewSpans(defaultMaxBytes)
	start := time.Now().Add(-time.Minute)
	reqs, td, _, _ := simtest.Simulate(simtest.NewRand(3), 100, start)
	x.Append(td)
	require.Equal(t, int64(200), x.Stats().Records)

	assert.Equal(t, []string{"hello", "productpage", "ratings", "reviews"}, x.Services())
	assert.Equal(t, []string{"GET /reviews/{id}"}, x.Operations("reviews"))
	assert.Empty(t, x.Operations("nope"))

	// Trace returns both spans with their resource.
	r := reqs[7]
	spans, err := Trace(x, r.TraceID, same)
	require.NoError(t, err)
	require.Len(t, spans, 2)
	for _, sp := range spans {
		assert.Equal(t, r.TraceID, sp.TraceID)
		assert.Equal(t, r.Start.UnixNano(), sp.Start, "start")
		assert.Equal(t, r.End.UnixNano(), sp.End, "end")
		rs := sp.Data.ResourceSpans().At(0)
		pod, _ := rs.Resource().Attributes().Get("k8s.pod.name")
		assert.Equal(t, sp.Pod.Name, pod.Str())
		assert.Equal(t, sp.SpanID, rs.ScopeSpans().At(0).Spans().At(0).SpanID())
	}
	assert.ElementsMatch(t, []pcommon.SpanID{r.ClientSpan, r.ServerSpan}, []pcommon.SpanID{spans[0].SpanID, spans[1].SpanID})

	// Failing traces: every fifth request, newest first, by service and pod.
	byEnd := slices.Clone(reqs)
	slices.SortFunc(byEnd, func(a, b simtest.Request) int { return b.End.Compare(a.End) })
	var failing []pcommon.TraceID
	failingByPod := make(map[Pod][]pcommon.TraceID)
	for _, r := range byEnd {
		if r.Status >= 500 {
			failing = append(failing, r.TraceID)
			failingByPod[key(r.Server)] = append(failingByPod[key(r.Server)], r.TraceID)
		}
	}
	ids := func(fs []Span) []pcommon.TraceID {
		out := make([]pcommon.TraceID, len(fs))
		for i, f := range fs {
			out[i] = f.TraceID
		}
		return out
	}
	assert.Equal(t, failing[:20], ids(FailingTraces(x, TraceSelector{Service: "productpage", Limit: 0}, same)))
	assert.Equal(t, failing[:5], ids(FailingTraces(x, TraceSelector{Limit: 5}, same)))
	for pod, want := range failingByPod {
		got := FailingTraces(x, TraceSelector{Pod: pod, Limit: 100}, same)
		assert.Equal(t, want, ids(got), "%v", pod)
		for _, g := range got {
			assert.Equal(t, pod, g.Pod)
		}
	}
	// Window: failing spans that ended at or after mid.
	mid := reqs[50].End
	var after []pcommon.TraceID
	for _, r := range byEnd {
		if r.Status >= 500 && !r.End.Before(mid) {
			after = append(after, r.TraceID)
		}
	}
	require.NotEmpty(t, after)
	assert.Equal(t, after, ids(FailingTraces(x, TraceSelector{Start: mid, Limit: 100}, same)))
	assert.Empty(t, FailingTraces(x, TraceSelector{Service: "nope"}, same))

	tests := []struct {
		name string
		q    SpanQuery
		want func(simtest.Request) bool
	}{
		{"service", SpanQuery{Service: "ratings", Limit: 1000}, func(r simtest.Request) bool { return r.Server.App == "ratings" }},
		{"operation", SpanQuery{Service: "productpage", Operation: "GET /hello/{id}", Limit: 1000}, func(r simtest.Request) bool { return r.Server.App == "hello" }},
		{"tag", SpanQuery{Service: "reviews", Tags: map[string]string{"http.response.status_code": "503"}, Limit: 1000},
			func(r simtest.Request) bool { return r.Server.App == "reviews" && r.Status == 503 }},
		{"resource tag", SpanQuery{Tags: map[string]string{"k8s.pod.name": simtest.Pods[4].Name}, Limit: 1000},
			func(r simtest.Request) bool { return r.Server.Name == simtest.Pods[4].Name }},
		{"error tag", SpanQuery{Tags: map[string]string{"error": "true"}, Limit: 1000}, func(r simtest.Request) bool { return r.Status >= 500 }},
		{"min duration", SpanQuery{MinDuration: 30 * time.Millisecond, Limit: 1000}, func(r simtest.Request) bool { return r.End.Sub(r.Start) >= 30*time.Millisecond }},
		{"max duration", SpanQuery{MinDuration: 10 * time.Millisecond, MaxDuration: 20 * time.Millisecond, Limit: 1000},
			func(r simtest.Request) bool {
				d := r.End.Sub(r.Start)
				return d >= 10*time.Millisecond && d <= 20*time.Millisecond
			}},
		{"window", SpanQuery{Start: reqs[10].Start, End: reqs[19].Start, Limit: 1000}, func(r simtest.Request) bool {
			return !r.Start.Before(reqs[10].Start) && !r.Start.After(reqs[19].Start)
		}},
		{"limit", SpanQuery{Limit: 3}, func(r simtest.Request) bool { return r.Start.After(reqs[96].Start) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []pcommon.TraceID
			for i := len(reqs) - 1; i >= 0; i-- {
				if tt.want(reqs[i]) {
					want = append(want, reqs[i].TraceID)
				}
			}
			got, err := x.FindTraces(tt.q)
			require.NoError(t, err)
			require.NotEmpty(t, want)
			assert.Equal(t, want, got)
		})
	}
}

// TestSpanRoundTrip: a stored span comes back with its resource, scope,
// schema URLs, attributes, events, links and status intact, also across
// empty scopes and resources in the same batch.
func TestSpanRoundTrip(t *testing.T) {
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty() // a resource without scopes
	rs := td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	rs.Resource().Attributes().PutStr("service.name", "reviews")
	rs.Resource().Attributes().PutInt("process.pid", 7)
	rs.ScopeSpans().AppendEmpty() // an empty scope
	ss := rs.ScopeSpans().AppendEmpty()
	ss.SetSchemaUrl("https://opentelemetry.io/schemas/1.27.0")
	ss.Scope().SetName("io.opentelemetry.servlet")
	ss.Scope().SetVersion("2.1")
	ss.Scope().Attributes().PutBool("x", true)
	for i := range 3 {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{1, byte(i)})
		sp.SetSpanID(pcommon.SpanID{2, byte(i)})
		sp.SetName("GET /reviews/{id}")
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(100)
		sp.SetEndTimestamp(200)
		sp.Attributes().PutStr("url.path", "/reviews/0")
		sp.Attributes().PutEmptySlice("list").AppendEmpty().SetDouble(1.5)
		ev := sp.Events().AppendEmpty()
		ev.SetName("exception")
		ev.Attributes().PutStr("exception.type", "IllegalStateException")
		l := sp.Links().AppendEmpty()
		l.SetTraceID(pcommon.TraceID{9})
		l.SetSpanID(pcommon.SpanID{9})
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage("HTTP 503")
	}
	rs2 := td.ResourceSpans().AppendEmpty()
	rs2.Resource().Attributes().PutStr("service.name", "ratings")
	sp2 := rs2.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp2.SetTraceID(pcommon.TraceID{1, 0})
	sp2.SetSpanID(pcommon.SpanID{3})

	x := NewSpans(defaultMaxBytes)
	x.Append(td)
	require.Equal(t, int64(4), x.Stats().Records)
	require.Zero(t, x.Stats().Unencodable)

	var jm ptrace.JSONMarshaler
	want := func(rs ptrace.ResourceSpans, ss ptrace.ScopeSpans, sp ptrace.Span) string {
		one := ptrace.NewTraces()
		r := one.ResourceSpans().AppendEmpty()
		rs.Resource().CopyTo(r.Resource())
		r.SetSchemaUrl(rs.SchemaUrl())
		s := r.ScopeSpans().AppendEmpty()
		ss.Scope().CopyTo(s.Scope())
		s.SetSchemaUrl(ss.SchemaUrl())
		sp.CopyTo(s.Spans().AppendEmpty())
		b, err := jm.MarshalTraces(one)
		require.NoError(t, err)
		return string(b)
	}
	for i := range 3 {
		spans, err := Trace(x, pcommon.TraceID{1, byte(i)}, same)
		require.NoError(t, err)
		var got []string
		for _, s := range spans {
			b, err := jm.MarshalTraces(s.Data)
			require.NoError(t, err)
			got = append(got, string(b))
		}
		exp := []string{want(rs, ss, ss.Spans().At(i))}
		if i == 0 {
			exp = append(exp, want(rs2, rs2.ScopeSpans().At(0), sp2))
		}
		assert.ElementsMatch(t, exp, got)
	}
}

func TestLogIndex(t *testing.T) {
	x := NewLogs(defaultMaxBytes)
	start := time.Now().Add(-time.Minute)
	reqs, _, ld, _ := simtest.Simulate(simtest.NewRand(4), 100, start)
	x.Append(ld)
	require.Equal(t, int64(200), x.Stats().Records)

	r := reqs[42]
	recs, err := SearchLogs(x, LogQuery{TraceID: r.TraceID}, same)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Contains(t, recs[0].Body, "traceparent=00-"+r.TraceID.String())
	assert.Contains(t, recs[1].Body, `"trace_id":"`+r.TraceID.String())
	for _, rec := range recs {
		assert.Equal(t, key(r.Server), rec.Pod)
		assert.Equal(t, r.Server.Container, rec.Container)
		assert.Equal(t, r.Server.App, rec.Service)
		assert.Equal(t, r.ServerSpan, rec.SpanID)
		assert.Equal(t, rec.Body, rec.Data.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().Str())
	}

	// wantLogs lists the trace IDs of matching records, newest first: each
	// request wrote two records, at end and end+1µs.
	type rec struct {
		t  time.Time
		id pcommon.TraceID
	}
	var all []rec
	for _, r := range reqs {
		all = append(all, rec{r.End, r.TraceID}, rec{r.End.Add(time.Microsecond), r.TraceID})
	}
	slices.SortFunc(all, func(a, b rec) int { return b.t.Compare(a.t) })
	wantLogs := func(match func(simtest.Request) bool, limit int) []pcommon.TraceID {
		byID := make(map[pcommon.TraceID]simtest.Request, len(reqs))
		for _, r := range reqs {
			byID[r.TraceID] = r
		}
		var out []pcommon.TraceID
		for _, a := range all {
			if len(out) < limit && match(byID[a.id]) {
				out = append(out, a.id)
			}
		}
		return out
	}
	fn := simtest.Pods[4]
	tests := []struct {
		name  string
		q     LogQuery
		match func(simtest.Request) bool
	}{
		{"pod", LogQuery{Namespace: fn.NS, Pod: fn.Name, Limit: 1000}, func(r simtest.Request) bool { return r.Server.Name == fn.Name }},
		{"pod name only", LogQuery{Pod: fn.Name, Limit: 1000}, func(r simtest.Request) bool { return r.Server.Name == fn.Name }},
		{"namespace", LogQuery{Namespace: "bookinfo", Limit: 1000}, func(r simtest.Request) bool { return r.Server.NS == "bookinfo" }},
		{"container", LogQuery{Container: "user-container", Limit: 1000}, func(r simtest.Request) bool { return r.Server.Container == "user-container" }},
		{"service", LogQuery{Service: "ratings", Limit: 1000}, func(r simtest.Request) bool { return r.Server.App == "ratings" }},
		{"errors", LogQuery{MinSeverity: plog.SeverityNumberError, Limit: 1000}, func(r simtest.Request) bool { return r.Status >= 500 }},
		{"since", LogQuery{Since: reqs[90].End, Limit: 1000}, func(r simtest.Request) bool { return !r.End.Before(reqs[90].End) }},
		{"limit", LogQuery{Limit: 5}, func(simtest.Request) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.q.Limit
			got, err := SearchLogs(x, tt.q, same)
			require.NoError(t, err)
			gotIDs := make([]pcommon.TraceID, len(got))
			for i, g := range got {
				gotIDs[i] = g.TraceID
			}
			want := wantLogs(tt.match, limit)
			require.NotEmpty(t, want)
			assert.Equal(t, want, gotIDs)
		})
	}
}

func TestLogRoundTrip(t *testing.T) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	rl.Resource().Attributes().PutStr("k8s.pod.name", "reviews-v2-abc")
	rl.Resource().Attributes().PutStr("k8s.namespace.name", "bookinfo")
	rl.ScopeLogs().AppendEmpty()
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("container_logs")
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(123)
	lr.SetObservedTimestamp(456)
	lr.SetTraceID(pcommon.TraceID{7})
	lr.SetSpanID(pcommon.SpanID{8})
	lr.SetSeverityNumber(plog.SeverityNumberWarn)
	lr.SetSeverityText("WARN")
	lr.Body().SetEmptyMap().PutStr("msg", "slow")
	lr.Attributes().PutStr("log.iostream", "stdout")

	x := NewLogs(defaultMaxBytes)
	x.Append(ld)
	recs, err := SearchLogs(x, LogQuery{TraceID: pcommon.TraceID{7}}, same)
	require.NoError(t, err)
	require.Len(t, recs, 1)

	one := plog.NewLogs()
	r := one.ResourceLogs().AppendEmpty()
	rl.Resource().CopyTo(r.Resource())
	r.SetSchemaUrl(rl.SchemaUrl())
	s := r.ScopeLogs().AppendEmpty()
	sl.Scope().CopyTo(s.Scope())
	lr.CopyTo(s.LogRecords().AppendEmpty())
	var jm plog.JSONMarshaler
	wantJSON, err := jm.MarshalLogs(one)
	require.NoError(t, err)
	gotJSON, err := jm.MarshalLogs(recs[0].Data)
	require.NoError(t, err)
	assert.JSONEq(t, string(wantJSON), string(gotJSON))
	assert.Equal(t, `{"msg":"slow"}`, recs[0].Body)
}
