package tracecontextprocessor

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

const (
	tid  = "4bf92f3577b34da6a3ce929d0e0e4736"
	sid  = "00f067aa0ba902b7"
	tid2 = "80f198ee56343ba864fe8b2a57d3eff7"
	sid2 = "e457b5a2e4d86bd1"
	tid3 = "463ac35c9f6413ad48485a3953bb6124"
	sid3 = "a2fb4a1d1a96d312"
	t64  = "a3ce929d0e0e4736" // a 64-bit B3 trace ID
	pad  = "0000000000000000"
	uuid = "0885d493-a77e-924e-b4da-03e451f5dc28"
)

// istioJSON is an access-log line with the keys of Istio's default JSON
// format, without its closing brace.
const istioJSON = `{"authority":"reviews:9080","bytes_received":0,"bytes_sent":295,"connection_termination_details":null,"downstream_local_address":"10.244.0.12:9080","downstream_remote_address":"10.244.0.9:51234","duration":12,"method":"GET","path":"/reviews/0","protocol":"HTTP/1.1","request_id":"` + uuid + `","requested_server_name":"outbound_.9080_._.reviews.bookinfo.svc.cluster.local","response_code":200,"response_code_details":"via_upstream","response_flags":"-","route_name":"default","start_time":"2026-11-25T19:20:00.123Z","upstream_cluster":"inbound|9080||","upstream_host":"10.244.0.12:9080","upstream_local_address":"127.0.0.6:40311","upstream_service_time":"11","upstream_transport_failure_reason":null,"user_agent":"Mozilla/5.0","x_forwarded_for":null`

// found is the extractor's result in hex, for readable tables.
type found struct {
	trace, span string
	flags       int // -1: flags not set
	src         source
}

var none = found{flags: -1}

func toFound(ok bool, id ids) found {
	if !ok {
		return none
	}
	f := found{trace: hex.EncodeToString(id.trace[:]), flags: -1, src: id.src}
	if id.hasSpan {
		f.span = hex.EncodeToString(id.span[:])
	}
	if id.hasFlags {
		f.flags = int(id.flags)
	}
	return f
}

func extractLine(e *extractor, s string) found {
	var id ids
	ok := e.extractString(s, &id)
	return toFound(ok, id)
}

func TestExtractString(t *testing.T) {
	tests := []struct {
		name string
		line string
		want found
	}{
		// The formats internal/simnode writes.
		{"productpage json trace_id", `{"time":"2026-11-25T19:00:00.1Z","level":"INFO","logger":"productpage","msg":"GET /productpage","trace_id":"` + tid + `","span_id":"` + sid + `","status":200,"duration_ms":21}`,
			found{tid, sid, -1, sourceKey}},
		{"reviews logback traceId", `{"@timestamp":"2026-11-25T19:00:00.1Z","level":"INFO","logger_name":"application.rest.LibertyRestEndpoint","message":"GET /reviews/0","traceId":"` + tid + `","spanId":"` + sid + `","status":200}`,
			found{tid, sid, -1, sourceKey}},
		{"ratings logfmt", `level=info ts=2026-11-25T19:00:00.1Z msg="GET /ratings/0" trace_id=` + tid + ` span_id=` + sid + ` status=200 duration_ms=3`,
			found{tid, sid, -1, sourceKey}},
		{"function traceparent", `{"level":"info","ts":"2026-11-25T19:00:00.1Z","msg":"handled event","traceparent":"00-` + tid + `-` + sid + `-01","status":200,"latency_ms":4}`,
			found{tid, sid, 1, sourceTraceparent}},
		{"istio json access log", `{"start_time":"2026-11-25T19:00:00.000Z","method":"GET","path":"/reviews/0","protocol":"HTTP/1.1","response_code":200,"response_flags":"-","bytes_received":0,"bytes_sent":295,"duration":12,"request_id":"4bf92f35-77b3-4da6-a3ce-929d0e0e4736","authority":"reviews:9080","upstream_cluster":"inbound|9080||","traceparent":"00-` + tid + `-` + sid + `-01"}`,
			found{tid, sid, 1, sourceTraceparent}},

		// Other key spellings and syntaxes.
		{"trace.id ecs", `{"@timestamp":"x","trace.id":"` + tid + `","span.id":"` + sid + `"}`, found{tid, sid, -1, sourceKey}},
		{"traceID spanID", `{"traceID":"` + tid + `","spanID":"` + sid + `"}`, found{tid, sid, -1, sourceKey}},
		{"dotnet TraceId SpanId", `{"TraceId":"` + tid + `","SpanId":"` + sid + `"}`, found{tid, sid, -1, sourceKey}},
		{"json with spaces", `{ "trace_id" : "` + tid + `" , "span_id" :"` + sid + `" }`, found{tid, sid, -1, sourceKey}},
		{"key colon value", `trace_id: ` + tid + ` span_id: ` + sid, found{tid, sid, -1, sourceKey}},
		{"logfmt quoted", `msg=hi trace_id="` + tid + `" span_id='` + sid + `'`, found{tid, sid, -1, sourceKey}},
		{"upper-case hex in a field", `trace_id=` + strings.ToUpper(tid), found{tid, "", -1, sourceKey}},
		{"trace without span", `trace_id=` + tid + ` msg=x`, found{tid, "", -1, sourceKey}},
		{"escaped json in docker json-file", `{"log":"{\"level\":\"info\",\"trace_id\":\"` + tid + `\",\"span_id\":\"` + sid + `\"}\n","stream":"stdout","time":"2018-09-21T02:56:06.978292233Z"}`,
			found{tid, sid, -1, sourceKey}},
		{"16-hex trace id is left-padded", `traceId=` + t64 + ` spanId=` + sid, found{pad + t64, sid, -1, sourceKey}},
		{"zero span id is dropped", `trace_id=` + tid + ` span_id=0000000000000000`, found{tid, "", -1, sourceKey}},
		{"parent_span_id is not span_id", `trace_id=` + tid + ` parent_span_id=` + sid2 + ` span_id=` + sid, found{tid, sid, -1, sourceKey}},
		{"parentSpanId alone", `trace_id=` + tid + ` parentSpanId=` + sid2, found{tid, "", -1, sourceKey}},

		// W3C traceparent anywhere.
		{"traceparent in text", `GET /api handled traceparent=00-` + tid + `-` + sid + `-00 in 3ms`, found{tid, sid, 0, sourceTraceparent}},
		{"traceparent at end of line", `upstream call 00-` + tid + `-` + sid + `-01`, found{tid, sid, 1, sourceTraceparent}},
		{"traceparent header line", `traceparent: 00-` + tid + `-` + sid + `-03`, found{tid, sid, 3, sourceTraceparent}},
		{"future traceparent version with extra field", `tp=cc-` + tid + `-` + sid + `-01-what-the-future-holds`, found{tid, sid, 1, sourceTraceparent}},

		// B3.
		{"b3 multi headers", `x-b3-traceid=` + tid + ` x-b3-spanid=` + sid + ` x-b3-sampled=1`, found{tid, sid, 1, sourceKey}},
		{"b3 multi canonical case json", `{"X-B3-TraceId":"` + tid + `","X-B3-SpanId":"` + sid + `","X-B3-Sampled":"0"}`, found{tid, sid, 0, sourceKey}},
		{"b3 underscore 64-bit", `x_b3_traceid=` + t64 + ` x_b3_spanid=` + sid + ` x_b3_sampled=true`, found{pad + t64, sid, 1, sourceKey}},
		{"b3 single header", `b3: ` + tid + `-` + sid + `-1-` + sid2, found{tid, sid, 1, sourceB3Single}},
		{"b3 single debug", `"b3":"` + tid + `-` + sid + `-d"`, found{tid, sid, 1, sourceB3Single}},
		{"b3 single unsampled", `b3=` + tid + `-` + sid + `-0 next`, found{tid, sid, 0, sourceB3Single}},
		{"b3 single no sampling", `b3=` + tid + `-` + sid, found{tid, sid, -1, sourceB3Single}},
		{"b3 single 64-bit", `b3=` + t64 + `-` + sid + `-1`, found{pad + t64, sid, 1, sourceB3Single}},

		// Istio/Envoy default text format, as a mesh with tracing on adds headers.
		{"istio text with traceparent", `[2022-04-01T03:23:12.736Z] "GET /get HTTP/1.1" 200 - via_upstream - "-" 0 605 4 3 "-" "curl/7.82.0-DEV" "200efb6c-82be-4760-8ab6-7b6af588d4fb" "httpbin:8000" "10.244.0.31:80" outbound|8000||httpbin.default.svc.cluster.local 10.244.0.26:35086 10.96.71.143:8000 10.244.0.26:41616 - default "00-` + tid + `-` + sid + `-01"`,
			found{tid, sid, 1, sourceTraceparent}},
		{"istio text with b3", `[2020-10-29T21:51:57.945Z] "GET /status/418 HTTP/1.1" 418 - "-" 0 135 2 2 "-" "curl/7.69.1" "f65c68d3-619a-44c7-a9c1-44384b3055ba" "httpbin:8000" "127.0.0.1:80" inbound|8000|| "` + tid + `-` + sid + `-1"`,
			found{tid, sid, 1, sourceB3Single}},

		// Istio's default JSON access-log keys (sorted as Envoy's json_format
		// writes them), with Envoy's %TRACE_ID% added under trace_id.
		{"istio default json with %TRACE_ID%", istioJSON + `,"trace_id":"` + tid + `"}`, found{tid, "", -1, sourceKey}},
		{"istio default json with b3 headers", istioJSON + `,"x-b3-traceid":"` + t64 + `","x-b3-spanid":"` + sid + `","x-b3-sampled":"1"}`, found{pad + t64, sid, 1, sourceKey}},
		{"istio default json without tracing", istioJSON + `}`, none},

		// Nothing to find.
		{"empty", ``, none},
		{"plain text", `Fluent-Bit v0.14.4 started (pid=1)`, none},
		{"istio text without tracing", `[2022-04-01T03:23:12.736Z] "GET /get HTTP/1.1" 200 - via_upstream - "-" 0 605 4 3 "-" "curl/7.82.0-DEV" "200efb6c-82be-4760-8ab6-7b6af588d4fb" "httpbin:8000" "10.244.0.31:80" outbound|8000||httpbin.default.svc.cluster.local - default`, none},
		{"uuid under trace_id", `trace_id=` + uuid, none},
		{"x-request-id uuid", `x-request-id: ` + uuid, none},
		{"request_id 32 hex", `request_id=` + tid, none},
		{"bare 32 hex", `checksum ` + tid + ` ok`, none},
		{"all-zero trace id", `trace_id=00000000000000000000000000000000 span_id=` + sid, none},
		{"all-zero 64-bit trace id", `trace_id=` + pad, none},
		{"all-zero traceparent", `traceparent=00-00000000000000000000000000000000-` + sid + `-01`, none},
		{"traceparent with zero span", `traceparent=00-` + tid + `-0000000000000000-01`, none},
		{"traceparent version ff", `ff-` + tid + `-` + sid + `-01`, none},
		{"traceparent upper case", `00-` + strings.ToUpper(tid) + `-` + sid + `-01`, none},
		{"traceparent inside longer hex", `a00-` + tid + `-` + sid + `-01`, none},
		{"traceparent v00 with trailing hex", `00-` + tid + `-` + sid + `-01ab`, none},
		{"traceparent v00 with trailing field", `00-` + tid + `-` + sid + `-01-02`, none},
		{"traceparent short trace", `00-` + tid[:31] + `-` + sid + `-01`, none},
		{"trace id 31 hex", `trace_id=` + tid[:31], none},
		{"trace id 33 hex", `trace_id=` + tid + `a`, none},
		{"trace id 40 hex", `trace_id=` + tid + sid[:8], none},
		{"trace id inside 64 hex", `trace_id=` + tid + tid, none},
		{"trace id followed by letters", `trace_id=` + tid + `xyz`, none},
		{"trace id 24 hex", `traceId="` + tid[:24] + `"`, none},
		{"prefixed key x_trace_id", `x_trace_id=` + tid, none},
		{"datadog decimal dd.trace_id", `dd.trace_id=1234567890123456 dd.span_id=1234567890123456`, none},
		{"span without trace", `span_id=` + sid, none},
		{"trace id null", `{"trace_id":null,"span_id":null}`, none},
		{"b3 single inside longer hex", `b3=f` + tid + `-` + sid + `-1`, none},
		{"b3 single bad sampling", `b3=` + tid + `-` + sid + `-x`, none},
		{"b3 single 24-hex trace", `b3=` + tid[:24] + `-` + sid, none},
		{"words", `stack trace: race condition in span of spans, trace id unknown`, none},
	}
	e := newExtractor(FieldsConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, extractLine(e, tt.line), "line: %s", tt.line)
		})
	}
}

func TestExtractPrecedence(t *testing.T) {
	tp := `traceparent=00-` + tid + `-` + sid + `-01`
	b3 := `b3=` + tid2 + `-` + sid2 + `-1`
	tests := []struct {
		name   string
		fields FieldsConfig
		line   string
		want   found
	}{
		{"traceparent beats trace_id", FieldsConfig{}, `trace_id=` + tid3 + ` span_id=` + sid3 + ` ` + tp, found{tid, sid, 1, sourceTraceparent}},
		{"traceparent beats an earlier b3", FieldsConfig{}, b3 + ` ` + tp, found{tid, sid, 1, sourceTraceparent}},
		{"b3 single beats trace_id", FieldsConfig{}, `trace_id=` + tid3 + ` ` + b3, found{tid2, sid2, 1, sourceB3Single}},
		{"configured field beats traceparent", FieldsConfig{TraceID: []string{"corr"}, SpanID: []string{"op"}},
			tp + ` corr=` + tid3 + ` op=` + sid3, found{tid3, sid3, -1, sourceField}},
		{"configured fields in list order", FieldsConfig{TraceID: []string{"b", "a"}},
			`a=` + tid + ` b=` + tid2, found{tid2, "", -1, sourceField}},
		{"configured span field beats span_id", FieldsConfig{SpanID: []string{"op"}},
			`trace_id=` + tid + ` span_id=` + sid + ` op=` + sid3, found{tid, sid3, -1, sourceKey}},
		{"configured field with invalid value falls through", FieldsConfig{TraceID: []string{"corr"}},
			`corr=` + uuid + ` trace_id=` + tid, found{tid, "", -1, sourceKey}},
		{"leftmost built-in key wins", FieldsConfig{}, `{"traceId":"` + tid + `","trace_id":"` + tid2 + `"}`, found{tid, "", -1, sourceKey}},
		{"zero key skipped for a later valid one", FieldsConfig{}, `traceId=00000000000000000000000000000000 trace_id=` + tid2, found{tid2, "", -1, sourceKey}},
		{"leftmost span key wins", FieldsConfig{}, `trace_id=` + tid + ` spanId=` + sid2 + ` span_id=` + sid, found{tid, sid2, -1, sourceKey}},
		{"x-b3-sampled must be a whole token", FieldsConfig{}, `x-b3-traceid=` + tid + ` x-b3-sampled=10`, found{tid, "", -1, sourceKey}},
		{"first valid x-b3-sampled", FieldsConfig{}, `x-b3-sampled=yes x-b3-traceid=` + tid + ` X-B3-Sampled="true"`, found{tid, "", 1, sourceKey}},
		{"x-b3-sampled ignored for non-b3 trace key", FieldsConfig{}, `trace_id=` + tid + ` x-b3-sampled=1`, found{tid, "", -1, sourceKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newExtractor(tt.fields)
			assert.Equal(t, tt.want, extractLine(e, tt.line))
		})
	}
}

func TestExtractConfiguredFields(t *testing.T) {
	e := newExtractor(FieldsConfig{TraceID: []string{"corr.trace", "dd.trace_id"}, SpanID: []string{"corr.span"}})
	tests := []struct {
		name string
		line string
		want found
	}{
		{"json", `{"corr.trace":"` + tid + `","corr.span":"` + sid + `"}`, found{tid, sid, -1, sourceField}},
		{"logfmt", `corr.trace=` + tid + ` corr.span=` + sid, found{tid, sid, -1, sourceField}},
		{"configured name overrides the leading-dot rule of built-in keys", `dd.trace_id=` + tid, found{tid, "", -1, sourceField}},
		{"name must start at a boundary", `xcorr.trace=` + tid, none},
		{"name must end at the key", `corr.trace2=` + tid, none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, extractLine(e, tt.line))
		})
	}
}

func mapFrom(t *testing.T, raw map[string]any) pcommon.Value {
	t.Helper()
	v := pcommon.NewValueMap()
	require.NoError(t, v.Map().FromRaw(raw))
	return v
}

func TestExtractMap(t *testing.T) {
	tests := []struct {
		name   string
		fields FieldsConfig
		body   map[string]any
		want   found
	}{
		{"trace_id span_id", FieldsConfig{}, map[string]any{"msg": "x", "trace_id": tid, "span_id": sid}, found{tid, sid, -1, sourceKey}},
		{"traceId spanId", FieldsConfig{}, map[string]any{"traceId": tid, "spanId": sid}, found{tid, sid, -1, sourceKey}},
		{"ecs nested", FieldsConfig{}, map[string]any{"trace": map[string]any{"id": tid}, "span": map[string]any{"id": sid}}, found{tid, sid, -1, sourceKey}},
		{"traceparent key", FieldsConfig{}, map[string]any{"trace_id": tid3, "traceparent": "00-" + tid + "-" + sid + "-01"}, found{tid, sid, 1, sourceTraceparent}},
		{"b3 key", FieldsConfig{}, map[string]any{"b3": t64 + "-" + sid + "-1"}, found{pad + t64, sid, 1, sourceB3Single}},
		{"x-b3 keys", FieldsConfig{}, map[string]any{"x-b3-traceid": tid, "x-b3-spanid": sid}, found{tid, sid, -1, sourceKey}},
		{"x-b3 keys sampled", FieldsConfig{}, map[string]any{"X-B3-Sampled": "1", "X-B3-TraceId": t64, "X-B3-SpanId": sid}, found{pad + t64, sid, 1, sourceKey}},
		{"x-b3-sampled ignored for trace_id", FieldsConfig{}, map[string]any{"x-b3-sampled": "1", "trace_id": tid}, found{tid, "", -1, sourceKey}},
		{"b3 beats trace_id", FieldsConfig{}, map[string]any{"trace_id": tid3, "b3": tid + "-" + sid}, found{tid, sid, -1, sourceB3Single}},
		{"configured span field in map", FieldsConfig{SpanID: []string{"op"}}, map[string]any{"trace_id": tid, "span_id": sid, "op": sid3}, found{tid, sid3, -1, sourceKey}},
		{"non-hex value of right length", FieldsConfig{}, map[string]any{"trace_id": "4bf92f3577b34da6a3ce929d0e0e473z", "span_id": "00f067aa0ba902bz"}, none},
		{"configured dotted path", FieldsConfig{TraceID: []string{"ctx.trace"}, SpanID: []string{"ctx.span"}},
			map[string]any{"traceparent": "00-" + tid + "-" + sid + "-01", "ctx": map[string]any{"trace": tid2, "span": sid2}}, found{tid2, sid2, -1, sourceField}},
		{"configured literal dotted key", FieldsConfig{TraceID: []string{"ctx.trace"}}, map[string]any{"ctx.trace": tid2}, found{tid2, "", -1, sourceField}},
		{"string value scanned as a line", FieldsConfig{}, map[string]any{"log": "GET / trace_id=" + tid + " span_id=" + sid}, found{tid, sid, -1, sourceKey}},
		{"value with spaces rejected", FieldsConfig{}, map[string]any{"trace_id": " " + tid}, none},
		{"uuid under trace_id", FieldsConfig{}, map[string]any{"trace_id": uuid, "request_id": tid}, none},
		{"zero trace", FieldsConfig{}, map[string]any{"trace_id": "00000000000000000000000000000000"}, none},
		{"non-string trace", FieldsConfig{}, map[string]any{"trace_id": 12345}, none},
		{"x-request-id only", FieldsConfig{}, map[string]any{"x-request-id": uuid, "request_id": uuid}, none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newExtractor(tt.fields)
			var id ids
			ok := e.extractValue(mapFrom(t, tt.body), &id)
			assert.Equal(t, tt.want, toFound(ok, id))
		})
	}
}

// TestExtractMapOrder: among built-in keys, the first in map order wins.
func TestExtractMapOrder(t *testing.T) {
	e := newExtractor(FieldsConfig{})
	for _, order := range [][2]string{{"traceId", "trace_id"}, {"trace_id", "traceId"}} {
		v := pcommon.NewValueMap()
		v.Map().PutStr(order[0], tid)
		v.Map().PutStr(order[1], tid2)
		var id ids
		ok := e.extractValue(v, &id)
		assert.Equal(t, found{tid, "", -1, sourceKey}, toFound(ok, id), "order %v", order)
	}
}

// TestExtractNoAllocs: the extractor allocates nothing, with or without an ID.
func TestExtractNoAllocs(t *testing.T) {
	e := newExtractor(FieldsConfig{TraceID: []string{"corr"}, SpanID: []string{"op"}})
	for _, bl := range benchLines {
		var id ids
		allocs := testing.AllocsPerRun(100, func() { e.extractString(bl.line, &id) })
		assert.Zero(t, allocs, bl.name)
	}
	v := mapFrom(t, map[string]any{"msg": "x", "trace_id": tid, "span_id": sid, "n": 1})
	var id ids
	assert.Zero(t, testing.AllocsPerRun(100, func() { e.extractValue(v, &id) }), "map body")
}
