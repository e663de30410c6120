package jaegerapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/querytest"
)

// jaegerResp decodes the Jaeger envelope with traces.
type jaegerResp struct {
	Data   json.RawMessage `json:"data"`
	Total  int             `json:"total"`
	Limit  int             `json:"limit"`
	Offset int             `json:"offset"`
	Errors []Error         `json:"errors"`
}

func jaegerGet(t *testing.T, u string) (int, jaegerResp) {
	t.Helper()
	code, body := get(t, u)
	var r jaegerResp
	require.NoError(t, json.Unmarshal(body, &r), "body %s", body)
	return code, r
}

func TestJaegerServicesAndOperations(t *testing.T) {
	f := newFixture(t)
	code, r := jaegerGet(t, f.url+"/api/services")
	require.Equal(t, 200, code)
	assert.JSONEq(t, `["checkout","payment","reviews"]`, string(r.Data))
	assert.Equal(t, 3, r.Total)
	assert.Nil(t, r.Errors)

	code, r = jaegerGet(t, f.url+"/api/services/checkout/operations")
	require.Equal(t, 200, code)
	assert.JSONEq(t, `["POST /checkout"]`, string(r.Data))

	code, r = jaegerGet(t, f.url+"/api/services/nope/operations")
	require.Equal(t, 200, code)
	assert.JSONEq(t, `[]`, string(r.Data))
}

func TestJaegerTrace(t *testing.T) {
	f := newFixture(t)
	code, r := jaegerGet(t, f.url+"/api/traces/"+querytest.CheckoutTraceID.String())
	require.Equal(t, 200, code)
	var traces []Trace
	require.NoError(t, json.Unmarshal(r.Data, &traces))
	require.Len(t, traces, 1)
	tr := traces[0]
	assert.Equal(t, querytest.CheckoutTraceID.String(), tr.TraceID)
	require.Len(t, tr.Spans, 2)
	require.Len(t, tr.Processes, 2)

	byOp := map[string]Span{}
	for _, s := range tr.Spans {
		byOp[s.OperationName] = s
		assert.Equal(t, querytest.CheckoutTraceID.String(), s.TraceID)
	}
	root, child := byOp["POST /checkout"], byOp["charge card"]
	assert.Equal(t, querytest.RootSpanID.String(), root.SpanID)
	assert.Empty(t, root.References)
	assert.Equal(t, f.t0.Add(time.Minute).UnixMicro(), root.StartTime)
	assert.Equal(t, int64(40_000), root.Duration)
	assert.Equal(t, "checkout", tr.Processes[root.ProcessID].ServiceName)
	assert.Contains(t, tr.Processes[root.ProcessID].Tags, KV{Key: "k8s.pod.name", Type: "string", Value: "checkout-7d9c8b5f4-x2x9q"})
	for _, kv := range []KV{
		{Key: "http.route", Type: "string", Value: "/checkout"},
		{Key: "http.response.status_code", Type: "int64", Value: float64(502)},
		{Key: "cart.value", Type: "float64", Value: 42.5},
		{Key: "cart.gift", Type: "bool", Value: true},
		{Key: "span.kind", Type: "string", Value: "server"},
		{Key: "otel.status_code", Type: "string", Value: "ERROR"},
		{Key: "otel.status_description", Type: "string", Value: "payment failed"},
		{Key: "error", Type: "bool", Value: true},
		{Key: "otel.scope.name", Type: "string", Value: "weft/test"},
	} {
		assert.Contains(t, root.Tags, kv)
	}

	assert.Equal(t, "payment", tr.Processes[child.ProcessID].ServiceName)
	assert.NotEqual(t, root.ProcessID, child.ProcessID)
	require.Len(t, child.References, 1)
	assert.Equal(t, Ref{RefType: "CHILD_OF", TraceID: querytest.CheckoutTraceID.String(), SpanID: querytest.RootSpanID.String()}, child.References[0])
	assert.Contains(t, child.Tags, KV{Key: "span.kind", Type: "string", Value: "client"})
	require.Len(t, child.Logs, 1)
	assert.Equal(t, f.t0.Add(time.Minute+20*time.Millisecond).UnixMicro(), child.Logs[0].Timestamp)
	assert.Contains(t, child.Logs[0].Fields, KV{Key: "event", Type: "string", Value: "retry"})
	assert.Contains(t, child.Logs[0].Fields, KV{Key: "attempt", Type: "int64", Value: float64(2)})

	// Raw JSON carries Jaeger's field names, including null warnings.
	_, body := get(t, f.url+"/api/traces/"+querytest.CheckoutTraceID.String())
	var raw struct {
		Data []map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &raw))
	for _, k := range []string{"traceID", "spans", "processes", "warnings"} {
		assert.Contains(t, raw.Data[0], k)
	}
	span := raw.Data[0]["spans"].([]any)[0].(map[string]any)
	for _, k := range []string{"traceID", "spanID", "operationName", "references", "startTime", "duration", "tags", "logs", "processID", "warnings"} {
		assert.Contains(t, span, k)
	}
}

func TestJaegerTraceErrors(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		path string
		code int
	}{
		{"/api/traces/00000000000000000000000000000bad", 404},
		{"/api/traces/xyz", 400},
		{"/api/traces/" + "0123456789abcdef0123456789abcdef0", 400},
		{"/api/traces", 400}, // no service
		{"/api/traces?service=checkout&limit=x", 400},
		{"/api/traces?service=checkout&minDuration=fast", 400},
		{"/api/traces?service=checkout&start=yesterday", 400},
		{"/api/traces?service=checkout&start=20&end=10", 400},
		{"/api/traces?service=checkout&tags=notjson", 400},
		{"/api/traces?service=checkout&tag=novalue", 400},
		{"/api/traces?service=checkout&minDuration=2s&maxDuration=1s", 400},
		{"/api/traces?traceID=zz", 400},
	} {
		t.Run(tt.path, func(t *testing.T) {
			code, r := jaegerGet(t, f.url+tt.path)
			assert.Equal(t, tt.code, code)
			require.Len(t, r.Errors, 1)
			assert.Equal(t, tt.code, r.Errors[0].Code)
			assert.NotEmpty(t, r.Errors[0].Msg)
		})
	}
}

func TestJaegerSearch(t *testing.T) {
	f := newFixture(t)
	us := func(d time.Duration) string { return strconv.FormatInt(f.t0.Add(d).UnixMicro(), 10) }
	tests := []struct {
		name   string
		params url.Values
		want   []string // trace IDs, newest first
	}{
		{"service", url.Values{"service": {"checkout"}}, []string{querytest.CheckoutTraceID.String()}},
		{"child service", url.Values{"service": {"payment"}}, []string{querytest.CheckoutTraceID.String()}},
		{"operation", url.Values{"service": {"checkout"}, "operation": {"POST /checkout"}}, []string{querytest.CheckoutTraceID.String()}},
		{"other operation", url.Values{"service": {"checkout"}, "operation": {"GET /"}}, nil},
		{"tags JSON", url.Values{"service": {"checkout"}, "tags": {`{"http.route":"/checkout"}`}}, []string{querytest.CheckoutTraceID.String()}},
		{"tag k:v", url.Values{"service": {"checkout"}, "tag": {"error:true"}}, []string{querytest.CheckoutTraceID.String()}},
		{"tag mismatch", url.Values{"service": {"reviews"}, "tag": {"error:true"}}, nil},
		{"min duration", url.Values{"service": {"checkout"}, "minDuration": {"41ms"}}, nil},
		{"max duration", url.Values{"service": {"checkout"}, "maxDuration": {"50ms"}}, []string{querytest.CheckoutTraceID.String()}},
		{"window", url.Values{"service": {"reviews"}, "start": {us(90 * time.Second)}, "end": {us(3 * time.Minute)}}, []string{querytest.ReviewsTraceID.String()}},
		{"window before", url.Values{"service": {"reviews"}, "start": {us(0)}, "end": {us(time.Minute)}}, nil},
		{"by traceID", url.Values{"traceID": {querytest.ReviewsTraceID.String(), querytest.CheckoutTraceID.String()}}, []string{querytest.ReviewsTraceID.String(), querytest.CheckoutTraceID.String()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, r := jaegerGet(t, f.url+"/api/traces?"+tt.params.Encode())
			require.Equal(t, http.StatusOK, code, "%+v", r)
			var traces []Trace
			require.NoError(t, json.Unmarshal(r.Data, &traces))
			got := []string{}
			for _, tr := range traces {
				got = append(got, tr.TraceID)
				assert.NotEmpty(t, tr.Spans)
			}
			if tt.want == nil {
				tt.want = []string{}
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
