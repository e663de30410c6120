//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftobs/weft/internal/backends"
	"github.com/weftobs/weft/internal/loopback"
)

// startJaeger runs the real Jaeger binary on free loopback ports. A missing
// binary fails the test: `make test` builds it (make tools).
func startJaeger(t *testing.T) *backends.Jaeger {
	t.Helper()
	bin, err := backends.FindJaeger()
	require.NoError(t, err)
	j, err := backends.StartJaeger(t.Context(), bin, t.TempDir(), testLogWriter{t})
	require.NoError(t, err)
	t.Cleanup(j.Stop)
	return j
}

// testLogWriter sends a process's output to the test log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// jaegerTrace is the part of Jaeger's /api/traces/{id} answer the tests read.
type jaegerTrace struct {
	Spans []struct {
		TraceID       string `json:"traceID"`
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []struct {
			RefType string `json:"refType"`
			TraceID string `json:"traceID"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		Tags      []jaegerKV                    `json:"tags"`
		Logs      []struct{ Fields []jaegerKV } `json:"logs"`
		ProcessID string                        `json:"processID"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string     `json:"serviceName"`
		Tags        []jaegerKV `json:"tags"`
	} `json:"processes"`
}

type jaegerKV struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// mustGetJSON decodes the JSON answer (200) of url into v.
func mustGetJSON(t require.TestingT, ctx context.Context, url string, v any) {
	code, err := getJSON(ctx, url, v)
	require.NoError(t, err, url)
	require.Equal(t, http.StatusOK, code, url)
}

func getJSON(ctx context.Context, url string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.Unmarshal(body, v)
}

const roundTripConfig = `
extensions:
  health_check:
    endpoint: %[1]s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[2]s
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 512
exporters:
  otlp_grpc/jaeger:
    endpoint: %[3]s
    tls:
      insecure: true
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter]
      exporters: [otlp_grpc/jaeger]
  telemetry:
    metrics:
      level: none
`

// TestJaegerRoundTrip sends spans with the OpenTelemetry SDK to weft's OTLP
// receiver; weft exports them with otlp_grpc to a real Jaeger, and the test
// reads them back from Jaeger's query API.
func TestJaegerRoundTrip(t *testing.T) {
	j := startJaeger(t)

	addrs, err := loopback.FreeAddrs(2)
	require.NoError(t, err)
	health, otlpGRPC := addrs[0], addrs[1]
	cfgPath := filepath.Join(t.TempDir(), "weft.yaml")
	require.NoError(t, os.WriteFile(cfgPath, fmt.Appendf(nil, roundTripConfig, health, otlpGRPC, j.OTLPGRPC), 0o600))

	agentCtx, stopAgent := context.WithCancel(context.Background())
	done, err := startAgent(agentCtx, "file:"+cfgPath)
	require.NoError(t, err)
	t.Cleanup(func() { stopAgent(); <-done })
	require.NoError(t, waitHTTP(t.Context(), "http://"+health+"/", done))

	exp, err := otlptracegrpc.New(t.Context(), otlptracegrpc.WithEndpoint(otlpGRPC), otlptracegrpc.WithInsecure())
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL,
			semconv.ServiceName("checkout"), attribute.String("k8s.pod.name", "checkout-7d9c8b5f4-x2x9q"))),
	)
	tracer := tp.Tracer("weft/integration")

	start := time.Now().Add(-time.Second).Truncate(time.Microsecond)
	ctx, root := tracer.Start(t.Context(), "POST /checkout", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(start),
		trace.WithAttributes(
			attribute.String("http.route", "/checkout"),
			attribute.Int64("http.response.status_code", 502),
			attribute.Float64("cart.value", 42.5),
			attribute.Bool("cart.gift", true),
		))
	_, child := tracer.Start(ctx, "charge card", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(start.Add(10*time.Millisecond)),
		trace.WithAttributes(attribute.String("payment.provider", "acme")))
	child.AddEvent("retry", trace.WithTimestamp(start.Add(20*time.Millisecond)),
		trace.WithAttributes(attribute.Int64("attempt", 2), attribute.String("reason", "timeout")))
	child.SetStatus(codes.Error, "card declined")
	child.End(trace.WithTimestamp(start.Add(30 * time.Millisecond)))
	root.SetStatus(codes.Error, "payment failed")
	root.End(trace.WithTimestamp(start.Add(40 * time.Millisecond)))
	require.NoError(t, tp.Shutdown(t.Context()))

	traceID := root.SpanContext().TraceID().String()
	var got struct{ Data []jaegerTrace }
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		code, err := getJSON(t.Context(), "http://"+j.Query+"/api/traces/"+traceID, &got)
		require.NoError(c, err)
		require.Equal(c, http.StatusOK, code)
		require.Len(c, got.Data, 1)
		require.Len(c, got.Data[0].Spans, 2)
	}, 30*time.Second, 100*time.Millisecond)

	tr := got.Data[0]
	spans := map[string]int{}
	for i, s := range tr.Spans {
		spans[s.OperationName] = i
		assert.Equal(t, traceID, s.TraceID)
		assert.Equal(t, "checkout", tr.Processes[s.ProcessID].ServiceName)
		assert.Contains(t, tr.Processes[s.ProcessID].Tags,
			jaegerKV{Key: "k8s.pod.name", Type: "string", Value: "checkout-7d9c8b5f4-x2x9q"})
	}
	require.Contains(t, spans, "POST /checkout")
	require.Contains(t, spans, "charge card")
	rs, cs := tr.Spans[spans["POST /checkout"]], tr.Spans[spans["charge card"]]

	assert.Equal(t, root.SpanContext().SpanID().String(), rs.SpanID)
	assert.Empty(t, rs.References)
	for _, kv := range []jaegerKV{
		{Key: "http.route", Type: "string", Value: "/checkout"},
		{Key: "http.response.status_code", Type: "int64", Value: float64(502)},
		{Key: "cart.value", Type: "float64", Value: 42.5},
		{Key: "cart.gift", Type: "bool", Value: true},
		{Key: "span.kind", Type: "string", Value: "server"},
		{Key: "otel.status_code", Type: "string", Value: "ERROR"},
		{Key: "otel.status_description", Type: "string", Value: "payment failed"},
		{Key: "error", Type: "bool", Value: true},
	} {
		assert.Contains(t, rs.Tags, kv)
	}

	require.Len(t, cs.References, 1)
	assert.Equal(t, "CHILD_OF", cs.References[0].RefType)
	assert.Equal(t, rs.SpanID, cs.References[0].SpanID)
	for _, kv := range []jaegerKV{
		{Key: "payment.provider", Type: "string", Value: "acme"},
		{Key: "span.kind", Type: "string", Value: "client"},
		{Key: "otel.status_code", Type: "string", Value: "ERROR"},
		{Key: "otel.status_description", Type: "string", Value: "card declined"},
	} {
		assert.Contains(t, cs.Tags, kv)
	}
	require.Len(t, cs.Logs, 1, "the event arrives as a span log")
	assert.Contains(t, cs.Logs[0].Fields, jaegerKV{Key: "event", Type: "string", Value: "retry"})
	assert.Contains(t, cs.Logs[0].Fields, jaegerKV{Key: "attempt", Type: "int64", Value: float64(2)})
	assert.Contains(t, cs.Logs[0].Fields, jaegerKV{Key: "reason", Type: "string", Value: "timeout"})
}

func renderTemplate(t *testing.T, text string, data any) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, template.Must(template.New("cfg").Option("missingkey=error").Parse(text)).Execute(&buf, data))
	return buf.Bytes()
}
