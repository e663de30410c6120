package tracecontextprocessor

import (
	"context"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/simnode"
)

// TestSimnodeLogs runs the simulated node, reads the CRI logs it wrote and
// checks every message against the spans it exported: each stdout message
// (app JSON, logback JSON, logfmt, function traceparent, Istio JSON access
// log with a UUID request_id) yields the trace and span ID of a real span;
// the stderr stack traces yield nothing.
func TestSimnodeLogs(t *testing.T) {
	var mu sync.Mutex
	spans := map[string]map[string]bool{} // trace hex -> span hexes
	export := func(_ context.Context, td ptrace.Traces) error {
		mu.Lock()
		defer mu.Unlock()
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					tr, s := sp.TraceID(), sp.SpanID()
					th := hex.EncodeToString(tr[:])
					if spans[th] == nil {
						spans[th] = map[string]bool{}
					}
					spans[th][hex.EncodeToString(s[:])] = true
				}
			}
		}
		return nil
	}
	n, err := simnode.Start(simnode.Options{
		Dir: t.TempDir(), Rate: 4000, Seed: 7, Export: export,
		ErrorBurst: true, ErrorAfter: time.Millisecond, ErrorFor: time.Hour,
		FlushInterval: 20 * time.Millisecond,
	})
	require.NoError(t, err)
	require.NoError(t, n.Run(t.Context(), 1500*time.Millisecond))
	require.NoError(t, n.Close())

	e := newExtractor(FieldsConfig{})
	var stdout, stderr, found int
	logged := map[string]bool{}
	err = filepath.WalkDir(n.PodsDir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".log") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if len(b) == 0 {
			return nil
		}
		var partial strings.Builder
		for _, rec := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			// <RFC3339Nano> <stream> <P|F> <message>
			f := strings.SplitN(rec, " ", 4)
			require.Len(t, f, 4, "CRI record in %s: %q", path, rec)
			partial.WriteString(f[3])
			if f[2] == "P" {
				continue
			}
			msg := partial.String()
			partial.Reset()
			got := extractLine(e, msg)
			if f[1] == "stderr" {
				stderr++
				assert.Equal(t, none, got, "stack trace line: %s", msg)
				continue
			}
			stdout++
			if !assert.NotEmpty(t, got.trace, "no ID in %s: %.300s", path, msg) {
				continue
			}
			found++
			logged[got.trace] = true
			mu.Lock()
			known := spans[got.trace]
			mu.Unlock()
			if assert.NotNil(t, known, "trace %s is not a span's trace: %.300s", got.trace, msg) && got.span != "" {
				assert.True(t, known[got.span], "span %s is not a span of trace %s: %.300s", got.span, got.trace, msg)
			}
		}
		return nil
	})
	require.NoError(t, err)
	t.Logf("stdout messages %d, IDs found %d, stderr lines %d, traces %d, traces logged %d", stdout, found, stderr, len(spans), len(logged))
	assert.Greater(t, stdout, 1000)
	assert.Positive(t, stderr, "the error burst should write stack traces")
	assert.Equal(t, stdout, found)
	for tr := range spans {
		assert.True(t, logged[tr], "trace %s has spans but no log line", tr)
	}
}
