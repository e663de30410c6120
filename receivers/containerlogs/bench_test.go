package containerlogs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
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
	r.store = newMemStore()
	if ckptDir != "" {
		if r.store, err = openFileStore(ckptDir, "bench"); err != nil {
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

// BenchmarkIdle500Files measures the cost of watching 500 idle files with
// the default poll_interval and rescan_interval: cpu-%-core is the share of
// one core the receiver uses while nothing is written.
func BenchmarkIdle500Files(b *testing.B) {
	dir := b.TempDir()
	for i := range 500 {
		p := filepath.Join(dir, fmt.Sprintf("ns_p%03d_uid", i), "c", "0.log")
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
	sink := new(consumertest.LogsSink)
	r, err := newReceiver(receivertest.NewNopSettings(component.MustNewType(typeStr)), cfg, sink)
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = r.Shutdown(context.Background()) }()
	for sink.LogRecordCount() < 500 {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // let the first rescans settle
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, start := cpuTime(), time.Now()
	for b.Loop() {
		time.Sleep(100 * time.Millisecond) // idle time is what is measured
	}
	b.ReportMetric(100*float64(cpuTime()-cpu0)/float64(time.Since(start)), "cpu-%-core")
}
