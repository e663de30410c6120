//go:build integration

package fluentforward

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
	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/weftobs/weft/internal/loopback"
)

// Outage scenario, clocked down for CI: an agent process (this test binary
// re-executed as TestAgentProcess) produces outageRate records/s into the
// exporter with a file_storage queue while the forward server is down; it
// is killed with SIGKILL mid-outage and restarted; then the server comes
// up. Every record must arrive, with at most one batch of duplicates (the
// records the queue had accepted but the agent had not yet checkpointed).
const (
	outageRate  = 1000 // records per second
	outageBatch = 100  // records per ConsumeLogs
	outageTotal = 6000
)

func TestOutageWithKill9(t *testing.T) {
	addrs, err := loopback.FreeAddrs(1)
	require.NoError(t, err)
	addr := addrs[0] // nothing listens yet: the server is down
	dir := t.TempDir()
	state := filepath.Join(dir, "produced")

	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestAgentProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			"FF_AGENT=1", "FF_ADDR="+addr, "FF_DIR="+filepath.Join(dir, "queue"), "FF_STATE="+state)
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
	require.Eventually(t, func() bool { return produced() >= 2000 }, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	killedAt := produced()

	start()
	require.Eventually(t, func() bool { return produced() >= killedAt+1500 }, 30*time.Second, 20*time.Millisecond)

	srv := newFwdServerAt(t, addr, modeAck) // recovery
	require.Eventually(t, func() bool { return ackedSeqs(srv) == outageTotal }, 60*time.Second, 20*time.Millisecond,
		"not every record acknowledged after recovery")

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
	cfg.QueueConfig.Get().StorageID = &storageID
	require.NoError(t, os.MkdirAll(os.Getenv("FF_DIR"), 0o700))
	_, host := startStorage(t, os.Getenv("FF_DIR"))
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
