package fluentforwardexporter

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/weftobs/weft/internal/weftest"
)

// droppedMetric is the name dashboards and alerts read (prefix: the component type).
const droppedMetric = "fluent_forward.records_dropped"

// startExporterTel starts an exporter whose self-metrics the test reads.
func startExporterTel(t *testing.T, cfg *Config, host component.Host) (exporter.Logs, *componenttest.Telemetry) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := exportertest.NewNopSettings(componentType)
	set.ID = component.NewID(componentType)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	exp, err := NewFactory().CreateLogs(t.Context(), set, cfg)
	require.NoError(t, err)
	if host == nil {
		host = componenttest.NewNopHost()
	}
	require.NoError(t, exp.Start(t.Context(), host))
	return exp, tel
}

// dropped returns fluent_forward.records_dropped by reason.
func dropped(t *testing.T, tel *componenttest.Telemetry) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	m, err := tel.GetMetric(droppedMetric)
	if err != nil {
		return out // nothing recorded yet
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is a %T", droppedMetric, m.Data)
	require.True(t, sum.IsMonotonic)
	for _, dp := range sum.DataPoints {
		r, ok := dp.Attributes.Value("reason")
		require.True(t, ok, "data point without reason")
		out[r.AsString()] += dp.Value
	}
	return out
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestDropUnencodableRecords(t *testing.T) {
	srv := newFwdServer(t, modeAck)
	exp, tel := startExporterTel(t, testConfig(srv.addr()), nil)
	defer shutdownWithin(t, exp, 5*time.Second)

	ld := seqLogs(0, 10)
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	late := time.Date(2106, 2, 7, 6, 28, 16, 0, time.UTC) // 2^32 s: one past EventTime's range
	for _, i := range []int{1, 4, 9} {
		lrs.At(i).SetTimestamp(pcommon.NewTimestampFromTime(late))
	}
	lrs.At(5).SetTimestamp(pcommon.NewTimestampFromTime(late.Add(-time.Second))) // the last second that fits
	require.NoError(t, exp.ConsumeLogs(t.Context(), ld))

	require.Eventually(t, func() bool { return ackedSeqs(srv) == 7 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, map[string]int64{reasonUnencodable: 3}, dropped(t, tel))
	evs, _, _, _ := srv.snapshot()
	seqs := seqsOf(t, evs)
	for _, i := range []int64{1, 4, 9} {
		assert.Zero(t, seqs[i], "unencodable record %d sent", i)
	}
	assert.Equal(t, 1, seqs[5])
}

// TestDropUnencodableCountedOnceAcrossRetries: when an attempt fails,
// exporterhelper's retry resends only the records not acknowledged and
// without the unencodable ones, so these are counted once however many
// attempts the batch takes.
func TestDropUnencodableCountedOnceAcrossRetries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fails int // the message (1-based) the server does not acknowledge
	}{
		{"first_tag_fails", 1},
		{"second_tag_fails", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFwdServer(t, modeAck)
			srv.decide = func(n int) serverMode {
				if n == tc.fails {
					return modeNeverAck
				}
				return modeAck
			}
			exp, tel := startExporterTel(t, testConfig(srv.addr()), nil)
			defer shutdownWithin(t, exp, 5*time.Second)

			ld := twoPods(10) // seqs 0–9 one tag, 10–19 another
			late := pcommon.NewTimestampFromTime(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC))
			rls := ld.ResourceLogs()
			for _, at := range []struct{ rl, rec int }{{0, 2}, {0, 7}, {1, 0}, {1, 4}, {1, 9}} {
				rls.At(at.rl).ScopeLogs().At(0).LogRecords().At(at.rec).SetTimestamp(late)
			}
			require.NoError(t, exp.ConsumeLogs(t.Context(), ld))

			require.Eventually(t, func() bool { return ackedSeqs(srv) == 15 }, 10*time.Second, 5*time.Millisecond)
			_, messages, unacked, _ := srv.snapshot()
			assert.GreaterOrEqual(t, messages, 3, "the failed tag was sent again")
			assert.Positive(t, unacked)
			assert.Equal(t, map[string]int64{reasonUnencodable: 5}, dropped(t, tel))
			evs, _, _, _ := srv.snapshot()
			seqs := seqsOf(t, evs)
			for _, seq := range []int64{2, 7, 10, 14, 19} {
				assert.Zero(t, seqs[seq], "unencodable record %d sent", seq)
			}
		})
	}
}

func TestDropQueueFull(t *testing.T) {
	srv := newFwdServer(t, modeBlackhole)
	cfg := testConfig(srv.addr())
	q := cfg.QueueConfig.Get()
	q.BlockOnOverflow = false
	q.QueueSize = 30_000 // bytes
	q.NumConsumers = 1
	exp, tel := startExporterTel(t, cfg, nil)
	defer shutdownWithin(t, exp, 5*time.Second)

	refused := 0
	for b := range 60 {
		err := exp.ConsumeLogs(t.Context(), seqLogs(b*100, 100))
		if err != nil {
			require.ErrorIs(t, err, exporterhelper.ErrQueueIsFull)
			refused += 100
		}
	}
	require.Positive(t, refused, "the queue never filled")
	assert.Equal(t, int64(refused), dropped(t, tel)[reasonQueueFull])
}

// TestDropLargerThanQueue: a memory queue refuses a batch larger than its
// whole capacity at once, even with block_on_overflow; the caller gets the
// error and the records are counted as queue_full.
func TestDropLargerThanQueue(t *testing.T) {
	srv := newFwdServer(t, modeAck)
	cfg := testConfig(srv.addr())
	cfg.QueueConfig.Get().QueueSize = 30_000 // bytes
	exp, tel := startExporterTel(t, cfg, nil)
	defer shutdownWithin(t, exp, 5*time.Second)

	require.Error(t, exp.ConsumeLogs(t.Context(), seqLogs(0, 2000)))
	require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(2000, 10)))
	require.Eventually(t, func() bool { return ackedSeqs(srv) == 10 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, map[string]int64{reasonQueueFull: 2000}, dropped(t, tel))
}

func TestDropRetriesExhausted(t *testing.T) {
	for _, tc := range []struct {
		name    string
		enabled bool
		elapsed time.Duration
	}{
		{"retry_disabled", false, 0},
		{"max_elapsed_time", true, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(closedAddr(t))
			cfg.BackOffConfig.Enabled = tc.enabled
			cfg.BackOffConfig.MaxElapsedTime = tc.elapsed
			exp, tel := startExporterTel(t, cfg, nil)
			defer shutdownWithin(t, exp, 5*time.Second)

			for b := range 3 {
				require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(b*40, 40)))
			}
			require.Eventually(t, func() bool { return dropped(t, tel)[reasonRetriesExhausted] == 120 }, 10*time.Second, 10*time.Millisecond)
			require.Never(t, func() bool { return dropped(t, tel)[reasonRetriesExhausted] > 120 }, 200*time.Millisecond, 10*time.Millisecond)
			assert.Len(t, dropped(t, tel), 1, "no other reason")
		})
	}
}

func TestDropAtShutdownOnlyWithoutPersistentQueue(t *testing.T) {
	t.Run("memory_queue", func(t *testing.T) {
		srv := newFwdServer(t, modeNeverAck)
		exp, tel := startExporterTel(t, testConfig(srv.addr()), nil)
		for b := range 5 {
			require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(b*100, 100)))
		}
		require.Eventually(t, func() bool { _, m, _, _ := srv.snapshot(); return m >= 1 }, 5*time.Second, 5*time.Millisecond)
		shutdownWithin(t, exp, 5*time.Second)
		assert.Equal(t, map[string]int64{reasonShutdown: 500}, dropped(t, tel), "every unacknowledged record counted once")
	})
	t.Run("persistent_queue", func(t *testing.T) {
		srv := newFwdServer(t, modeNeverAck)
		st := newMemStorage()
		cfg := testConfig(srv.addr())
		cfg.QueueConfig.Get().StorageID = &memStorageID
		exp, tel := startExporterTel(t, cfg, st.host())
		for b := range 5 {
			require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(b*100, 100)))
		}
		require.Eventually(t, func() bool { _, m, _, _ := srv.snapshot(); return m >= 1 }, 5*time.Second, 5*time.Millisecond)
		shutdownWithin(t, exp, 5*time.Second)
		assert.Empty(t, dropped(t, tel), "the persistent queue keeps what was not acknowledged")
		assert.Positive(t, st.items(), "items left in storage")
	})
}

// TestDropNotPersisted: when the storage refuses writes (disk full) the
// caller gets the error and the records are counted; once space returns
// new batches are accepted and delivered.
func TestDropNotPersisted(t *testing.T) {
	srv := newFwdServer(t, modeAck)
	st := newMemStorage()
	cfg := testConfig(srv.addr())
	cfg.QueueConfig.Get().StorageID = &memStorageID
	exp, tel := startExporterTel(t, cfg, st.host())
	defer shutdownWithin(t, exp, 5*time.Second)

	require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(0, 100)))
	st.full.Store(true)
	err := exp.ConsumeLogs(t.Context(), seqLogs(100, 50))
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.ErrorIs(t, err, storage.ErrStorageFull)
	st.full.Store(false)
	require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(150, 100)))

	require.Eventually(t, func() bool { return ackedSeqs(srv) == 200 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, map[string]int64{reasonNotPersisted: 50}, dropped(t, tel))
	evs, _, _, _ := srv.snapshot()
	seqs := seqsOf(t, evs)
	for i := int64(100); i < 150; i++ {
		assert.Zero(t, seqs[i], "record %d was refused, yet sent", i)
	}
}

var memStorageID = component.MustNewID("mem_storage")

// memStorage is a storage extension in memory. While full is set, a batch
// that stores a queue item fails with ENOSPC, while the queue's bookkeeping
// (metadata, deletes) still succeeds, as with weft_file_storage's reserve.
// (A store that refused the bookkeeping too would lose queued items:
// exporterhelper's persistent queue deletes an item whose read-time
// metadata update fails.)
type memStorage struct {
	component.StartFunc
	component.ShutdownFunc
	full atomic.Bool
	mu   sync.Mutex
	kv   map[string][]byte
}

func newMemStorage() *memStorage { return &memStorage{kv: map[string][]byte{}} }

func (s *memStorage) host() component.Host {
	return weftest.Host{memStorageID: s}
}

func (s *memStorage) GetClient(context.Context, component.Kind, component.ID, string) (storage.Client, error) {
	return memClient{s}, nil
}

// items counts stored queue items (every key but the queue's metadata).
func (s *memStorage) items() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.kv {
		if isItemKey(k) {
			n++
		}
	}
	return n
}

// isItemKey: the persistent queue stores items under decimal keys.
func isItemKey(k string) bool { return k != "" && k[0] >= '0' && k[0] <= '9' }

type memClient struct{ s *memStorage }

func (c memClient) Get(ctx context.Context, key string) ([]byte, error) {
	op := storage.GetOperation(key)
	err := c.Batch(ctx, op)
	return op.Value, err
}

func (c memClient) Set(ctx context.Context, key string, v []byte) error {
	return c.Batch(ctx, storage.SetOperation(key, v))
}

func (c memClient) Delete(ctx context.Context, key string) error {
	return c.Batch(ctx, storage.DeleteOperation(key))
}

func (c memClient) Batch(_ context.Context, ops ...*storage.Operation) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for _, op := range ops {
		if op.Type == storage.Set && isItemKey(op.Key) && c.s.full.Load() {
			return errors.Join(storage.ErrStorageFull, &os.PathError{Op: "write", Path: "queue", Err: syscall.ENOSPC})
		}
	}
	for _, op := range ops {
		switch op.Type {
		case storage.Get:
			op.Value = c.s.kv[op.Key]
		case storage.Set:
			c.s.kv[op.Key] = append([]byte(nil), op.Value...)
		case storage.Delete:
			delete(c.s.kv, op.Key)
		}
	}
	return nil
}

func (memClient) Close(context.Context) error { return nil }
