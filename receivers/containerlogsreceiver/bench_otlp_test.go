package containerlogsreceiver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// BenchmarkFileToOTLPHTTP is the path of a deployment: file → receiver →
// otlp_http exporter with its sending queue batching → an OTLP/HTTP server
// on the loopback interface (in this process, so its CPU is included in
// cpu-ns/line). ns/op is per 200-byte CRI line.
func BenchmarkFileToOTLPHTTP(b *testing.B) {
	for _, comp := range []configcompression.Type{configcompression.TypeGzip, ""} {
		name := string(comp)
		if name == "" {
			name = "none"
		}
		b.Run("compression="+name, func(b *testing.B) { benchOTLP(b, comp) })
	}
}

func benchOTLP(b *testing.B, comp configcompression.Type) {
	var received atomic.Int64
	resp, _ := plogotlp.NewExportResponse().MarshalProto()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		received.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	}))
	defer srv.Close()

	f := otlphttpexporter.NewFactory()
	ecfg := f.CreateDefaultConfig().(*otlphttpexporter.Config)
	ecfg.LogsEndpoint = srv.URL + "/v1/logs"
	ecfg.ClientConfig.Compression = comp
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), ecfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}

	dir := b.TempDir()
	path := filepath.Join(dir, "ns_pod_uid", "c", "0.log")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	const fileLines = 200_000
	if err := os.WriteFile(path, bytes.Repeat(line200, fileLines), 0o644); err != nil {
		b.Fatal(err)
	}
	r, err := newReceiver(receivertest.NewNopSettings(component.MustNewType(typeStr)), createDefaultConfig().(*Config), exp)
	if err != nil {
		b.Fatal(err)
	}
	r.ckpt.store = newMemStore()
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(line200)))
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for done := 0; done < b.N; {
		n := min(fileLines, b.N-done)
		fh, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		r.tel.openFiles.Add(ctx, 1)
		t := r.newTailer(path, fmt.Sprintf("k%d", done), fh, &limitReader{f: fh, n: int64(n) * int64(len(line200))}, fileID{}, 0, false)
		t.run(ctx)
		done += n
	}
	// Shutdown drains the exporter's queue: everything has been sent.
	if err := exp.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if received.Load() == 0 {
		b.Fatal("the server received nothing")
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/line")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lines/s")
}
