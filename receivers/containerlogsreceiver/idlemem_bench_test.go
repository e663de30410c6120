package containerlogsreceiver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// BenchmarkIdleFileMemory measures what an idle tailed file costs: it
// starts the receiver on 1000 files of one 200-byte line each, waits until
// every line arrived and a few polls found nothing new, and reports the
// growth of HeapInuse and StackInuse (after a GC) divided by the number of
// files. b.N is ignored: run it with -benchtime 1x.
func BenchmarkIdleFileMemory(b *testing.B) {
	const files = 1000
	dir := b.TempDir()
	for i := range files {
		p := filepath.Join(dir, fmt.Sprintf("ns_p%04d_uid", i), "c", "0.log")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, line200, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	cfg := createDefaultConfig().(*Config)
	cfg.Include = []string{filepath.Join(dir, "*", "*", "*.log")}
	cfg.StartAt = startAtBeginning
	var records atomic.Int64 // a sink that keeps nothing: only the receiver's memory is measured
	count, err := consumer.NewLogs(func(_ context.Context, ld plog.Logs) error {
		records.Add(int64(ld.LogRecordCount()))
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	r, err := newReceiver(receivertest.NewNopSettings(component.MustNewType(typeStr)), cfg, count)
	if err != nil {
		b.Fatal(err)
	}
	before := heapAndStack()
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = r.Shutdown(context.Background()) }()
	for records.Load() < files {
		time.Sleep(10 * time.Millisecond)
	}
	// Idle is what is measured: let every tailer find nothing new a few times.
	time.Sleep(5 * cfg.PollInterval)
	for b.Loop() {
	}
	after := heapAndStack()
	b.ReportMetric(float64(after[0]-before[0])/files, "heap-B/file")
	b.ReportMetric(float64(after[1]-before[1])/files, "stack-B/file")
}

func heapAndStack() [2]int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return [2]int64{int64(ms.HeapInuse), int64(ms.StackInuse)}
}
