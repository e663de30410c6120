package fluentforwardexporter

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/require"
	"github.com/tinylib/msgp/msgp"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/weftobs/weft/extensions/weftfilestorageextension"
	"github.com/weftobs/weft/internal/weftest"
)

// benchLogs returns n container-log-like records of one pod.
func benchLogs(n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	ra := rl.Resource().Attributes()
	ra.PutStr(attrNamespace, "bookinfo")
	ra.PutStr(attrPod, "reviews-v2-7c8d9f6b5-x2x9q")
	ra.PutStr(attrContainer, "reviews")
	ra.PutStr(attrPodUID, "0b8f6f3e-1c2d-4e5f-9a0b-1c2d3e4f5a6b")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	base := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	for i := range n {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Duration(i) * 1337 * time.Nanosecond)))
		lr.Body().SetStr(fmt.Sprintf(`2026-11-25T20:00:00.%06dZ INFO [reviews] GET /reviews/%d 200 12ms trace_id=4bf92f3577b34da6a3ce929d0e0e4736`, i, i))
		lr.Attributes().PutStr(attrIOStream, "stdout")
		lr.Attributes().PutStr("log.file.path", "/var/log/pods/bookinfo_reviews-v2_0b8f6f3e/reviews/0.log")
		lr.SetTraceID(pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36})
		lr.SetSpanID(pcommon.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, byte(i)})
	}
	return ld
}

func BenchmarkEncode(b *testing.B) {
	const n = 4096
	ld := benchLogs(n)
	tag, err := parseTagTemplate(defaultTag)
	require.NoError(b, err)
	enc := encoder{tag: tag, requestAck: true, now: time.Now}
	msgs, _, err := enc.encode(ld)
	require.NoError(b, err)
	b.SetBytes(int64(len(msgs[0].data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := enc.encode(ld); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(msgs[0].data))/n, "wire_bytes/record")
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

// ackServer acks every chunk without decoding the records (skips them), so
// that the benchmark measures the exporter's side.
func ackServer(b *testing.B) string {
	addr, _ := countingAckServer(b)
	return addr
}

// countingAckServer is ackServer that also counts the acknowledged records.
func countingAckServer(b *testing.B) (string, *atomic.Int64) {
	var acked atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	var wg sync.WaitGroup
	b.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				rd := msgp.NewReader(bufio.NewReaderSize(c, 1<<20))
				var ack []byte
				for {
					if _, err := rd.ReadArrayHeader(); err != nil {
						return
					}
					if err := rd.Skip(); err != nil { // tag
						return
					}
					if err := rd.Skip(); err != nil { // entries
						return
					}
					opt := map[string]any{}
					if err := rd.ReadMapStrIntf(opt); err != nil {
						return
					}
					size, _ := opt["size"].(int64)
					acked.Add(size)
					resp := fluent.AckResp{Ack: opt["chunk"].(string)}
					ack, _ = resp.MarshalMsg(ack[:0])
					if _, err := c.Write(ack); err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String(), &acked
}

// BenchmarkSendWithAcks encodes and sends 4096-record batches over one
// loopback connection and waits for each chunk's ack.
func BenchmarkSendWithAcks(b *testing.B) {
	const n = 4096
	addr := ackServer(b)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Endpoints = []string{addr}
	fe, err := newExporter(cfg, componenttest.NewNopTelemetrySettings())
	require.NoError(b, err)
	require.NoError(b, fe.start(b.Context(), nil))
	defer func() { require.NoError(b, fe.shutdown(b.Context())) }()
	ld := benchLogs(n)
	msgs, _, err := fe.enc.encode(ld)
	require.NoError(b, err)
	b.SetBytes(int64(len(msgs[0].data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := fe.pushLogs(b.Context(), ld); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(msgs[0].data))/n, "wire_bytes/record")
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPipeline measures the whole exporter as a collector runs it:
// ConsumeLogs of 1000-record requests into the default sending queue and
// batcher, 4 consumers, acks on; the clock stops when the last record is
// acknowledged.
//
// Sub-benchmarks: memory queue (the default), and a persistent queue on
// weft_file_storage with and without fsync.
func BenchmarkPipeline(b *testing.B) {
	b.Run("queue=memory", func(b *testing.B) { benchPipeline(b, nil, component.ID{}) })
	for _, fsync := range []bool{false, true} {
		b.Run(fmt.Sprintf("queue=weft_file_storage/fsync=%v", fsync), func(b *testing.B) {
			f := weftfilestorageextension.NewFactory()
			cfg := f.CreateDefaultConfig()
			require.NoError(b, unmarshalInto(map[string]any{"directory": b.TempDir(), "fsync": fsync}, cfg))
			set := extensiontest.NewNopSettings(f.Type())
			set.ID = weftStorageID
			ext, err := f.Create(b.Context(), set, cfg)
			require.NoError(b, err)
			require.NoError(b, ext.Start(b.Context(), componenttest.NewNopHost()))
			defer func() { require.NoError(b, ext.Shutdown(context.Background())) }()
			benchPipeline(b, ext, weftStorageID)
		})
	}
	b.Run("queue=file_storage", func(b *testing.B) { // contrib's, for comparison
		f := filestorage.NewFactory()
		cfg := f.CreateDefaultConfig().(*filestorage.Config)
		cfg.Directory = b.TempDir()
		cfg.Compaction.Directory = cfg.Directory
		set := extensiontest.NewNopSettings(f.Type())
		set.ID = storageID
		ext, err := f.Create(b.Context(), set, cfg)
		require.NoError(b, err)
		require.NoError(b, ext.Start(b.Context(), componenttest.NewNopHost()))
		defer func() { require.NoError(b, ext.Shutdown(context.Background())) }()
		benchPipeline(b, ext, storageID)
	})
}

func benchPipeline(b *testing.B, storageExt component.Component, id component.ID) {
	const n = 1000
	addr, acked := countingAckServer(b)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Endpoints = []string{addr}
	var host component.Host = componenttest.NewNopHost()
	if storageExt != nil {
		cfg.QueueConfig.Get().StorageID = &id
		host = weftest.Host{id: storageExt}
	}
	set := exportertest.NewNopSettings(componentType)
	exp, err := NewFactory().CreateLogs(b.Context(), set, cfg)
	require.NoError(b, err)
	require.NoError(b, exp.Start(b.Context(), host))
	defer func() { require.NoError(b, exp.Shutdown(context.Background())) }()
	ld := benchLogs(n)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now() // b.Loop's timer stops before the last ack arrives
	for b.Loop() {
		req := plog.NewLogs() // the batcher moves records out of what it is given
		ld.CopyTo(req)
		if err := exp.ConsumeLogs(b.Context(), req); err != nil {
			b.Fatal(err)
		}
	}
	want := int64(n * b.N)
	for acked.Load() < want {
		time.Sleep(time.Millisecond) // the measured work is the delivery itself
	}
	b.ReportMetric(float64(want)/time.Since(start).Seconds(), "records/s")
}
