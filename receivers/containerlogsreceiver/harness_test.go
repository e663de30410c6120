package containerlogsreceiver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weftobs/weft/internal/nodestatus"
	"github.com/weftobs/weft/internal/nodestatus/nodestatustest"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// sink is a consumer that keeps what it accepted and can be closed, in
// which case it refuses everything (the receiver must pause and retry).
type sink struct {
	mu      sync.Mutex
	closed  bool
	refused int
	recs    []rec
	batches int
}

type rec struct {
	body       string
	stream     string
	path       string
	ts         int64
	observed   int64
	resource   map[string]any
	truncated  bool
	incomplete bool
}

var errBlocked = errors.New("sink blocked")

func (s *sink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *sink) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.refused++
		return errBlocked
	}
	s.batches++
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		res := rl.Resource().Attributes().AsRaw()
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				r := rec{body: lr.Body().Str(), ts: int64(lr.Timestamp()), observed: int64(lr.ObservedTimestamp()), resource: res}
				if v, ok := lr.Attributes().Get("log.iostream"); ok {
					r.stream = v.Str()
				}
				if v, ok := lr.Attributes().Get("log.file.path"); ok {
					r.path = v.Str()
				}
				if v, ok := lr.Attributes().Get(attrTruncated); ok {
					r.truncated = v.Bool()
				}
				if v, ok := lr.Attributes().Get(attrIncomplete); ok {
					r.incomplete = v.Bool()
				}
				s.recs = append(s.recs, r)
			}
		}
	}
	return nil
}

func (s *sink) setClosed(c bool) {
	s.mu.Lock()
	s.closed = c
	s.mu.Unlock()
}

func (s *sink) records() []rec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rec(nil), s.recs...)
}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

func (s *sink) refusals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// testCfg is a configuration for tests: fast polling, read from the start.
func testCfg(include ...string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Include = include
	cfg.StartAt = startAtBeginning
	cfg.PollInterval = 50 * time.Millisecond
	cfg.RescanInterval = 50 * time.Millisecond
	cfg.FlushTimeout = 500 * time.Millisecond
	return cfg
}

// forNotifyModes runs test with change notifications (the default) and
// without them (no inotify instance: every file is polled every
// poll_interval, the fall back).
func forNotifyModes(t *testing.T, test func(t *testing.T, mode func(*logsReceiver))) {
	t.Helper()
	t.Run("notify=inotify", func(t *testing.T) { test(t, func(*logsReceiver) {}) })
	t.Run("notify=unavailable", func(t *testing.T) { test(t, withoutNotifications) })
}

// withoutNotifications makes the creation of the inotify watcher fail.
func withoutNotifications(r *logsReceiver) {
	r.watch.newFS = func() (*notifier, error) { return nil, syscall.EMFILE }
}

type running struct {
	r      *logsReceiver
	tel    *componenttest.Telemetry
	status *nodestatus.Board // where the receiver publishes its files
}

// startReceiver starts a receiver; setup, if any, runs before Start (to set
// test hooks such as the lister's or the logger).
func startReceiver(t *testing.T, cfg *Config, next consumer.Logs, setup ...func(*logsReceiver)) *running {
	t.Helper()
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	set := receivertest.NewNopSettings(component.MustNewType(typeStr))
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.ID = component.NewID(component.MustNewType(typeStr)) // stable across restarts, as in a real collector
	r, err := newReceiver(set, cfg, next)
	require.NoError(t, err)
	for _, f := range setup {
		f(r)
	}
	host, status := storageHost(), &nodestatustest.Owner{}
	host[nodestatustest.ID] = status
	require.NoError(t, r.Start(t.Context(), host))
	run := &running{r: r, tel: tel, status: &status.Board}
	t.Cleanup(func() { run.stop(t) })
	return run
}

func (run *running) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, run.r.Shutdown(context.Background()))
	require.NoError(t, run.r.Shutdown(context.Background()), "second Shutdown")
}

// counter sums a self-metric over all attribute sets (filtered by reason
// when reason is not empty).
func (run *running) counter(t *testing.T, name, reason string) int64 {
	t.Helper()
	m, err := run.tel.GetMetric(name)
	if err != nil {
		return 0
	}
	var total int64
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			if reason != "" {
				if v, ok := dp.Attributes.Value("reason"); !ok || v.AsString() != reason {
					continue
				}
			}
			total += dp.Value
		}
	default:
		t.Fatalf("metric %s has type %T", name, m.Data)
	}
	return total
}

// criLine formats one CRI line.
func criLine(ts time.Time, stream, tag, msg string) string {
	return ts.UTC().Format(time.RFC3339Nano) + " " + stream + " " + tag + " " + msg + "\n"
}

// podLogPath creates the kubelet directory layout under dir.
func podLogPath(t *testing.T, dir, ns, pod, container string) string {
	t.Helper()
	d := filepath.Join(dir, ns+"_"+pod+"_uid-"+pod, container)
	require.NoError(t, os.MkdirAll(d, 0o755))
	return filepath.Join(d, "0.log")
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// seqLines returns n CRI lines "<tag>-<i>" for i in [from, from+n).
func seqLines(tag string, from, n int) string {
	var b strings.Builder
	now := time.Now()
	for i := from; i < from+n; i++ {
		b.WriteString(criLine(now, "stdout", "F", fmt.Sprintf("%s-%d", tag, i)))
	}
	return b.String()
}

// checkExactlyOnce verifies that for each tag the sink got 0..n-1 exactly
// once and in order.
func checkExactlyOnce(t *testing.T, recs []rec, n int, tags ...string) {
	t.Helper()
	next := map[string]int{}
	for _, r := range recs {
		i := strings.LastIndexByte(r.body, '-')
		require.Positive(t, i, "unexpected body %q", r.body)
		tag := r.body[:i]
		seq, err := strconv.Atoi(r.body[i+1:])
		require.NoError(t, err, r.body)
		require.Equal(t, next[tag], seq, "tag %s: got %d, want %d (duplicate, loss or reorder)", tag, seq, next[tag])
		next[tag]++
	}
	for _, tag := range tags {
		require.Equal(t, n, next[tag], "tag %s: lines received", tag)
	}
}

func receivertestSettings() receiver.Settings {
	return receivertest.NewNopSettings(component.MustNewType(typeStr))
}
