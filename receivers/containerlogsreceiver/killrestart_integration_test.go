//go:build integration

package containerlogsreceiver

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/weftobs/weft/internal/gobuild"
	"github.com/weftobs/weft/internal/loopback"
)

const killConfig = `
receivers:
  container_logs:
    include: [%[1]s/pods/*/*/*.log]
    start_at: beginning
    poll_interval: 100ms
    max_batch_records: 100
    checkpoint_directory: %[1]s/checkpoints
exporters:
  otlp_http:
    logs_endpoint: http://%[2]s/v1/logs
    compression: none
    sending_queue:
      enabled: false
    retry_on_failure:
      enabled: true
      max_elapsed_time: 0
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    logs:
      receivers: [container_logs]
      exporters: [otlp_http]
`

// logServer is an OTLP/HTTP logs endpoint that records every body it
// acknowledged, in arrival order.
type logServer struct {
	mu     sync.Mutex
	bodies []string
}

func (s *logServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalProto(b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []string
	rls := req.Logs().ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				got = append(got, lrs.At(k).Body().Str())
			}
		}
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, got...)
	s.mu.Unlock()
	resp, _ := plogotlp.NewExportResponse().MarshalProto()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

func (s *logServer) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

func buildWeft(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "weft")
	require.NoError(t, gobuild.Build(t.Context(), "", bin, "github.com/weftobs/weft/cmd/weft", ""))
	return bin
}

// Acceptance 4: kill -9 of the real binary 20 times at random points while
// 2 files grow at 1k lines/s in total (with kubelet rotation): no line lost,
// duplicates at most one batch per file per kill, the checkpoint file always
// readable.
func TestKillNineRestart(t *testing.T) {
	bin := buildWeft(t)
	dir := t.TempDir()
	addrs, err := loopback.FreeAddrs(1)
	require.NoError(t, err)
	srv := &logServer{}
	ln, err := net.Listen("tcp", addrs[0])
	require.NoError(t, err)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	cfgPath := filepath.Join(dir, "weft.yaml")
	require.NoError(t, os.WriteFile(cfgPath, fmt.Appendf(nil, killConfig, dir, addrs[0]), 0o600))

	// Writers: 2 files, 500 lines/s each, rotated every 64 KiB.
	tags := []string{"k0", "k1"}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	writers := make([]*kubeletWriter, len(tags))
	for i, tag := range tags {
		writers[i] = newKubeletWriter(t, podLogPath(t, filepath.Join(dir, "pods"), "ns", tag, "c"), tag)
		w := writers[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				w.write(5)
				if w.size >= 64*1024 {
					w.rotate()
				}
			}
		}()
	}

	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "--config", "file:"+cfgPath)
		cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
		require.NoError(t, cmd.Start())
		return cmd
	}
	ckpt := filepath.Join(dir, "checkpoints", "container_logs.json")
	const kills = 20
	checked := 0
	for i := range kills {
		cmd := start()
		time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond) // the random point is the test's subject
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		if b, err := os.ReadFile(ckpt); err == nil {
			var m map[string][]byte
			require.NoError(t, json.Unmarshal(b, &m), "kill %d: checkpoint file unreadable", i)
			checked++
		} else {
			require.ErrorIs(t, err, os.ErrNotExist)
		}
	}
	close(stop)
	wg.Wait()
	for _, w := range writers {
		w.close()
	}
	total := writers[0].seq + writers[1].seq
	before := len(srv.snapshot())
	t.Logf("wrote %d lines; %d delivered before the last run", total, before)
	require.Equal(t, kills, checked, "a checkpoint file after every kill")
	require.Positive(t, before, "the killed runs delivered something")

	// A last run reads everything that is left, then stops cleanly.
	cmd := start()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.Eventually(t, func() bool {
		seen := map[string]bool{}
		for _, b := range srv.snapshot() {
			seen[b] = true
		}
		return len(seen) >= total
	}, 60*time.Second, 100*time.Millisecond, "not every line arrived")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	_ = cmd.Wait()

	counts := map[string]int{}
	dups := map[string]int{}
	for _, b := range srv.snapshot() {
		f := strings.Fields(b)
		require.NotEmpty(t, f)
		counts[f[0]]++
		if counts[f[0]] > 1 {
			dups[f[0][:strings.IndexByte(f[0], '-')]]++
		}
	}
	for i, w := range writers {
		for seq := range w.seq {
			assert.GreaterOrEqual(t, counts[tags[i]+"-"+strconv.Itoa(seq)], 1, "line %s-%d lost", tags[i], seq)
		}
		t.Logf("%s: %d duplicates over %d kills", tags[i], dups[tags[i]], kills)
		assert.LessOrEqual(t, dups[tags[i]], kills*100, "duplicates bounded by one batch (100) per file per kill")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
