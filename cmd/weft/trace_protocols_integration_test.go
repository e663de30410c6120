//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	jaegermodel "github.com/jaegertracing/jaeger-idl/model/v1"
	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	jaegerthrift "github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"
	jaegertranslator "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/jaeger"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftobs/weft/internal/loopback"
)

const protocolsConfig = `
extensions:
  health_check:
    endpoint: {{.Health}}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{.OTLPGRPC}}
      http:
        endpoint: {{.OTLPHTTP}}
  jaeger:
    protocols:
      grpc:
        endpoint: {{.JaegerGRPC}}
      thrift_http:
        endpoint: {{.ThriftHTTP}}
  zipkin:
    endpoint: {{.Zipkin}}
exporters:
  otlp_grpc/jaeger:
    endpoint: {{.Backend}}
    tls:
      insecure: true
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp, jaeger, zipkin]
      exporters: [otlp_grpc/jaeger]
  telemetry:
    metrics:
      level: none
`

// agentEndpoints are the trace inputs of the agent under test.
type agentEndpoints struct {
	Health, OTLPGRPC, OTLPHTTP, JaegerGRPC, ThriftHTTP, Zipkin, Backend string
}

// testTrace is the trace every protocol sends: a server span with typed
// attributes and an error status, and a client child with an event and a
// link to a span of another trace.
func testTrace(seed byte) (ptrace.Traces, pcommon.TraceID, pcommon.SpanID, pcommon.SpanID, pcommon.TraceID) {
	traceID := pcommon.TraceID{0xa1, seed, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	linkedTrace := pcommon.TraceID{0xb2, seed, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17}
	rootID := pcommon.SpanID{0xc3, seed, 3, 4, 5, 6, 7, 8}
	childID := pcommon.SpanID{0xd4, seed, 3, 4, 5, 6, 7, 9}
	start := time.Now().Add(-2 * time.Second).Truncate(time.Microsecond)

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("shop-%d", seed))
	rs.Resource().Attributes().PutStr("k8s.pod.name", "shop-7d9c8b5f4-x2x9q")
	spans := rs.ScopeSpans().AppendEmpty().Spans()

	root := spans.AppendEmpty()
	root.SetTraceID(traceID)
	root.SetSpanID(rootID)
	root.SetName("POST /checkout")
	root.SetKind(ptrace.SpanKindServer)
	root.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	root.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(40 * time.Millisecond)))
	root.Attributes().PutStr("http.route", "/checkout")
	root.Attributes().PutInt("http.response.status_code", 502)
	root.Attributes().PutDouble("cart.value", 42.5)
	root.Attributes().PutBool("cart.gift", true)
	root.Status().SetCode(ptrace.StatusCodeError)
	root.Status().SetMessage("payment failed")

	child := spans.AppendEmpty()
	child.SetTraceID(traceID)
	child.SetSpanID(childID)
	child.SetParentSpanID(rootID)
	child.SetName("charge card")
	child.SetKind(ptrace.SpanKindClient)
	child.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(10 * time.Millisecond)))
	child.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(30 * time.Millisecond)))
	child.Attributes().PutStr("payment.provider", "acme")
	ev := child.Events().AppendEmpty()
	ev.SetName("retry")
	ev.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(20 * time.Millisecond)))
	ev.Attributes().PutInt("attempt", 2)
	link := child.Links().AppendEmpty()
	link.SetTraceID(linkedTrace)
	link.SetSpanID(pcommon.SpanID{0xe5, seed, 3, 4, 5, 6, 7, 8})
	return td, traceID, rootID, childID, linkedTrace
}

func sendOTLPGRPC(t *testing.T, ep agentEndpoints, td ptrace.Traces) {
	conn, err := grpc.NewClient(ep.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	_, err = ptraceotlp.NewGRPCClient(conn).Export(t.Context(), ptraceotlp.NewExportRequestFromTraces(td))
	require.NoError(t, err)
}

func sendOTLPHTTP(t *testing.T, ep agentEndpoints, td ptrace.Traces) {
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	postBody(t, "http://"+ep.OTLPHTTP+"/v1/traces", "application/x-protobuf", body)
}

func sendJaegerGRPC(t *testing.T, ep agentEndpoints, td ptrace.Traces) {
	conn, err := grpc.NewClient(ep.JaegerGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := api_v2.NewCollectorServiceClient(conn)
	for _, b := range jaegertranslator.ProtoFromTraces(td) {
		_, err := client.PostSpans(t.Context(), &api_v2.PostSpansRequest{Batch: *b})
		require.NoError(t, err)
	}
}

func sendJaegerThrift(t *testing.T, ep agentEndpoints, td ptrace.Traces) {
	for _, b := range jaegertranslator.ProtoFromTraces(td) {
		body, err := thrift.NewTSerializer().Write(t.Context(), thriftBatch(b))
		require.NoError(t, err)
		postBody(t, "http://"+ep.ThriftHTTP+"/api/traces", "application/x-thrift", body)
	}
}

func sendZipkin(t *testing.T, ep agentEndpoints, td ptrace.Traces) {
	body, err := zipkinv2.NewJSONTracesMarshaler().MarshalTraces(td)
	require.NoError(t, err)
	postBody(t, "http://"+ep.Zipkin+"/api/v2/spans", "application/json", body)
}

func postBody(t *testing.T, url, contentType string, body []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, "POST %s: %s", url, resp.Status)
}

// thriftBatch converts a Jaeger model batch to its Thrift form, the payload
// of the thrift_http protocol.
func thriftBatch(b *jaegermodel.Batch) *jaegerthrift.Batch {
	out := &jaegerthrift.Batch{Process: &jaegerthrift.Process{ServiceName: b.Process.ServiceName, Tags: thriftTags(b.Process.Tags)}}
	for _, s := range b.Spans {
		ts := &jaegerthrift.Span{
			TraceIdLow: int64(s.TraceID.Low), TraceIdHigh: int64(s.TraceID.High), SpanId: int64(s.SpanID),
			OperationName: s.OperationName, Flags: int32(s.Flags),
			StartTime: s.StartTime.UnixMicro(), Duration: s.Duration.Microseconds(), Tags: thriftTags(s.Tags),
		}
		for _, r := range s.References {
			if r.RefType == jaegermodel.ChildOf && r.TraceID == s.TraceID {
				ts.ParentSpanId = int64(r.SpanID)
			}
			rt := jaegerthrift.SpanRefType_CHILD_OF
			if r.RefType == jaegermodel.FollowsFrom {
				rt = jaegerthrift.SpanRefType_FOLLOWS_FROM
			}
			ts.References = append(ts.References, &jaegerthrift.SpanRef{
				RefType: rt, TraceIdLow: int64(r.TraceID.Low), TraceIdHigh: int64(r.TraceID.High), SpanId: int64(r.SpanID),
			})
		}
		for _, l := range s.Logs {
			ts.Logs = append(ts.Logs, &jaegerthrift.Log{Timestamp: l.Timestamp.UnixMicro(), Fields: thriftTags(l.Fields)})
		}
		out.Spans = append(out.Spans, ts)
	}
	return out
}

func thriftTags(kvs []jaegermodel.KeyValue) []*jaegerthrift.Tag {
	var out []*jaegerthrift.Tag
	for _, kv := range kvs {
		tag := &jaegerthrift.Tag{Key: kv.Key}
		switch kv.VType {
		case jaegermodel.ValueType_STRING:
			tag.VType, tag.VStr = jaegerthrift.TagType_STRING, thrift.StringPtr(kv.VStr)
		case jaegermodel.ValueType_BOOL:
			tag.VType, tag.VBool = jaegerthrift.TagType_BOOL, thrift.BoolPtr(kv.VBool)
		case jaegermodel.ValueType_INT64:
			tag.VType, tag.VLong = jaegerthrift.TagType_LONG, thrift.Int64Ptr(kv.VInt64)
		case jaegermodel.ValueType_FLOAT64:
			tag.VType, tag.VDouble = jaegerthrift.TagType_DOUBLE, thrift.Float64Ptr(kv.VFloat64)
		case jaegermodel.ValueType_BINARY:
			tag.VType, tag.VBinary = jaegerthrift.TagType_BINARY, kv.VBinary
		}
		out = append(out, tag)
	}
	return out
}

// TestTraceProtocolsRoundTrip sends the same trace to each of weft's trace
// inputs; weft exports it with otlp_grpc to a real Jaeger, and the test reads
// it back from Jaeger's query API. What a protocol cannot carry is listed per
// protocol (Zipkin v2 has no links and only string tags and annotations).
func TestTraceProtocolsRoundTrip(t *testing.T) {
	j := startJaeger(t)
	addrs, err := loopback.FreeAddrs(6)
	require.NoError(t, err)
	ep := agentEndpoints{Health: addrs[0], OTLPGRPC: addrs[1], OTLPHTTP: addrs[2], JaegerGRPC: addrs[3],
		ThriftHTTP: addrs[4], Zipkin: addrs[5], Backend: j.OTLPGRPC}
	cfgPath := filepath.Join(t.TempDir(), "weft.yaml")
	require.NoError(t, os.WriteFile(cfgPath, renderTemplate(t, protocolsConfig, ep), 0o600))
	agentCtx, stopAgent := context.WithCancel(context.Background())
	done, err := startAgent(agentCtx, "file:"+cfgPath)
	require.NoError(t, err)
	t.Cleanup(func() { stopAgent(); <-done })
	require.NoError(t, waitHTTP(t.Context(), "http://"+ep.Health+"/", done))

	tests := []struct {
		name        string
		send        func(*testing.T, agentEndpoints, ptrace.Traces)
		typedTags   bool // attributes keep their types (else they arrive as strings)
		links       bool
		eventFields bool // event attributes survive
	}{
		{name: "otlp_grpc", send: sendOTLPGRPC, typedTags: true, links: true, eventFields: true},
		{name: "otlp_http", send: sendOTLPHTTP, typedTags: true, links: true, eventFields: true},
		{name: "jaeger_grpc", send: sendJaegerGRPC, typedTags: true, links: true, eventFields: true},
		{name: "jaeger_thrift_http", send: sendJaegerThrift, typedTags: true, links: true, eventFields: true},
		{name: "zipkin", send: sendZipkin},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td, traceID, rootID, childID, linkedTrace := testTrace(byte(i + 1))
			service := td.ResourceSpans().At(0).Resource().Attributes().AsRaw()["service.name"]
			tt.send(t, ep, td)

			var got struct{ Data []jaegerTrace }
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				code, err := getJSON(t.Context(), "http://"+j.Query+"/api/traces/"+traceID.String(), &got)
				require.NoError(c, err)
				require.Equal(c, http.StatusOK, code)
				require.Len(c, got.Data, 1)
				require.Len(c, got.Data[0].Spans, 2)
			}, 30*time.Second, 100*time.Millisecond)

			tr := got.Data[0]
			root, child := "POST /checkout", "charge card"
			if tt.name == "zipkin" { // Zipkin's model lowercases span names
				root, child = strings.ToLower(root), strings.ToLower(child)
			}
			byName := map[string]int{}
			for i, s := range tr.Spans {
				byName[s.OperationName] = i
				assert.Equal(t, service, tr.Processes[s.ProcessID].ServiceName)
			}
			require.Contains(t, byName, root)
			require.Contains(t, byName, child)
			rs, cs := tr.Spans[byName[root]], tr.Spans[byName[child]]
			assert.Equal(t, rootID.String(), rs.SpanID)
			assert.Equal(t, childID.String(), cs.SpanID)

			if tt.typedTags {
				assert.Contains(t, rs.Tags, jaegerKV{Key: "http.response.status_code", Type: "int64", Value: float64(502)})
				assert.Contains(t, rs.Tags, jaegerKV{Key: "cart.value", Type: "float64", Value: 42.5})
				assert.Contains(t, rs.Tags, jaegerKV{Key: "cart.gift", Type: "bool", Value: true})
			} else {
				assert.Contains(t, rs.Tags, jaegerKV{Key: "http.response.status_code", Type: "string", Value: "502"})
				assert.Contains(t, rs.Tags, jaegerKV{Key: "cart.value", Type: "string", Value: "42.5"})
				assert.Contains(t, rs.Tags, jaegerKV{Key: "cart.gift", Type: "string", Value: "true"})
			}
			assert.Contains(t, rs.Tags, jaegerKV{Key: "http.route", Type: "string", Value: "/checkout"})
			assert.Contains(t, rs.Tags, jaegerKV{Key: "span.kind", Type: "string", Value: "server"})
			assert.Contains(t, rs.Tags, jaegerKV{Key: "otel.status_code", Type: "string", Value: "ERROR"})
			assert.Contains(t, rs.Tags, jaegerKV{Key: "otel.status_description", Type: "string", Value: "payment failed"})
			assert.Contains(t, rs.Tags, jaegerKV{Key: "error", Type: "bool", Value: true})
			assert.Contains(t, cs.Tags, jaegerKV{Key: "payment.provider", Type: "string", Value: "acme"})

			var refs []string
			for _, r := range cs.References {
				refs = append(refs, r.RefType+":"+r.TraceID+":"+r.SpanID)
			}
			assert.Contains(t, refs, "CHILD_OF:"+traceID.String()+":"+rootID.String())
			if tt.links {
				linkSpan := pcommon.SpanID{0xe5, byte(i + 1), 3, 4, 5, 6, 7, 8}
				assert.Contains(t, refs, "FOLLOWS_FROM:"+linkedTrace.String()+":"+linkSpan.String())
			}

			require.Len(t, cs.Logs, 1, "the event arrives as a span log")
			assert.True(t, slices.ContainsFunc(cs.Logs[0].Fields, func(kv jaegerKV) bool {
				s, _ := kv.Value.(string)
				return bytes.Contains([]byte(s), []byte("retry"))
			}), "event name missing from %v", cs.Logs[0].Fields)
			if tt.eventFields {
				assert.Contains(t, cs.Logs[0].Fields, jaegerKV{Key: "attempt", Type: "int64", Value: float64(2)})
			}
		})
	}
}
