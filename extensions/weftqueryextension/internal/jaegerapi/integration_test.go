//go:build integration

package jaegerapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/querytest"
	"github.com/weftobs/weft/internal/backends"
)

// TestJaegerAgainstJaeger sends the fixture's traces to a real Jaeger over
// OTLP/HTTP and to weft's store, then requires the same JSON structure and
// the same spans from both query APIs (order of spans, tags and processes
// ignored; process IDs compared through the processes they name).
func TestJaegerAgainstJaeger(t *testing.T) {
	bin, err := backends.FindJaeger()
	require.NoError(t, err, "install Jaeger v2 (`make tools`) or set WEFT_JAEGER")
	j, err := backends.StartJaeger(t.Context(), bin, t.TempDir(), testLog{t})
	require.NoError(t, err)
	t.Cleanup(j.Stop)

	f := newFixture(t)
	body, err := ptraceotlp.NewExportRequestFromTraces(querytest.Traces(f.t0)).MarshalProto()
	require.NoError(t, err)
	resp, err := http.Post("http://"+j.OTLPHTTP+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	for _, id := range []string{querytest.CheckoutTraceID.String(), querytest.ReviewsTraceID.String()} {
		require.Eventually(t, func() bool {
			code, r := jaegerGet(t, j.QueryURL()+"/api/traces/"+id)
			var tr []Trace
			return code == 200 && json.Unmarshal(r.Data, &tr) == nil && len(tr) == 1 && len(tr[0].Spans) == 2
		}, 30*time.Second, 100*time.Millisecond, "Jaeger never returned trace %s", id)
	}

	us := func(d time.Duration) string { return fmt.Sprint(f.t0.Add(d).UnixMicro()) }
	window := url.Values{"start": {us(0)}, "end": {us(5 * time.Minute)}}
	paths := []string{
		"/api/services/checkout/operations", "/api/services/payment/operations", "/api/services/reviews/operations",
		"/api/traces/" + querytest.CheckoutTraceID.String(), "/api/traces/" + querytest.ReviewsTraceID.String(),
		"/api/traces?service=checkout&" + window.Encode(),
		"/api/traces?service=payment&operation=charge+card&" + window.Encode(),
		"/api/traces?service=reviews&" + window.Encode(),
		"/api/traces?service=checkout&minDuration=41ms&" + window.Encode(),
		"/api/traces?service=checkout&tags=" + url.QueryEscape(`{"http.route":"/checkout"}`) + "&" + window.Encode(),
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			jc, jb := get(t, j.QueryURL()+p)
			wc, wb := get(t, f.url+p)
			require.Equal(t, jc, wc, "status; jaeger %s\nweft %s", jb, wb)
			want, got := normalizeJaeger(t, jb), normalizeJaeger(t, wb)
			assert.Equal(t, want, got, "jaeger %s\nweft   %s", jb, wb)
		})
	}

	// Services: Jaeger may list services of its own; weft's must all be there.
	_, jb := get(t, j.QueryURL()+"/api/services")
	_, wb := get(t, f.url+"/api/services")
	var js, ws struct{ Data []string }
	require.NoError(t, json.Unmarshal(jb, &js))
	require.NoError(t, json.Unmarshal(wb, &ws))
	assert.Subset(t, js.Data, ws.Data)
	assert.Equal(t, []string{"checkout", "payment", "reviews"}, ws.Data)

	// Not found: both 404 with an error.
	jc, _ := get(t, j.QueryURL()+"/api/traces/00000000000000000000000000000bad")
	wc, _ := get(t, f.url+"/api/traces/00000000000000000000000000000bad")
	assert.Equal(t, jc, wc)
}

// normalizeJaeger decodes an envelope into a comparable form: errors
// dropped to their count, traces keyed by ID with spans keyed by span ID,
// each span carrying its process instead of a process ID, and every list
// of tags, fields and references sorted.
func normalizeJaeger(t *testing.T, body []byte) any {
	t.Helper()
	var env struct {
		Data   json.RawMessage `json:"data"`
		Total  int             `json:"total"`
		Errors []Error         `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(body, &env), "%s", body)
	out := map[string]any{"errors": len(env.Errors)}
	var names []string
	if json.Unmarshal(env.Data, &names) == nil {
		slices.Sort(names)
		out["data"], out["total"] = names, env.Total
		return out
	}
	var traces []map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(env.Data, &traces), "%s", body)
	byID := map[string]any{}
	for _, tr := range traces {
		var id string
		var spans []map[string]json.RawMessage
		var procs map[string]Process
		require.NoError(t, json.Unmarshal(tr["traceID"], &id))
		require.NoError(t, json.Unmarshal(tr["spans"], &spans))
		require.NoError(t, json.Unmarshal(tr["processes"], &procs))
		keys := []string{}
		for k := range tr {
			if k != "warnings" {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		ns := map[string]any{}
		for _, sp := range spans {
			var s Span
			require.NoError(t, json.Unmarshal(mustJSON(t, sp), &s))
			fields := []string{}
			for k := range sp {
				if k != "warnings" {
					fields = append(fields, k)
				}
			}
			slices.Sort(fields)
			p := procs[s.ProcessID]
			sortKVs(p.Tags)
			sortKVs(s.Tags)
			for _, l := range s.Logs {
				sortKVs(l.Fields)
			}
			slices.SortFunc(s.References, func(a, b Ref) int { return strings.Compare(a.RefType+a.SpanID, b.RefType+b.SpanID) })
			s.ProcessID, s.Warnings = "", nil
			ns[s.SpanID] = map[string]any{"fields": fields, "span": s, "process": p}
		}
		byID[id] = map[string]any{"keys": keys, "spans": ns, "processes": len(procs)}
	}
	out["data"] = byID
	return out
}

func sortKVs(kvs []KV) {
	slices.SortFunc(kvs, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// testLog sends a program's output to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}
