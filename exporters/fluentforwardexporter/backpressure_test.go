package fluentforwardexporter

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFullQueueBlocksProducers: with the default block_on_overflow, a full
// byte-bounded queue makes ConsumeLogs wait (the receivers slow down)
// instead of dropping; once the server answers again every record arrives.
func TestFullQueueBlocksProducers(t *testing.T) {
	srv := newFwdServer(t, modeBlackhole)
	cfg := testConfig(srv.addr())
	q := cfg.QueueConfig.Get()
	q.QueueSize = 30_000 // bytes: a handful of 100-record batches
	q.NumConsumers = 1
	exp := startExporter(t, cfg, nil)
	defer shutdownWithin(t, exp, 5*time.Second)

	const batches, perBatch = 60, 100
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, batches)
	wg.Go(func() {
		for b := range batches {
			if err := exp.ConsumeLogs(t.Context(), seqLogs(b*perBatch, perBatch)); err != nil {
				errs <- err
			}
			done.Add(1)
		}
	})
	// The producer stalls well before the end while the server is silent.
	require.Eventually(t, func() bool { return connCount(srv) >= 2 }, 10*time.Second, 5*time.Millisecond, "retries against the silent server")
	require.Never(t, func() bool { return done.Load() == batches }, 500*time.Millisecond, 10*time.Millisecond, "producer was not slowed down")
	stalledAt := done.Load()

	srv.setMode(modeAck)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "a full queue must block, not reject")
	}
	require.Eventually(t, func() bool { return ackedSeqs(srv) == batches*perBatch }, 20*time.Second, 10*time.Millisecond, "not every record acknowledged")
	t.Logf("producer stalled after %d of %d batches", stalledAt, batches)
}
