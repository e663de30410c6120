//go:build integration

package fluentforwardexporter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/weftobs/weft/internal/gobuild"
	"github.com/weftobs/weft/internal/loopback"
)

// peerRecords is how many records TestRealForwardServer sends; override with
// FLUENTPEER_RECORDS (the acceptance run uses 1000000).
func peerRecords(t *testing.T) int {
	if s := os.Getenv("FLUENTPEER_RECORDS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "FLUENTPEER_RECORDS")
		return n
	}
	return 200_000
}

var peerPods = [...]struct{ ns, pod, container, uid string }{
	{"shop", "cart-7d9", "app", "0b8f6f3e-1c2d-4e5f-9a0b-1c2d3e4f5a6b"},
	{"shop", "cart-7d9", "istio-proxy", "0b8f6f3e-1c2d-4e5f-9a0b-1c2d3e4f5a6b"},
	{"bookinfo", "reviews-v2-x2x9q", "reviews", "9a0b1c2d-3e4f-5a6b-0b8f-6f3e1c2d4e5f"},
	{"kube-system", "coredns-5d78c", "coredns", "5a6b0b8f-6f3e-1c2d-4e5f-9a0b1c2d3e4f"},
}

var peerBase = time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)

// peerRecord is what record seq looks like.
func peerRecord(seq int) (pod int, ts time.Time, body, stream string, traceID pcommon.TraceID, spanID pcommon.SpanID) {
	pod = seq % len(peerPods)
	ts = peerBase.Add(time.Duration(seq)*time.Microsecond + time.Duration(seq%997)) // odd nanoseconds
	body = fmt.Sprintf(`{"level":"info","msg":"request %d","path":"/cart/%d"} ünï "q"`, seq, seq)
	stream = [...]string{"stdout", "stderr"}[seq%2]
	traceID = pcommon.TraceID{0x4b, 0xf9, byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	spanID = pcommon.SpanID{0xaa, byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq), 1, 2, 3}
	return
}

// peerBatch builds records [first, first+n), one resource per pod.
func peerBatch(first, n int) plog.Logs {
	ld := plog.NewLogs()
	var lrs [len(peerPods)]plog.LogRecordSlice
	for i, p := range peerPods {
		rl := ld.ResourceLogs().AppendEmpty()
		ra := rl.Resource().Attributes()
		ra.PutStr(attrNamespace, p.ns)
		ra.PutStr(attrPod, p.pod)
		ra.PutStr(attrContainer, p.container)
		ra.PutStr(attrPodUID, p.uid)
		lrs[i] = rl.ScopeLogs().AppendEmpty().LogRecords()
	}
	for seq := first; seq < first+n; seq++ {
		pod, ts, body, stream, traceID, spanID := peerRecord(seq)
		lr := lrs[pod].AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		lr.Body().SetStr(body)
		lr.Attributes().PutStr(attrIOStream, stream)
		lr.Attributes().PutInt("seq", int64(seq))
		lr.SetTraceID(traceID)
		lr.SetSpanID(spanID)
	}
	return ld
}

// buildPeer builds bench/fluentpeer (its own module) into dir.
func buildPeer(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "fluentpeer")
	err := gobuild.Build(t.Context(), filepath.Join("..", "..", "bench", "fluentpeer"), bin, ".", "")
	require.NoError(t, err, "building the forward peer failed (needs the Go toolchain and bench/fluentpeer's modules: run `go mod download` in bench/fluentpeer)")
	return bin
}

// TestRealForwardServer sends records through the contrib fluentforward
// receiver (a server written by others) and reads them back from its file
// exporter: every record arrives exactly once, with its fields and its
// nanosecond timestamp.
func TestRealForwardServer(t *testing.T) {
	n := peerRecords(t)
	dir := t.TempDir()
	bin := buildPeer(t, dir)
	addrs, err := loopback.FreeAddrs(1)
	require.NoError(t, err)
	addr := addrs[0]
	out := filepath.Join(dir, "out.jsonl")
	conf := filepath.Join(dir, "peer.yaml")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(`receivers:
  fluentforward: {endpoint: %q}
exporters:
  file: {path: %q, flush_interval: 100ms}
service:
  telemetry: {metrics: {level: none}, logs: {level: warn}}
  pipelines:
    logs: {receivers: [fluentforward], exporters: [file]}
`, addr, out)), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config", conf)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("fluentpeer output:\n%s", stderr.String())
		}
	})
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}, 30*time.Second, 50*time.Millisecond, "fluentpeer did not listen on %s", addr)

	cfg := testConfig(addr)
	cfg.AckTimeout = 10 * time.Second
	exp := startExporter(t, cfg, nil)
	defer shutdownWithin(t, exp, 10*time.Second)

	start := time.Now()
	const perBatch = 5000
	for first := 0; first < n; first += perBatch {
		require.NoError(t, exp.ConsumeLogs(t.Context(), peerBatch(first, min(perBatch, n-first))))
	}

	seen := make([]int, n)
	var got int
	var offset int64
	require.Eventually(t, func() bool {
		got += readPeerFile(t, out, &offset, seen)
		return got >= n
	}, 5*time.Minute, 200*time.Millisecond, "records read back: %d of %d", got, n)
	t.Logf("%d records through fluentpeer in %s", n, time.Since(start))
	for seq, c := range seen {
		if c != 1 {
			require.Equal(t, 1, c, "record %d arrived %d times", seq, c)
		}
	}
}

// readPeerFile parses the complete lines of the file exporter's output from
// *offset on, checks every record against peerRecord and counts it in seen.
func readPeerFile(t *testing.T, path string, offset *int64, seen []int) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	if _, err := f.Seek(*offset, 0); err != nil {
		return 0
	}
	rd := bufio.NewReaderSize(f, 1<<20)
	var um plog.JSONUnmarshaler
	count := 0
	for {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			return count // an incomplete last line is read next time
		}
		*offset += int64(len(line))
		ld, err := um.UnmarshalLogs(line)
		require.NoError(t, err)
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					checkPeerRecord(t, lrs.At(k), seen)
					count++
				}
			}
		}
	}
}

func checkPeerRecord(t *testing.T, lr plog.LogRecord, seen []int) {
	attrs := lr.Attributes()
	seqV, ok := attrs.Get("seq")
	require.True(t, ok, "record without seq: %v", attrs.AsRaw())
	seq := int(seqV.Int())
	require.Less(t, seq, len(seen))
	seen[seq]++
	pod, ts, body, stream, traceID, spanID := peerRecord(seq)
	p := peerPods[pod]
	assert.Equal(t, pcommon.NewTimestampFromTime(ts), lr.Timestamp(), "seq %d: nanosecond timestamp", seq)
	assert.Equal(t, body, lr.Body().Str(), "seq %d", seq)
	want := map[string]any{
		"seq":        int64(seq),
		"stream":     stream,
		"fluent.tag": "kube." + p.ns + "." + p.pod + "." + p.container,
		"kubernetes": map[string]any{
			"namespace_name": p.ns, "pod_name": p.pod, "container_name": p.container, "pod_id": p.uid,
		},
		"trace_id": hex.EncodeToString(traceID[:]),
		"span_id":  hex.EncodeToString(spanID[:]),
	}
	if !assert.Equal(t, want, attrs.AsRaw(), "seq %d", seq) {
		t.FailNow()
	}
}
