package weftfilestorageextension

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
)

func benchClient(b *testing.B, fsync bool) *fileClient {
	b.Helper()
	tel, err := newTelemetry(componenttest.NewNopTelemetrySettings().MeterProvider)
	require.NoError(b, err)
	cfg := createDefaultConfig().(*Config)
	cfg.Fsync = fsync
	c, err := openClient(b.TempDir()+"/q.wlog", "q", openOSFile, cfg, counterFor("logs"), tel, zap.NewNop())
	require.NoError(b, err)
	b.Cleanup(func() { _ = c.Close(b.Context()) })
	return c
}

// BenchmarkQueueCycle is one queue item's life as exporterhelper's
// persistent queue drives it: store (metadata + item), read (metadata +
// get), remove (metadata + delete). The item holds 100 log records.
func BenchmarkQueueCycle(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		b.Run("fsync="+strconv.FormatBool(fsync), func(b *testing.B) {
			c := benchClient(b, fsync)
			item := logsValue(b, "a log line of some typical length, with a trace id 4bf92f3577b34da6a3ce929d0e0e4736", 100)
			meta := make([]byte, 40)
			ctx := b.Context()
			b.SetBytes(int64(len(item)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				key := strconv.Itoa(i)
				i++
				if err := c.Batch(ctx, storage.SetOperation("qmv0", meta), storage.SetOperation(key, item)); err != nil {
					b.Fatal(err)
				}
				get := storage.GetOperation(key)
				if err := c.Batch(ctx, storage.SetOperation("qmv0", meta), get); err != nil || len(get.Value) != len(item) {
					b.Fatal(err)
				}
				if err := c.Batch(ctx, storage.SetOperation("qmv0", meta), storage.DeleteOperation(key)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkReplay opens a file of 1000 queued items of 100 records each.
func BenchmarkReplay(b *testing.B) {
	c := benchClient(b, false)
	item := logsValue(b, "a log line of some typical length", 100)
	for i := range 1000 {
		require.NoError(b, c.Batch(b.Context(), storage.SetOperation("qmv0", []byte("m")), storage.SetOperation(strconv.Itoa(i), item)))
	}
	path := c.path
	require.NoError(b, c.Close(b.Context()))
	tel, err := newTelemetry(componenttest.NewNopTelemetrySettings().MeterProvider)
	require.NoError(b, err)
	cfg := createDefaultConfig().(*Config)
	b.SetBytes(int64(1000 * len(item)))
	b.ReportAllocs()
	for b.Loop() {
		c, err := openClient(path, "q", openOSFile, cfg, noCount, tel, zap.NewNop())
		if err != nil || len(c.index) != 1001 {
			b.Fatal(err, len(c.index))
		}
		_ = c.Close(b.Context())
	}
}
