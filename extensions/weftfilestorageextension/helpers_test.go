package weftfilestorageextension

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	pdatareq "go.opentelemetry.io/collector/pdata/xpdata/request"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var ownerID = component.MustNewID("fluent_forward")

// harness is an extension over a directory with readable self-metrics.
type harness struct {
	t   *testing.T
	dir string
	tel *componenttest.Telemetry
	ext *fileStorage
	cfg *Config
}

func newHarness(t *testing.T, dir string, tune func(*Config)) *harness {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Directory = dir
	cfg.Fsync = false // tests do not need power-loss safety
	if tune != nil {
		tune(cfg)
	}
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := extensiontest.NewNopSettings(componentType)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	ext, err := newExtension(cfg, set)
	require.NoError(t, err)
	require.NoError(t, ext.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return &harness{t: t, dir: dir, tel: tel, ext: ext, cfg: cfg}
}

func (h *harness) client(name string) storage.Client {
	h.t.Helper()
	c, err := h.ext.GetClient(h.t.Context(), component.KindExporter, ownerID, name)
	require.NoError(h.t, err)
	return c
}

// counter sums a self-metric's data points with the given reason ("" = all).
func (h *harness) counter(name, reason string) int64 {
	h.t.Helper()
	m, err := h.tel.GetMetric(name)
	if err != nil {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(h.t, ok)
	var n int64
	for _, dp := range sum.DataPoints {
		if r, _ := dp.Attributes.Value("reason"); reason == "" || r.AsString() == reason {
			n += dp.Value
		}
	}
	return n
}

// logsValue encodes n log records the way exporterhelper's persistent
// queue stores a logs request; bodies are "<tag> <i>".
func logsValue(t testing.TB, tag string, n int) []byte {
	t.Helper()
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := range n {
		lrs.AppendEmpty().Body().SetStr(fmt.Sprintf("%s %d", tag, i))
	}
	b, err := pdatareq.MarshalLogs(context.Background(), ld)
	require.NoError(t, err)
	return b
}

// quotaFile makes writes past a shared byte budget fail with ENOSPC, as a
// full file system does (a write is cut where the space ends).
type quotaFile struct {
	segmentFile
	q *quota
}

type quota struct {
	mu    sync.Mutex
	limit int64                // bytes all files together may use
	sizes map[*quotaFile]int64 // current size of each open file
}

func (q *quota) setLimit(n int64) {
	q.mu.Lock()
	q.limit = n
	q.mu.Unlock()
}

func (q *quota) opener() func(string) (segmentFile, error) {
	return func(path string) (segmentFile, error) {
		f, err := openOSFile(path)
		if err != nil {
			return nil, err
		}
		size, err := f.Size()
		if err != nil {
			return nil, err
		}
		qf := &quotaFile{segmentFile: f, q: q}
		q.mu.Lock()
		q.sizes[qf] = size
		q.mu.Unlock()
		return qf, nil
	}
}

func (f *quotaFile) WriteAt(p []byte, off int64) (int, error) {
	f.q.mu.Lock()
	var used int64
	for _, s := range f.q.sizes {
		used += s
	}
	cur := f.q.sizes[f]
	grow := max(off+int64(len(p))-cur, 0)
	allowed := len(p)
	var err error
	if grow > 0 && used+grow > f.q.limit {
		free := max(f.q.limit-used, 0)
		allowed = int(max(min(int64(len(p)), cur+free-off), 0))
		err = &os.PathError{Op: "write", Path: "quota", Err: syscall.ENOSPC}
	}
	n, werr := f.segmentFile.WriteAt(p[:allowed], off)
	if end := off + int64(n); end > cur {
		f.q.sizes[f] = end
	}
	f.q.mu.Unlock()
	if werr != nil {
		return n, werr
	}
	return n, err
}

func (f *quotaFile) Truncate(size int64) error {
	f.q.mu.Lock()
	defer f.q.mu.Unlock()
	if err := f.segmentFile.Truncate(size); err != nil {
		return err
	}
	f.q.sizes[f] = size
	return nil
}

func (f *quotaFile) Close() error {
	f.q.mu.Lock()
	delete(f.q.sizes, f)
	f.q.mu.Unlock()
	return f.segmentFile.Close()
}
