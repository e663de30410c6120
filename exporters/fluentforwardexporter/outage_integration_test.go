//go:build integration

package fluentforwardexporter

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/weftobs/weft/extensions/weftfilestorageextension"
	"github.com/weftobs/weft/internal/loopback"
	"github.com/weftobs/weft/internal/weftest"
)

// Outage scenario: an agent process (this test binary re-executed as
// TestAgentProcess) produces outageRate records/s into the exporter with a
// persistent queue while the forward server is down; a third into the
// outage it is killed with SIGKILL and restarted; when the outage ends the
// server comes up while the agent goes on producing for a quarter of the
// outage more. Every record must arrive, with at most one batch of
// duplicates (the records the queue had accepted but the agent had not
// yet checkpointed).
//
// FLUENT_OUTAGE sets the outage (default 4s, the clocked CI variant; the
// issue's run is FLUENT_OUTAGE=10m). FLUENT_OUTAGE_STORAGE picks the queue's
// storage: weft_file_storage (default) or file_storage (contrib).
const (
	outageRate  = 1000 // records per second
	outageBatch = 100  // records per ConsumeLogs
)

func outagePlan(t *testing.T) (outage time.Duration, total int, storageKind string) {
	outage = 4 * time.Second
	if v := os.Getenv("FLUENT_OUTAGE"); v != "" {
		var err error
		outage, err = time.ParseDuration(v)
		require.NoError(t, err, "FLUENT_OUTAGE")
	}
	total = int(outage.Seconds()*outageRate*1.25) / outageBatch * outageBatch
	storageKind = os.Getenv("FLUENT_OUTAGE_STORAGE")
	if storageKind == "" {
		storageKind = "weft_file_storage"
	}
	require.Contains(t, []string{"weft_file_storage", "file_storage"}, storageKind, "FLUENT_OUTAGE_STORAGE")
	return outage, total, storageKind
}

func TestOutageWithKill9(t *testing.T) {
	outage, outageTotal, storageKind := outagePlan(t)
	during := int(outage.Seconds() * outageRate) // records produced while the server is down
	wait := 2*outage + 30*time.Second
	addrs, err := loopback.FreeAddrs(1)
	require.NoError(t, err)
	addr := addrs[0] // nothing listens yet: the server is down
	dir := t.TempDir()
	state := filepath.Join(dir, "produced")
	began := time.Now()

	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestAgentProcess$", "-test.count=1", "-test.timeout=0")
		cmd.Env = append(os.Environ(),
			"FF_AGENT=1", "FF_ADDR="+addr, "FF_DIR="+filepath.Join(dir, "queue"), "FF_STATE="+state,
			"FF_TOTAL="+strconv.Itoa(outageTotal), "FF_STORAGE="+storageKind)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	produced := func() int {
		b, err := os.ReadFile(state)
		if err != nil {
			return 0
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}

	first := start()
	require.Eventually(t, func() bool { return produced() >= during/3 }, wait, 20*time.Millisecond)
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	killedAt := produced()

	second := start()
	require.Eventually(t, func() bool { return produced() >= during }, wait, 20*time.Millisecond)
	down := time.Since(began)

	srv := newFwdServerAt(t, addr, modeAck) // recovery
	srv.keepSeqOnly()
	recovered := time.Now()
	require.Eventually(t, func() bool { return ackedSeqs(srv) == outageTotal }, wait, 50*time.Millisecond,
		"not every record acknowledged after recovery")
	t.Logf("storage %s: server down %s, %d records produced meanwhile; all %d acknowledged %s after recovery; agent peak RSS %s",
		storageKind, down.Round(time.Second), during, outageTotal, time.Since(recovered).Round(time.Millisecond), peakRSS(second.Process.Pid))

	evs, _, _, _ := srv.snapshot()
	seqs := seqsOf(t, evs)
	for i := range int64(outageTotal) {
		require.GreaterOrEqual(t, seqs[i], 1, "record %d lost", i)
	}
	dups := len(evs) - len(seqs)
	t.Logf("killed at %d produced; %d events, %d duplicates", killedAt, len(evs), dups)
	assert.LessOrEqual(t, dups, outageBatch, "duplicates at most one batch")
}

// TestAgentProcess is the agent of TestOutageWithKill9; it does nothing
// unless FF_AGENT=1. It never returns on its own: the parent kills it.
func TestAgentProcess(t *testing.T) {
	if os.Getenv("FF_AGENT") != "1" {
		return
	}
	cfg := testConfig(os.Getenv("FF_ADDR"))
	cfg.AckTimeout = 10 * time.Second // a server busy with a backlog is slow, not down
	require.NoError(t, os.MkdirAll(os.Getenv("FF_DIR"), 0o700))
	var host component.Host
	if os.Getenv("FF_STORAGE") == "file_storage" {
		cfg.QueueConfig.Get().StorageID = &storageID
		_, host = startStorage(t, os.Getenv("FF_DIR"))
	} else {
		cfg.QueueConfig.Get().StorageID = &weftStorageID
		host = startWeftStorage(t, os.Getenv("FF_DIR"))
	}
	outageTotal, err := strconv.Atoi(os.Getenv("FF_TOTAL"))
	require.NoError(t, err)
	set := exportertest.NewNopSettings(componentType)
	set.ID = component.NewID(componentType) // the queue is keyed by it
	exp, err := NewFactory().CreateLogs(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), host))

	statePath := os.Getenv("FF_STATE")
	next := 0
	if b, err := os.ReadFile(statePath); err == nil {
		next, err = strconv.Atoi(strings.TrimSpace(string(b)))
		require.NoError(t, err)
	}
	tick := time.NewTicker(time.Second * outageBatch / outageRate)
	defer tick.Stop()
	for next < outageTotal {
		<-tick.C // pacing of the producer, not a wait for work
		require.NoError(t, exp.ConsumeLogs(context.Background(), seqLogs(next, outageBatch)))
		next += outageBatch
		// Checkpoint after the queue accepted the batch (write, then rename).
		tmp := statePath + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(strconv.Itoa(next)), 0o600))
		require.NoError(t, os.Rename(tmp, statePath))
	}
	select {} // the parent kills the agent once it has checked delivery
}

// peakRSS is a process's VmHWM from /proc, or "?" where there is none.
func peakRSS(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// startWeftStorage starts a weft_file_storage with its defaults over dir
// and returns a host that holds it.
func startWeftStorage(t *testing.T, dir string) component.Host {
	t.Helper()
	f := weftfilestorageextension.NewFactory()
	cfg := f.CreateDefaultConfig()
	require.NoError(t, unmarshalInto(map[string]any{"directory": dir}, cfg))
	set := extensiontest.NewNopSettings(f.Type())
	set.ID = weftStorageID
	ext, err := f.Create(t.Context(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return weftest.Host{weftStorageID: ext}
}

// keepSeqOnly drops every record field but seq as messages arrive.
func (s *fwdServer) keepSeqOnly() {
	s.mu.Lock()
	s.lean = true
	s.mu.Unlock()
}
