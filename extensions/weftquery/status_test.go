package weftquery

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extensions/weftstore"
)

func TestStatusPage(t *testing.T) {
	f := newFixture(t, fixtureOpts{rules: newFakeRules})
	code, body := get(t, f.url+"/")
	require.Equal(t, http.StatusOK, code)
	page := string(body)
	for _, want := range []string{
		"<h1>weft node status</h1>",
		`<td>HighErrorRate</td><td class="firing">firing</td>`,
		`<a href="trace/` + checkoutTraceID.String() + `">`, // evidence link of the alert and failing trace
		"job:http_requests:rate1m", `class="err">err: boom`, // rules with health
		"<td>spans</td><td>4</td>", "<td>logs</td><td>4</td>", // store counters
		`<span class="lbl">checkout</span>`, // services
	} {
		assert.Contains(t, page, want)
	}
	assert.Equal(t, 2, strings.Count(page, `<a href="trace/`+checkoutTraceID.String()+`">`), "alert evidence + failing trace")

	code, body = get(t, f.url+"/trace/"+checkoutTraceID.String())
	require.Equal(t, http.StatusOK, code)
	page = string(body)
	assert.Equal(t, 2, strings.Count(page, `<tr class="span">`))
	root := strings.Index(page, "POST /checkout")
	child := strings.Index(page, "charge card")
	require.True(t, root > 0 && child > root, "root span row before its child")
	assert.Contains(t, page, `<td style="padding-left:24px">charge card`, "child indented one level")
	// 40 ms trace: the child starts at 10 ms and lasts 20 ms.
	assert.Contains(t, page, `<div class="bar error" style="left:0%;width:100%">`)
	assert.Contains(t, page, `<div class="bar error" style="left:25%;width:50%">`)
	assert.Equal(t, 3, strings.Count(page, `<tr class="log">`))
	assert.Less(t, strings.Index(page, "request received"), strings.Index(page, "responding 502"), "logs oldest first")
	assert.Contains(t, page, `<li class="firing">HighErrorRate (firing)</li>`)

	code, _ = get(t, f.url+"/trace/nothex")
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = get(t, f.url+"/trace/00000000000000000000000000000bad")
	assert.Equal(t, http.StatusNotFound, code)
}

func TestStatusPageWithoutRules(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	code, body := get(t, f.url+"/")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), "no rules engine")
}

func TestTracePageEscapes(t *testing.T) {
	rec := httptest.NewRecorder()
	renderHTML(rec, traceTmpl, http.StatusOK, tracePage{
		TraceID: "x", Logs: []logJSON{{Time: time.Unix(0, 0), Body: `<script>alert(1)</script>`}},
		Spans: []waterfallSpan{{Operation: `<img src=x onerror=alert(1)>`}},
	})
	assert.NotContains(t, rec.Body.String(), "<script>alert")
	assert.NotContains(t, rec.Body.String(), "<img")
	assert.Contains(t, rec.Body.String(), "&lt;script&gt;")
}

func TestWaterfallOrphan(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	spans, err := f.store.Trace(checkoutTraceID)
	require.NoError(t, err)
	// Only the child: its parent is missing, so it becomes a root.
	rows := waterfall(spans[1:])
	require.Len(t, rows, 1)
	assert.Equal(t, "charge card", rows[0].Operation)
	assert.Equal(t, 8, rows[0].Indent)
	assert.Equal(t, 0.0, rows[0].Left)
	assert.Equal(t, 100.0, rows[0].Width)
	assert.Nil(t, waterfall([]weftstore.Span(nil)))
}
