package statuspage

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/weftapi"
	"github.com/weftobs/weft/extensions/weftstoreextension"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// A changed stylesheet would get another hash: the policy follows it.
func TestCSPHashFollowsStyle(t *testing.T) {
	assert.NotEqual(t, cspHash(pageStyle), cspHash(pageStyle+" "))
	assert.Contains(t, pageCSP, cspHash(pageStyle))
}

func TestTracePageEscapes(t *testing.T) {
	rec := httptest.NewRecorder()
	renderHTML(rec, traceTmpl, http.StatusOK, tracePage{
		TraceID: "x", Logs: []weftapi.LogJSON{{Time: time.Unix(0, 0), Body: `<script>alert(1)</script>`}},
		Spans: []waterfallSpan{{Operation: `<img src=x onerror=alert(1)>`}},
	})
	assert.NotContains(t, rec.Body.String(), "<script>alert")
	assert.NotContains(t, rec.Body.String(), "<img")
	assert.Contains(t, rec.Body.String(), "&lt;script&gt;")
}

// span is a stored span with a parent (zero: a root).
func span(id, parent byte, op string, start time.Time, d time.Duration) weftstoreextension.Span {
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetSpanID(pcommon.SpanID{id})
	if parent != 0 {
		sp.SetParentSpanID(pcommon.SpanID{parent})
	}
	return weftstoreextension.Span{SpanID: pcommon.SpanID{id}, Operation: op, Service: "checkout", Start: start, End: start.Add(d), Data: td}
}

func TestWaterfall(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	root := span(1, 0, "POST /checkout", t0, 40*time.Millisecond)
	child := span(2, 1, "charge card", t0.Add(10*time.Millisecond), 20*time.Millisecond)
	rows := waterfall([]weftstoreextension.Span{child, root})
	require.Len(t, rows, 2)
	assert.Equal(t, "POST /checkout", rows[0].Operation)
	assert.Equal(t, 1, rows[1].Depth)
	assert.Equal(t, 25.0, rows[1].Left)
	assert.Equal(t, 50.0, rows[1].Width)

	// Only the child: its parent is missing, so it becomes a root.
	rows = waterfall([]weftstoreextension.Span{child})
	require.Len(t, rows, 1)
	assert.Equal(t, "charge card", rows[0].Operation)
	assert.Equal(t, 0, rows[0].Depth)
	assert.Equal(t, 0.0, rows[0].Left)
	assert.Equal(t, 100.0, rows[0].Width)
	assert.Nil(t, waterfall([]weftstoreextension.Span(nil)))

	// A cycle of parent IDs: each span once.
	a, b := span(3, 4, "a", t0, time.Millisecond), span(4, 3, "b", t0, time.Millisecond)
	assert.Len(t, waterfall([]weftstoreextension.Span{a, b}), 2)
}

func TestRoundDuration(t *testing.T) {
	for in, want := range map[time.Duration]string{
		647662 * time.Nanosecond:     "648µs",
		9149634 * time.Nanosecond:    "9.15ms",
		12345678 * time.Nanosecond:   "12.3ms",
		345678901 * time.Nanosecond:  "346ms",
		2345678901 * time.Nanosecond: "2.35s",
		0:                            "0s",
	} {
		assert.Equal(t, want, roundDuration(in).String(), "%v", in)
	}
}
