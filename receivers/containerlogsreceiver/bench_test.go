package containerlogsreceiver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// line200 is a 200-byte CRI line (with its newline), the benchmark's unit.
var line200 = func() []byte {
	head := "2024-05-06T07:08:09.123456789Z stdout F "
	msg := `{"level":"info","ts":"2024-05-06T07:08:09Z","msg":"GET /api/v1/cart 200","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","dur_ms":12}`
	l := head + msg
	l += strings.Repeat("x", 199-len(l)) + "\n"
	return []byte(l)
}()

func BenchmarkParseCRI(b *testing.B) {
	line := line200[:len(line200)-1]
	b.ReportAllocs()
	b.SetBytes(int64(len(line200)))
	var e entry
	for b.Loop() {
		if err := parseCRI(line, &e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseDocker(b *testing.B) {
	line := []byte(`{"log":"{\"level\":\"info\",\"msg\":\"GET /api/v1/cart 200\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"dur_ms\":12}\n","stream":"stdout","time":"2024-05-06T07:08:09.123456789Z"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	var p dockerParser
	var e entry
	for b.Loop() {
		if err := p.parse(line, &e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAssemblePartial(b *testing.B) {
	chunk := bytes.Repeat([]byte("p"), 16*1024)
	a := assembler{maxLen: 1 << 20}
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk)) * 4)
	for b.Loop() {
		for i := range 4 {
			e := entry{stream: streamStdout, partial: i < 3, msg: chunk}
			a.add(&e, 0, now)
		}
	}
}

// BenchmarkFileToConsumer measures the whole path for 200-byte CRI lines:
// read from a file, split, parse, build pdata records with resource and
// record attributes, send to a no-op consumer in batches and save a
// checkpoint per batch. ns/op is per line; cpu-ns/line is the process CPU
// time (user+system) per line. store=checkpoint_directory writes each
// batch's checkpoint to a file with fsync (1000 lines per batch).
func BenchmarkFileToConsumer(b *testing.B) {
	b.Run("store=memory", func(b *testing.B) { benchFileToConsumer(b, "") })
	b.Run("store=checkpoint_directory", func(b *testing.B) { benchFileToConsumer(b, b.TempDir()) })
}

func benchFileToConsumer(b *testing.B, ckptDir string) {
	dir := b.TempDir()
	path := filepath.Join(dir, "ns_pod_uid", "c", "0.log")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	const fileLines = 200_000
	content := bytes.Repeat(line200, fileLines)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		b.Fatal(err)
	}
	cfg := createDefaultConfig().(*Config)
	set := receivertest.NewNopSettings(component.MustNewType(typeStr))
	r, err := newReceiver(set, cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	r.ckpt.store = newMemStore()
	if ckptDir != "" {
		if r.ckpt.store, err = openFileStore(ckptDir, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(line200)))
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	done := 0
	for done < b.N {
		n := min(fileLines, b.N-done)
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		r.tel.openFiles.Add(ctx, 1)
		t := r.newTailer(path, fmt.Sprintf("k%d", done), f, &limitReader{f: f, n: int64(n) * int64(len(line200))}, fileID{}, 0, false)
		t.run(ctx)
		done += n
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/line")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lines/s")
}

type limitReader struct {
	f *os.File
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, nil
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= int64(n)
	return n, err
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// idleWindow is the wall time over which BenchmarkIdleFilesCPU measures.
const idleWindow = 10 * time.Second

// BenchmarkIdleFilesCPU measures what idle tailed files cost: it starts the
// real receiver (default configuration) on 1,000 files of one line each,
// one pod directory per file as the kubelet lays them out, all last
// changed an hour ago; it waits until every line arrived, then takes the
// process's CPU time (utime+stime, getrusage) over idleWindow of wall time
// while nothing is written. cpu-%-core/1000-files is the share of one core
// that 1,000 idle files cost. notify=inotify is the default;
// notify=unavailable makes the inotify watcher's creation fail, so every
// file is polled every poll_interval (the fall back). b.N is ignored (run
// it with -benchtime 1x); ns/op means nothing.
func BenchmarkIdleFilesCPU(b *testing.B) {
	b.Run("notify=inotify", func(b *testing.B) { benchIdleFilesCPU(b, nil) })
	b.Run("notify=unavailable", func(b *testing.B) {
		benchIdleFilesCPU(b, func() (*notifier, error) { return nil, syscall.EMFILE })
	})
}

func benchIdleFilesCPU(b *testing.B, newFS func() (*notifier, error)) {
	const files = 1000
	r, _ := startIdleReceiver(b, files, newFS)
	defer func() { _ = r.Shutdown(context.Background()) }()
	time.Sleep(time.Second) // let the first rescans settle
	cpu0, start := cpuTime(), time.Now()
	time.Sleep(idleWindow) // idle time is what is measured
	cpu, wall := cpuTime()-cpu0, time.Since(start)
	for b.Loop() { // b.N is ignored
	}
	b.ReportMetric(100*float64(cpu)/float64(wall)*1000/files, "cpu-%-core/1000-files")
}

// BenchmarkRescanIdleFiles measures one rescan of 1,000 followed idle
// files in 2,001 watched directories (the kubelet's layout, see
// BenchmarkIdleFilesCPU): with no notification since the last one, no
// directory or file is stat'ed. ns/op is per rescan.
func BenchmarkRescanIdleFiles(b *testing.B) {
	const files = 1000
	r, records := newIdleReceiver(b, files, nil)
	r.ckpt.store = newMemStore()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	defer func() { _ = r.Shutdown(context.Background()) }()
	r.watch.start(ctx, &r.wg)
	r.scan(ctx, true) // the discovery goroutine is not started: this one scans
	for records.Load() < files {
		time.Sleep(10 * time.Millisecond)
	}
	r.scan(ctx, false)
	b.ReportAllocs()
	for b.Loop() {
		r.scan(ctx, false)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/files, "ns/file")
}

// startIdleReceiver starts the receiver on idle files (newIdleReceiver)
// and returns once every line arrived.
func startIdleReceiver(b *testing.B, files int, newFS func() (*notifier, error)) (*logsReceiver, *atomic.Int64) {
	b.Helper()
	r, records := newIdleReceiver(b, files, newFS)
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	for records.Load() < int64(files) {
		time.Sleep(10 * time.Millisecond)
	}
	return r, records
}

// newIdleReceiver makes files files of one line each, one pod directory
// per file, all last changed an hour ago, and a receiver (default
// configuration, reading from the beginning) that counts the records it
// delivers. newFS, if set, replaces the inotify watcher's creation.
func newIdleReceiver(b *testing.B, files int, newFS func() (*notifier, error)) (*logsReceiver, *atomic.Int64) {
	b.Helper()
	dir := b.TempDir()
	old := time.Now().Add(-time.Hour)
	for i := range files {
		p := filepath.Join(dir, fmt.Sprintf("ns_p%04d_uid", i), "c", "0.log")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, line200, 0o644); err != nil {
			b.Fatal(err)
		}
		for _, q := range []string{p, filepath.Dir(p), filepath.Dir(filepath.Dir(p))} {
			if err := os.Chtimes(q, time.Time{}, old); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := os.Chtimes(dir, time.Time{}, old); err != nil {
		b.Fatal(err)
	}
	cfg := createDefaultConfig().(*Config)
	cfg.Include = []string{filepath.Join(dir, "*", "*", "*.log")}
	cfg.StartAt = startAtBeginning
	records := new(atomic.Int64) // a sink that keeps nothing
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
	if newFS != nil {
		r.watch.newFS = newFS
	}
	return r, records
}
