package simnode

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// spanSink collects exported spans.
type spanSink struct {
	mu     sync.Mutex
	traces map[string][]ptrace.Span // trace ID (hex) → spans
	fail   bool
}

func (s *spanSink) export(_ context.Context, td ptrace.Traces) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("backend down")
	}
	if s.traces == nil {
		s.traces = map[string][]ptrace.Span{}
	}
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				sp := spans.At(k)
				id := sp.TraceID().String()
				s.traces[id] = append(s.traces[id], sp)
			}
		}
	}
	return nil
}

func startNode(t *testing.T, opts Options) (*Node, *spanSink) {
	t.Helper()
	sink := &spanSink{}
	opts.Dir = t.TempDir()
	if opts.Export == nil {
		opts.Export = sink.export
	}
	n, err := Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	return n, sink
}

// generate simulates count requests at explicit times, without a clock.
func generate(t *testing.T, n *Node, at time.Time, count int) {
	t.Helper()
	for i := range count {
		n.step(at.Add(time.Duration(i) * time.Millisecond))
	}
	require.NoError(t, n.flush(at.Add(time.Duration(count)*time.Millisecond)))
}

var criLine = regexp.MustCompile(`^(\S+) (stdout|stderr) ([PF]) (.*)$`)

type record struct {
	file   string
	ts     time.Time
	stream string
	tag    string
	msg    string
}

func readRecords(t *testing.T, root string) []record {
	t.Helper()
	var out []record
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			m := criLine.FindStringSubmatch(sc.Text())
			require.NotNil(t, m, "%s: not a CRI record: %q", path, sc.Text())
			ts, err := time.Parse(time.RFC3339Nano, m[1])
			require.NoError(t, err, "%s: bad timestamp", path)
			out = append(out, record{file: path, ts: ts, stream: m[2], tag: m[3], msg: m[4]})
		}
		return sc.Err()
	})
	require.NoError(t, err)
	return out
}

var traceIDInLine = regexp.MustCompile(`(?:trace_id"?[=:]"?|traceId":"|traceparent":"00-)([0-9a-f]{32})`)

func TestLogsSpansAndExemplarsShareTraceIDs(t *testing.T) {
	n, sink := startNode(t, Options{Seed: 1})
	generate(t, n, time.Now(), 400)

	// Scrape the exemplars while the endpoints are up.
	var exemplars []exemplar.Exemplar
	for _, e := range n.Endpoints() {
		if strings.HasSuffix(e.URL, "/metrics") && e.Container != "queue-proxy" {
			exemplars = append(exemplars, scrapeExemplars(t, e.URL)...)
		}
	}
	require.NoError(t, n.Close()) // delivers the queued spans

	records := readRecords(t, n.PodsDir())
	require.NotEmpty(t, records)
	assert.Equal(t, n.Stats().Records, int64(len(records)), "Stats.Records counts every record written")

	// Every trace ID in a log line belongs to exported spans.
	logTraceIDs := map[string]bool{}
	for _, r := range records {
		for _, m := range traceIDInLine.FindAllStringSubmatch(r.msg, -1) {
			logTraceIDs[m[1]] = true
		}
	}
	require.NotEmpty(t, logTraceIDs)
	for id := range logTraceIDs {
		assert.Contains(t, sink.traces, id, "trace %s is logged but has no spans", id)
	}
	// And every trace has log lines.
	for id := range sink.traces {
		assert.True(t, logTraceIDs[id], "trace %s has spans but no log line", id)
	}
	assert.Equal(t, n.Stats().Requests, int64(len(sink.traces)), "one trace per request")

	// Exemplars served in OpenMetrics point at exported traces.
	require.NotEmpty(t, exemplars)
	for _, ex := range exemplars {
		assert.Contains(t, sink.traces, ex.Labels.Get("trace_id"), "exemplar points at unknown trace")
		assert.Len(t, ex.Labels.Get("span_id"), 16)
	}
}

func scrapeExemplars(t *testing.T, url string) []exemplar.Exemplar {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	ct := resp.Header.Get("Content-Type")
	require.Contains(t, ct, "application/openmetrics-text")
	p, err := textparse.New(body, ct, nil, textparse.ParserOptions{})
	require.NoError(t, err)
	var out []exemplar.Exemplar
	for {
		et, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if et != textparse.EntrySeries {
			continue
		}
		var ex exemplar.Exemplar
		for p.Exemplar(&ex) {
			out = append(out, ex)
		}
	}
	return out
}

func TestEnvoyStatsInTextFormat(t *testing.T) {
	n, _ := startNode(t, Options{Seed: 2})
	generate(t, n, time.Now(), 50)
	var url string
	for _, e := range n.Endpoints() {
		if strings.Contains(e.Pod, "reviews-v1") && e.Container == "istio-proxy" {
			url = e.URL
		}
	}
	require.True(t, strings.HasSuffix(url, "/stats/prometheus"))
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	assert.Contains(t, string(body), `istio_requests_total{connection_security_policy="mutual_tls"`)
	assert.Contains(t, string(body), `destination_workload="reviews-v1"`)
	assert.Contains(t, string(body), `reporter="destination"`)
	assert.Contains(t, string(body), "istio_request_duration_milliseconds_bucket")
}

func TestErrorBurstInReviewsV2(t *testing.T) {
	n, sink := startNode(t, Options{Seed: 3, ErrorBurst: true, ErrorAfter: time.Nanosecond, ErrorFor: time.Hour})
	generate(t, n, n.started.Add(time.Second), 400)
	require.NoError(t, n.Close())

	var failed, ok int
	for _, spans := range sink.traces {
		for _, sp := range spans {
			if sp.Kind() != ptrace.SpanKindServer || sp.Name() != "GET /reviews/{id}" {
				continue
			}
			if sp.Status().Code() == ptrace.StatusCodeError {
				failed++
				require.Positive(t, sp.Events().Len(), "a failed server span carries an exception event")
			} else {
				ok++
			}
		}
	}
	assert.Positive(t, failed)
	assert.Positive(t, ok, "reviews-v1 keeps answering")

	var stack, errLines int
	for _, r := range readRecords(t, n.PodsDir()) {
		if !strings.Contains(r.file, "reviews-v2") {
			continue
		}
		if strings.HasPrefix(r.msg, "\tat ") {
			assert.Equal(t, "stderr", r.stream)
			stack++
		}
		if strings.Contains(r.msg, `"level":"ERROR"`) {
			errLines++
		}
	}
	assert.Positive(t, errLines)
	assert.Equal(t, 4*errLines, stack, "each error is followed by its stack trace")
}

func TestNoErrorsWithoutBurst(t *testing.T) {
	n, sink := startNode(t, Options{Seed: 3})
	generate(t, n, time.Now().Add(time.Minute), 300)
	require.NoError(t, n.Close())
	for _, spans := range sink.traces {
		for _, sp := range spans {
			assert.NotEqual(t, ptrace.StatusCodeError, sp.Status().Code())
		}
	}
}

func TestLongLineSplitIntoPartialRecords(t *testing.T) {
	dir := t.TempDir()
	lf, err := openLogFile(filepath.Join(dir, "c", "0.log"))
	require.NoError(t, err)
	msg := bytes.Repeat([]byte("0123456789"), 4000) // 40,000 bytes
	ts := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
	require.Equal(t, 3, lf.write(ts, "stdout", msg))
	require.NoError(t, lf.close())

	records := readRecords(t, dir)
	require.Len(t, records, 3)
	assert.Equal(t, []string{"P", "P", "F"}, []string{records[0].tag, records[1].tag, records[2].tag})
	var joined strings.Builder
	for _, r := range records {
		assert.Equal(t, ts, r.ts)
		assert.LessOrEqual(t, len(r.msg), criMaxLine)
		joined.WriteString(r.msg)
	}
	assert.Equal(t, string(msg), joined.String())
}

func TestRotationKeepsKubeletLayout(t *testing.T) {
	n, _ := startNode(t, Options{Seed: 4, RotateSize: 4096})
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i := range 20 {
		// One second apart, so rotated names differ as the kubelet's do.
		generate(t, n, at.Add(time.Duration(i)*time.Second), 20)
	}
	require.NoError(t, n.Close())
	assert.Positive(t, n.Stats().Rotations)

	rotatedName := regexp.MustCompile(`^0\.log\.\d{8}-\d{6}(\.\d+)?$`)
	dirs, err := filepath.Glob(filepath.Join(n.PodsDir(), "*", "*"))
	require.NoError(t, err)
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		require.NoError(t, err)
		live := false
		rotated := 0
		for _, e := range entries {
			if e.Name() == "0.log" {
				live = true
				continue
			}
			assert.Regexp(t, rotatedName, e.Name())
			rotated++
		}
		assert.True(t, live, "%s has no live 0.log", d)
		assert.LessOrEqual(t, rotated, keepRotated, "%s keeps too many rotated files", d)
	}
}

func TestExportFailureIsCountedNotFatal(t *testing.T) {
	sink := &spanSink{fail: true}
	n, _ := startNode(t, Options{Seed: 5, Export: sink.export})
	generate(t, n, time.Now(), 20)
	require.NoError(t, n.Close())
	st := n.Stats()
	assert.Zero(t, st.SpansSent)
	assert.Positive(t, st.SpansDropped)
	assert.Equal(t, "backend down", st.LastExportErr)
	assert.Contains(t, st.Summary(time.Second), `last_export_error="backend down"`)
}

func TestRunStopsWithContextAndFlushes(t *testing.T) {
	n, _ := startNode(t, Options{Seed: 6, Rate: 5000, FlushInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, 0) }()
	require.Eventually(t, func() bool { return n.Stats().Records > 100 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, n.Close())
	assert.Equal(t, n.Stats().Records, int64(len(readRecords(t, n.PodsDir()))), "everything generated is on disk")
}

func TestStartRequiresDir(t *testing.T) {
	_, err := Start(Options{})
	require.ErrorContains(t, err, "Dir")
}

func TestPodUIDIsStableAndUUIDShaped(t *testing.T) {
	p := topology(1)[depReviewsV2]
	assert.Equal(t, p.uid(), p.uid())
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, p.uid())
	assert.NotEqual(t, p.uid(), topology(1)[depReviewsV1].uid())
}

// BenchmarkGenerate measures how many log records per second the simulation
// can write; the demo's --rate must reach at least 20,000.
func BenchmarkGenerate(b *testing.B) {
	n, err := Start(Options{Dir: b.TempDir(), Seed: 7, Export: func(context.Context, ptrace.Traces) error { return nil }})
	require.NoError(b, err)
	defer n.Close()
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	var records int
	for i := range b.N {
		records += n.step(now)
		if i%200 == 199 {
			require.NoError(b, n.flush(now))
		}
	}
	require.NoError(b, n.flush(now))
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}
