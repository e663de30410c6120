package fluentforwardexporter

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testConfig is the default config pointed at endpoints, with short timeouts
// and fast retries for tests.
func testConfig(endpoints ...string) *Config {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Endpoints = endpoints
	cfg.AckTimeout = 200 * time.Millisecond
	cfg.DialTimeout = time.Second
	cfg.WriteTimeout = time.Second
	cfg.FailoverCooldown = time.Minute
	cfg.BackOffConfig.InitialInterval = 10 * time.Millisecond
	cfg.BackOffConfig.MaxInterval = 50 * time.Millisecond
	cfg.BackOffConfig.MaxElapsedTime = 0 // retry until delivered
	cfg.QueueConfig.Get().Batch.Get().FlushTimeout = 10 * time.Millisecond
	return cfg
}

func startExporter(t *testing.T, cfg *Config, host component.Host) exporter.Logs {
	t.Helper()
	require.NoError(t, cfg.Validate())
	set := exportertest.NewNopSettings(componentType)
	set.ID = component.NewID(componentType) // stable: the persistent queue is keyed by it
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	exp, err := NewFactory().CreateLogs(t.Context(), set, cfg)
	require.NoError(t, err)
	if host == nil {
		host = componenttest.NewNopHost()
	}
	require.NoError(t, exp.Start(t.Context(), host))
	return exp
}

func shutdownWithin(t *testing.T, exp exporter.Logs, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	_ = exp.Shutdown(ctx) // a dropped in-flight batch is reported, not a failure here
	require.Less(t, time.Since(start), limit+500*time.Millisecond, "Shutdown hung past its timeout")
}

// seqLogs returns n records of one pod, numbered from first by the "seq" attribute.
func seqLogs(first, n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(attrNamespace, "shop")
	rl.Resource().Attributes().PutStr(attrPod, "cart-7d9")
	rl.Resource().Attributes().PutStr(attrContainer, "app")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	base := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	for i := first; i < first+n; i++ {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Duration(i) * 1001 * time.Nanosecond)))
		lr.Body().SetStr(fmt.Sprintf("line %d", i))
		lr.Attributes().PutInt("seq", int64(i))
	}
	return ld
}

func TestRecordsArriveExactly(t *testing.T) {
	srv := newFwdServer(t, modeAck)
	exp := startExporter(t, testConfig(srv.addr()), nil)
	defer shutdownWithin(t, exp, 5*time.Second)

	ts := time.Date(2026, 11, 25, 20, 1, 2, 123456789, time.UTC)
	observed := time.Date(2026, 11, 25, 20, 1, 3, 987654321, time.UTC)
	traceID := pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID := pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	ra := rl.Resource().Attributes()
	ra.PutStr(attrNamespace, "shop")
	ra.PutStr(attrPod, "cart-7d9")
	ra.PutStr(attrContainer, "app")
	ra.PutStr(attrPodUID, "0b8f6f3e-1c2d-4e5f-9a0b-1c2d3e4f5a6b")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()

	lr := lrs.AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	lr.Body().SetStr(`GET /cart 200 "ok"` + "\twith tab ünïcode")
	lr.Attributes().PutStr(attrIOStream, "stderr")
	lr.SetTraceID(traceID)
	lr.SetSpanID(spanID)
	lr.SetSeverityText("ERROR")
	lr.Attributes().PutInt("http.status", 200)
	lr.Attributes().PutDouble("latency", 0.25)
	lr.Attributes().PutBool("cached", true)
	lr.Attributes().PutStr("log", "collides with the body key")
	lr.Attributes().PutEmptyBytes("raw").FromRaw([]byte{0, 1, 2})
	nested := lr.Attributes().PutEmptyMap("user")
	nested.PutStr("id", "u1")
	nested.PutEmptySlice("roles").FromRaw([]any{"a", int64(2)})

	lr2 := lrs.AppendEmpty() // only an observed time, a map body, no k8s extras
	lr2.SetObservedTimestamp(pcommon.NewTimestampFromTime(observed))
	lr2.Body().SetEmptyMap().PutStr("msg", "hi")

	rl2 := ld.ResourceLogs().AppendEmpty() // no Kubernetes attributes at all
	lr3 := rl2.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr3.SetTimestamp(pcommon.NewTimestampFromTime(ts.Add(time.Nanosecond)))
	lr3.Body().SetStr("node line")

	require.NoError(t, exp.ConsumeLogs(t.Context(), ld))
	require.Eventually(t, func() bool {
		evs, _, _, _ := srv.snapshot()
		return len(evs) == 3
	}, 5*time.Second, 5*time.Millisecond)

	evs, messages, unacked, acked := srv.snapshot()
	assert.Equal(t, 2, messages, "one message per tag")
	assert.Equal(t, 2, acked)
	assert.Equal(t, 0, unacked)

	byTag := map[string][]fwdEvent{}
	for _, e := range evs {
		byTag[e.tag] = append(byTag[e.tag], e)
		assert.NotEmpty(t, e.chunk, "require_ack sends the chunk option")
	}
	pod := byTag["kube.shop.cart-7d9.app"]
	require.Len(t, pod, 2)
	assert.True(t, ts.Equal(pod[0].time), "nanoseconds kept: got %s", pod[0].time.UTC().Format(time.RFC3339Nano))
	assert.Equal(t, map[string]any{
		"log":    `GET /cart 200 "ok"` + "\twith tab ünïcode",
		"stream": "stderr",
		"kubernetes": map[string]any{
			"namespace_name": "shop",
			"pod_name":       "cart-7d9",
			"container_name": "app",
			"pod_id":         "0b8f6f3e-1c2d-4e5f-9a0b-1c2d3e4f5a6b",
		},
		"trace_id":    "4bf92f3577b34da6a3ce929d0e0e4736",
		"span_id":     "00f067aa0ba902b7",
		"severity":    "ERROR",
		"http.status": int64(200),
		"latency":     0.25,
		"cached":      true,
		"attr.log":    "collides with the body key",
		"raw":         []byte{0, 1, 2},
		"user":        map[string]any{"id": "u1", "roles": []any{"a", int64(2)}},
	}, pod[0].record)

	assert.True(t, observed.Equal(pod[1].time), "observed time used when the record has none")
	assert.Equal(t, map[string]any{
		"log": `{"msg":"hi"}`,
		"kubernetes": map[string]any{
			"namespace_name": "shop",
			"pod_name":       "cart-7d9",
			"container_name": "app",
			"pod_id":         "0b8f6f3e-1c2d-4e5f-9a0b-1c2d3e4f5a6b",
		},
	}, pod[1].record)

	node := byTag["kube._._._"]
	require.Len(t, node, 1)
	assert.True(t, ts.Add(time.Nanosecond).Equal(node[0].time))
	assert.Equal(t, map[string]any{"log": "node line"}, node[0].record)
}

func TestNoAckMode(t *testing.T) {
	srv := newFwdServer(t, modeNeverAck) // would stall an exporter that waits for acks
	cfg := testConfig(srv.addr())
	cfg.RequireAck = false
	exp := startExporter(t, cfg, nil)
	defer shutdownWithin(t, exp, 5*time.Second)

	require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(0, 100)))
	require.Eventually(t, func() bool {
		evs, _, _, _ := srv.snapshot()
		return len(evs) == 100
	}, 5*time.Second, 5*time.Millisecond)
	evs, _, _, _ := srv.snapshot()
	for _, e := range evs {
		assert.Empty(t, e.chunk)
	}
}

// seqsOf counts, per seq attribute, how often the server stored a record.
func seqsOf(t *testing.T, evs []fwdEvent) map[int64]int {
	t.Helper()
	out := map[int64]int{}
	for _, e := range evs {
		seq, ok := e.record["seq"].(int64)
		require.True(t, ok, "record without seq: %v", e.record)
		out[seq]++
	}
	return out
}

func TestMisbehavingServer(t *testing.T) {
	for _, mode := range []serverMode{modeNeverAck, modeCloseOnRead, modeWrongAck, modeLateAck, modeBlackhole} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := newFwdServer(t, mode)
			cfg := testConfig(srv.addr())
			cfg.AckTimeout = 100 * time.Millisecond // lateBy is 300ms
			exp := startExporter(t, cfg, nil)

			const batches, perBatch = 5, 200
			for b := range batches {
				require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(b*perBatch, perBatch)))
			}
			// Let the server misbehave on a few attempts, then recover.
			require.Eventually(t, func() bool {
				_, messages, _, _ := srv.snapshot()
				return messages >= 2 || (mode == modeBlackhole && connCount(srv) >= 2)
			}, 10*time.Second, 5*time.Millisecond)
			srv.setMode(modeAck)

			require.Eventually(t, func() bool {
				return ackedSeqs(srv) == batches*perBatch
			}, 20*time.Second, 10*time.Millisecond, "every record acknowledged after recovery")

			evs, _, unacked, _ := srv.snapshot()
			seqs := seqsOf(t, evs)
			dups := len(evs) - len(seqs)
			assert.LessOrEqual(t, dups, unacked, "duplicates only from chunks that were not acknowledged")
			if mode != modeBlackhole {
				assert.Positive(t, unacked, "the server misbehaved at least once")
			}
			shutdownWithin(t, exp, 5*time.Second)
		})
	}
}

// connCount is the number of connections the server has accepted and holds.
func connCount(s *fwdServer) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// ackedSeqs counts distinct seqs stored in messages the server acked correctly.
func ackedSeqs(s *fwdServer) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ackedSeqSet)
}

func TestShutdownNeverHangs(t *testing.T) {
	srv := newFwdServer(t, modeNeverAck)
	cfg := testConfig(srv.addr())
	cfg.AckTimeout = time.Minute // only Shutdown can end the wait
	exp := startExporter(t, cfg, nil)
	require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(0, 10)))
	require.Eventually(t, func() bool {
		_, messages, _, _ := srv.snapshot()
		return messages >= 1
	}, 5*time.Second, 5*time.Millisecond)
	shutdownWithin(t, exp, 2*time.Second)
}

func TestShutdownWithoutStartAndTwice(t *testing.T) {
	cfg := testConfig("127.0.0.1:1")
	exp, err := NewFactory().CreateLogs(t.Context(), exportertest.NewNopSettings(componentType), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Shutdown(t.Context()))

	exp = startExporter(t, testConfig("127.0.0.1:1"), nil)
	require.NoError(t, exp.Shutdown(t.Context()))
	require.NoError(t, exp.Shutdown(t.Context()))
}

func TestFailover(t *testing.T) {
	// A refused endpoint, a blackholed one, then a good one: records reach
	// the good one and later batches go there directly.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := ln.Addr().String()
	require.NoError(t, ln.Close())
	hole := newFwdServer(t, modeBlackhole)
	good := newFwdServer(t, modeAck)

	cfg := testConfig(refused, hole.addr(), good.addr())
	exp := startExporter(t, cfg, nil)
	defer shutdownWithin(t, exp, 5*time.Second)

	require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(0, 50)))
	require.Eventually(t, func() bool { return ackedSeqs(good) == 50 }, 10*time.Second, 5*time.Millisecond)
	// The failed endpoints are cooling down: the next batch goes straight to the good one.
	holeConns := connCount(hole)
	require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(50, 50)))
	require.Eventually(t, func() bool { return ackedSeqs(good) == 100 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, holeConns, connCount(hole), "no new connection to the failed endpoint")
}

func TestQueueDisabled(t *testing.T) {
	// Without a sending queue the export is synchronous and an ack timeout
	// surfaces as a retryable error to the caller.
	srv := newFwdServer(t, modeNeverAck)
	cfg := testConfig(srv.addr())
	cfg.QueueConfig = noQueue()
	cfg.BackOffConfig.Enabled = false
	exp := startExporter(t, cfg, nil)
	defer shutdownWithin(t, exp, 5*time.Second)
	err := exp.ConsumeLogs(t.Context(), seqLogs(0, 3))
	require.ErrorContains(t, err, "no ack for chunk")
	require.ErrorContains(t, err, "ack_timeout")
}

// noQueue disables the sending queue: ConsumeLogs returns the export's error.
func noQueue() configoptional.Optional[exporterhelper.QueueBatchConfig] {
	return configoptional.None[exporterhelper.QueueBatchConfig]()
}
