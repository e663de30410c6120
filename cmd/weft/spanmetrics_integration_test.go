//go:build integration

package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/backends"
	"github.com/weftobs/weft/internal/loopback"
)

const redConfig = `
extensions:
  health_check:
    endpoint: {{.Health}}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{.OTLPGRPC}}
connectors:
  span_metrics:
    dimensions:
      - name: http.route
      - name: http.response.status_code
    exemplars:
      enabled: true
    metrics_flush_interval: 500ms
exporters:
  prometheus_remote_write:
    endpoint: {{.Backend}}
    resource_constant_labels:
      included: ["k8s.*"]
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [span_metrics]
    metrics:
      receivers: [span_metrics]
      exporters: [prometheus_remote_write]
  telemetry:
    metrics:
      level: none
`

// promResult is the part of Prometheus's /api/v1/query answer the test reads.
type promResult struct {
	Data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

// TestSpanMetricsToPrometheus checks the RED path for functions without a
// metrics endpoint: spans in, spanmetrics connector, prometheus_remote_write
// to a real Prometheus; request and error counts by service, route and
// status arrive, with exemplars that point at the failing traces.
func TestSpanMetricsToPrometheus(t *testing.T) {
	bin, err := backends.FindPrometheus()
	require.NoError(t, err)
	prom, err := backends.StartPrometheus(t.Context(), bin, t.TempDir(), "", testLogWriter{t})
	require.NoError(t, err)
	t.Cleanup(prom.Stop)

	addrs, err := loopback.FreeAddrs(2)
	require.NoError(t, err)
	ep := agentEndpoints{Health: addrs[0], OTLPGRPC: addrs[1], Backend: prom.RemoteWriteURL()}
	cfgPath := filepath.Join(t.TempDir(), "weft.yaml")
	require.NoError(t, os.WriteFile(cfgPath, renderTemplate(t, redConfig, ep), 0o600))
	agentCtx, stopAgent := context.WithCancel(context.Background())
	done, err := startAgent(agentCtx, "file:"+cfgPath)
	require.NoError(t, err)
	t.Cleanup(func() { stopAgent(); <-done })
	require.NoError(t, waitHTTP(t.Context(), "http://"+ep.Health+"/", done))

	// 10 invocations of a function, 3 of them failing.
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "hello-fn")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	failed := map[string]bool{}
	now := time.Now()
	for i := range 10 {
		sp := spans.AppendEmpty()
		tid := pcommon.TraceID{0xfe, byte(i + 1), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
		sp.SetTraceID(tid)
		sp.SetSpanID(pcommon.SpanID{0xab, byte(i + 1), 1, 2, 3, 4, 5, 6})
		sp.SetName("POST /")
		sp.SetKind(ptrace.SpanKindServer)
		// Distinct end times: Prometheus keeps one exemplar per series and
		// timestamp.
		end := now.Add(time.Duration(i) * time.Millisecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-time.Duration(20+i) * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		sp.Attributes().PutStr("http.route", "/")
		code := int64(200)
		if i%3 == 0 && i > 0 {
			code = 503
			sp.Status().SetCode(ptrace.StatusCodeError)
			failed[tid.String()] = true
		}
		sp.Attributes().PutInt("http.response.status_code", code)
	}
	require.Len(t, failed, 3)
	sendOTLPGRPC(t, ep, td)

	query := func(c *assert.CollectT, q string) promResult {
		var r promResult
		_, err := getJSON(t.Context(), prom.URL()+"/api/v1/query?query="+url.QueryEscape(q), &r)
		require.NoError(c, err)
		return r
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := query(c, `sum by (http_response_status_code) (traces_span_metrics_calls_total{service_name="hello-fn",http_route="/"})`)
		got := map[string]string{}
		for _, s := range r.Data.Result {
			got[s.Metric["http_response_status_code"]] = s.Value[1].(string)
		}
		assert.Equal(c, map[string]string{"200": "7", "503": "3"}, got)
	}, 30*time.Second, 250*time.Millisecond)

	var errs promResult
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		errs = query(c, `sum(traces_span_metrics_calls_total{service_name="hello-fn",status_code="STATUS_CODE_ERROR"})`)
		require.Len(c, errs.Data.Result, 1)
		assert.Equal(c, "3", errs.Data.Result[0].Value[1])
	}, 30*time.Second, 250*time.Millisecond)

	// Exemplars on the duration histogram name failing traces. The remote-
	// write translator keeps at most one exemplar per bucket series and
	// write (a known limit of that path), so the test asks for a non-empty
	// subset, never a trace that did not fail.
	var ex struct {
		Data []struct {
			Exemplars []struct {
				Labels map[string]string `json:"labels"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		q := url.Values{
			"query": {`traces_span_metrics_duration_milliseconds_bucket{service_name="hello-fn",http_response_status_code="503"}`},
			"start": {time.Now().Add(-time.Hour).Format(time.RFC3339)},
			"end":   {time.Now().Add(time.Minute).Format(time.RFC3339)},
		}
		_, err := getJSON(t.Context(), prom.URL()+"/api/v1/query_exemplars?"+q.Encode(), &ex)
		require.NoError(c, err)
		seen := map[string]bool{}
		for _, series := range ex.Data {
			for _, e := range series.Exemplars {
				seen[e.Labels["trace_id"]] = true
			}
		}
		assert.NotEmpty(c, seen)
		for id := range seen {
			assert.True(c, failed[id], "exemplar of the 503 series points at trace %s, which did not fail", id)
		}
	}, 30*time.Second, 250*time.Millisecond)
}
