package weftstore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

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

	st := newTestStore(t, nil)
	require.NoError(t, st.AppendTraces(context.Background(), td))
	require.Equal(t, int64(4), st.Stats().Spans.Records)
	require.Zero(t, st.Stats().Spans.Unencodable)

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
		spans, err := st.Trace(pcommon.TraceID{1, byte(i)})
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

	st := newTestStore(t, nil)
	require.NoError(t, st.AppendLogs(context.Background(), ld))
	recs, err := st.SearchLogs(LogQuery{TraceID: pcommon.TraceID{7}})
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

func TestSplitOTLPMalformed(t *testing.T) {
	for _, in := range [][]byte{
		{0x0a, 0x05, 0x12},       // length past the end
		{0x0a, 0x02, 0x12, 0x09}, // nested length past the end
		{0xff},                   // truncated tag
	} {
		_, err := splitOTLP(in, nil)
		require.ErrorIs(t, err, errWire, "%x", in)
	}
}

// FuzzSplitOTLP: splitOTLP never panics, and on valid traces it finds every
// span.
func FuzzSplitOTLP(f *testing.F) {
	var m ptrace.ProtoMarshaler
	_, td, _, _ := simulate(newRand(1), 3, time.Unix(1700000000, 0))
	valid, err := m.MarshalTraces(td)
	require.NoError(f, err)
	f.Add(valid)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		ws, err := splitOTLP(in, nil)
		if err != nil {
			return
		}
		var u ptrace.ProtoUnmarshaler
		td, uerr := u.UnmarshalTraces(in)
		if uerr != nil {
			return
		}
		if td.SpanCount() > 0 {
			n := 0
			for _, w := range ws {
				n += len(w.recs)
			}
			assert.Equal(t, td.SpanCount(), n)
		}
	})
}
