//go:build integration

package deploy

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // the exporter compresses
)

// otlpSink is an OTLP/gRPC trace endpoint standing in for Jaeger: it
// records the spans it receives by trace ID.
type otlpSink struct {
	ptraceotlp.UnimplementedGRPCServer
	mu    sync.Mutex
	spans map[pcommon.TraceID]int
}

func (s *otlpSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rss := req.Traces().ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				s.spans[spans.At(k).TraceID()]++
			}
		}
	}
	return ptraceotlp.NewExportResponse(), nil
}

func (s *otlpSink) received() map[pcommon.TraceID]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[pcommon.TraceID]int, len(s.spans))
	for k, v := range s.spans {
		out[k] = v
	}
	return out
}

// startSink serves an otlpSink on a loopback port and returns its address.
func startSink(t *testing.T) (*otlpSink, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	sink := &otlpSink{spans: map[pcommon.TraceID]int{}}
	ptraceotlp.RegisterGRPCServer(srv, sink)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return sink, l.Addr().String()
}

// testPaths writes the overrides every test run of a rendered agent needs
// and returns the file: rule files and pod logs at the staged copies,
// the gossip key at the staged Secret, and no join (the SRV name needs
// cluster DNS; no query may leave the machine).
func testPaths(t *testing.T, b *bundle, root string) string {
	t.Helper()
	keyFile := pinsConfig(t, configOf(t, b)).Gossip.SecretKeyFile
	paths := filepath.Join(root, "test-paths.yaml")
	require.NoError(t, os.WriteFile(paths, []byte(fmt.Sprintf(
		"extensions:\n  weft_rules:\n    rule_files: [%s/*.yaml]\n  weft_pins:\n    gossip:\n      join: []\n      secret_key_file: %s\n"+
			"receivers:\n  container_logs:\n    include: [%s/*/*/*.log]\n",
		filepath.Join(root, rulesDir), filepath.Join(root, keyFile), filepath.Join(root, "var/log/pods"))), 0o644))
	return paths
}

// metricSum adds up the samples of metric name (dots or underscores,
// with or without _total) whose labels include every pair of want, in a
// Prometheus text exposition.
func metricSum(text, name string, want map[string]string) float64 {
	norm := func(s string) string { return strings.TrimSuffix(strings.ReplaceAll(s, ".", "_"), "_total") }
	var sum float64
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		key, val := line[:sp], line[sp+1:]
		metric, lbls := key, ""
		if strings.HasPrefix(key, `{"`) {
			end := strings.Index(key[2:], `"`)
			if end < 0 {
				continue
			}
			metric, lbls = key[2:2+end], key[2+end+1:]
		} else if i := strings.IndexByte(key, '{'); i >= 0 {
			metric, lbls = key[:i], key[i:]
		}
		if norm(metric) != norm(name) {
			continue
		}
		ok := true
		for k, v := range want {
			ok = ok && strings.Contains(lbls, fmt.Sprintf("%s=%q", k, v))
		}
		if f, err := strconv.ParseFloat(val, 64); ok && err == nil {
			sum += f
		}
	}
	return sum
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		if strings.Contains(line, s) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// sampledAt10 reports whether the 10 % threshold of evidence_sampling
// keeps id: the last 56 bits of the trace ID at least th:e666
// (processors/evidencesamplingprocessor README, "The decision rule").
func sampledAt10(id pcommon.TraceID) bool {
	r := binary.BigEndian.Uint64(id[8:]) & (1<<56 - 1)
	return r >= uint64(0xe666)<<40
}

// The export-sampling variant, run as the DaemonSet runs it (its rendered
// arguments and files, a test key for the Secret): 200 traces of 2 spans
// and one log line each, 5 with an error span. The store keeps every span
// and log line (correlate API); "Jaeger" (an OTLP sink) gets exactly the
// traces the 10 % threshold keeps plus the error traces, each whole, and
// none of the others after decision_wait; the log export's sampler keeps
// and drops the same traces' log lines.
func TestExportSamplingAgent(t *testing.T) {
	b := mustBundle(t, exportSamplingExample)
	root := t.TempDir()
	podIP := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(250), 1+rand.IntN(250))
	closed := "127.0.0.1:9"
	sink, sinkAddr := startSink(t)
	args, environ := stage(t, b, root, map[string]string{
		"POD_IP":                podIP,
		"WEFT_KUBERNETES_API":   emptyKubernetesAPI(t),
		"WEFT_JAEGER_ENDPOINT":  sinkAddr,
		"WEFT_REMOTE_WRITE_URL": "http://" + closed + "/api/v1/write",
		"WEFT_ALERTMANAGER_URL": "http://" + closed,
		"WEFT_FLUENT_ENDPOINT":  closed,
	})
	args = append(args, "--config", testPaths(t, b, root))
	cmd := exec.Command(weftBinary(t), args...)
	cmd.Env = environ
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	get := func(url string, token bool) (int, []byte) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		require.NoError(t, err)
		if token {
			req.Header.Set("Authorization", "Bearer "+readerToken)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.Bytes()
	}
	require.Eventually(t, func() bool { code, _ := get("http://"+podIP+":8686/ready", false); return code == http.StatusOK },
		60*time.Second, 100*time.Millisecond, "readiness; agent output:\n%s", &logs)

	// The workload.
	const traces, errorTraces = 200, 5
	rng := rand.New(rand.NewPCG(20, 12))
	ids := make([]pcommon.TraceID, traces)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "reviews")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	ld := plog.NewLogs()
	records := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	now := time.Now()
	keep := map[pcommon.TraceID]bool{}
	for i := range ids {
		for j := range ids[i] {
			ids[i][j] = byte(rng.Uint32())
		}
		if i < errorTraces || sampledAt10(ids[i]) {
			keep[ids[i]] = true
		}
		for s := range 2 {
			sp := spans.AppendEmpty()
			sp.SetTraceID(ids[i])
			sp.SetSpanID(pcommon.SpanID{byte(i), byte(i >> 8), byte(s + 1), 1, 2, 3, 4, 5})
			sp.SetName("GET /reviews")
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
			if i < errorTraces && s == 1 {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
		}
		lr := records.AppendEmpty()
		lr.SetTraceID(ids[i])
		lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.Body().SetStr(fmt.Sprintf("request %d served", i))
	}
	require.Less(t, len(keep), traces/2, "the seed gives a workload where sampling drops most traces")
	require.Greater(t, len(keep), errorTraces, "and keeps some unpinned ones")
	post := func(path string, body []byte) {
		resp, err := http.Post("http://"+podIP+":4318"+path, "application/x-protobuf", bytes.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	post("/v1/traces", body)
	body, err = plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	require.NoError(t, err)
	post("/v1/logs", body)

	// What each sampler passed on at once (the collector's own counters,
	// per processor; evidence_sampling's own metrics do not tell its
	// instances apart): the profile's evidence_sampling everything, the
	// export one the kept traces' spans and log lines. The error traces'
	// spans pinned them before their log lines arrived, so those pass at
	// once too.
	metrics := func() string { _, b := get("http://"+podIP+":8888/metrics", false); return string(b) }
	items := func(m, dir, signal, proc string) float64 {
		return metricSum(m, "otelcol_processor_"+dir+"_items", map[string]string{"otel_signal": signal, "processor": proc})
	}
	require.Eventually(t, func() bool {
		m := metrics()
		return items(m, "incoming", "traces", "evidence_sampling/export") == 2*traces &&
			items(m, "incoming", "logs", "evidence_sampling/export") == traces
	}, 15*time.Second, 100*time.Millisecond, "the export pipelines got every span and log line; metrics:\n%s", grepLines(metrics(), "processor_"))
	m := metrics()
	for _, c := range []struct {
		signal, proc string
		in, out      int
	}{
		{"traces", "evidence_sampling", 2 * traces, 2 * traces},
		{"logs", "evidence_sampling", traces, traces},
		{"traces", "evidence_sampling/export", 2 * traces, 2 * len(keep)},
		{"logs", "evidence_sampling/export", traces, len(keep)},
	} {
		assert.Equal(t, float64(c.in), items(m, "incoming", c.signal, c.proc), "%s %s in", c.proc, c.signal)
		assert.Equal(t, float64(c.out), items(m, "outgoing", c.signal, c.proc), "%s %s out", c.proc, c.signal)
	}

	// "Jaeger" gets exactly the kept traces, each whole, and nothing more
	// while the others wait out decision_wait and are dropped.
	require.Eventually(t, func() bool { return len(sink.received()) == len(keep) }, 15*time.Second, 100*time.Millisecond,
		"traces at Jaeger: %d, want %d; agent output:\n%s", len(sink.received()), len(keep), &logs)
	section, err := mergedConfig(t, configOf(t, b), nil).Sub("processors::evidence_sampling/export")
	require.NoError(t, err)
	wait, err := time.ParseDuration(fmt.Sprint(section.Get("decision_wait")))
	require.NoError(t, err)
	assert.Never(t, func() bool { return len(sink.received()) > len(keep) }, wait+wait/20+2*time.Second, 200*time.Millisecond,
		"an unsampled, unpinned trace reached Jaeger")
	for id, n := range sink.received() {
		assert.True(t, keep[id], "trace %s exported but neither sampled nor pinned", id)
		assert.Equal(t, 2, n, "trace %s arrived whole", id)
	}

	// The store has every span and log line of every trace.
	for _, id := range ids {
		code, raw := get("http://"+podIP+":8686/api/v1/correlate/"+id.String(), true)
		require.Equal(t, http.StatusOK, code, "correlate %s: %s", id, raw)
		var c struct {
			Data struct {
				Trace *struct {
					Spans []json.RawMessage `json:"spans"`
				} `json:"trace"`
				Logs []json.RawMessage `json:"logs"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(raw, &c))
		require.NotNil(t, c.Data.Trace, "trace %s: no spans in the store", id)
		assert.Len(t, c.Data.Trace.Spans, 2, "trace %s: spans in the store", id)
		assert.Len(t, c.Data.Logs, 1, "trace %s: log lines in the store", id)
	}
}
