package statuspage

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/weftobs/weft/extensions/weftpinsextension"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/weftapi"
	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/internal/nodestatus"
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

// pinnedHealth is a store's accounting with a weft_pins extension.
type pinnedHealth struct {
	stats weftstoreextension.Stats
	pins  *weftpinsextension.Stats // nil: no weft_pins
}

func (h pinnedHealth) Stats() weftstoreextension.Stats              { return h.stats }
func (h pinnedHealth) OpenLosses() []weftstoreextension.StorageLoss { return nil }
func (h pinnedHealth) PinsStats() (weftpinsextension.Stats, bool) {
	if h.pins == nil {
		return weftpinsextension.Stats{}, false
	}
	return *h.pins, true
}

// noTraces is a store without spans.
type noTraces struct{}

func (noTraces) Services() []string { return nil }
func (noTraces) FailingTraces(weftstoreextension.TraceSelector) []weftstoreextension.FailingTrace {
	return nil
}
func (noTraces) Correlate(context.Context, pcommon.TraceID) (weftstoreextension.Correlation, error) {
	return weftstoreextension.Correlation{}, nil
}

func TestStatusPagePins(t *testing.T) {
	stats := weftstoreextension.Stats{
		Spans: weftstoreextension.IndexStats{PinnedRecords: 41, PinnedBytes: 23456, PinnedMaxBytes: 16 << 20, Pinned: 57, EvictedPinnedFull: 3, EvictedPinnedExpired: 13, PinsAfterEviction: 6},
		Logs:  weftstoreextension.IndexStats{PinnedRecords: 7, PinnedBytes: 3456, PinnedMaxBytes: 16 << 20, Pinned: 9, EvictedPinnedExpired: 2},
	}
	render := func(h Health) string {
		pg := &Pages{Health: h, Traces: noTraces{}, Board: &nodestatus.Board{}, Now: time.Now}
		rec := httptest.NewRecorder()
		pg.statusPage(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		require.Equal(t, http.StatusOK, rec.Code)
		return rec.Body.String()
	}
	body := render(pinnedHealth{stats: stats, pins: &weftpinsextension.Stats{
		Pins: 5, Local: map[string]int64{"alert": 2, "error_span": 3}, Received: 11, Expired: 4, Members: 3,
	}})
	assert.Contains(t, body, "<h2>Pins</h2>")
	assert.Contains(t, body, "pins held 5, set here 5, received from peers 11, expired 4, evicted 0, cluster members 3")
	assert.Contains(t, body, `<tr class="pinned"><td>spans</td><td>41</td><td>23456</td><td>16777216</td><td>57</td>`)
	assert.Contains(t, body, "<td class=\"err\">3</td><td>13</td>\n<td class=\"late err\">6</td></tr>")
	assert.Contains(t, body, `<tr class="pinned"><td>logs</td><td>7</td><td>3456</td><td>16777216</td><td>9</td>`)
	assert.Contains(t, body, "<td class=\"\">0</td><td>2</td>\n<td class=\"late\">0</td></tr>", "logs: no pin after eviction")

	body = render(pinnedHealth{stats: weftstoreextension.Stats{}})
	assert.Contains(t, body, "no weft_pins extension: pinned traces are not exempt from eviction")
}
