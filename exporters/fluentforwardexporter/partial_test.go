package fluentforwardexporter

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
)

// twoPods returns n records of pod a then n records of pod b (two tags).
func twoPods(n int) plog.Logs {
	ld := seqLogs(0, n)
	other := seqLogs(n, n)
	rl := other.ResourceLogs().At(0)
	rl.Resource().Attributes().PutStr(attrPod, "other-pod")
	rl.MoveTo(ld.ResourceLogs().AppendEmpty())
	return ld
}

// TestPartialFailureRetriesOnlyUnackedTags: when the first tag's message is
// acknowledged and the second's is not, the error carries only the second
// tag's records, so a retry does not duplicate the first.
func TestPartialFailureRetriesOnlyUnackedTags(t *testing.T) {
	srv := newFwdServer(t, modeAck)
	srv.decide = func(n int) serverMode {
		if n == 1 {
			return modeAck
		}
		return modeNeverAck
	}
	cfg := testConfig(srv.addr())
	cfg.QueueConfig = noQueue()
	cfg.BackOffConfig.Enabled = false
	exp := startExporter(t, cfg, nil)
	defer shutdownWithin(t, exp, 5*time.Second)

	err := exp.ConsumeLogs(t.Context(), twoPods(10))
	require.Error(t, err)
	var le consumererror.Logs
	require.True(t, errors.As(err, &le), "error %v carries the unsent records", err)
	rest := le.Data()
	require.Equal(t, 1, rest.ResourceLogs().Len())
	pod, _ := rest.ResourceLogs().At(0).Resource().Attributes().Get(attrPod)
	assert.Equal(t, "other-pod", pod.Str())
	assert.Equal(t, 10, rest.LogRecordCount())
}

// TestIdleConnectionClosedByServer: a pooled connection the server closed
// is noticed before reuse, so even without acks no batch is written into a
// dead socket.
func TestIdleConnectionClosedByServer(t *testing.T) {
	srv := newFwdServer(t, modeAck)
	cfg := testConfig(srv.addr())
	cfg.RequireAck = false
	cfg.QueueConfig = noQueue()
	exp := startExporter(t, cfg, nil)
	defer shutdownWithin(t, exp, 5*time.Second)

	require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(0, 10)))
	require.Eventually(t, func() bool { evs, _, _, _ := srv.snapshot(); return len(evs) == 10 }, 5*time.Second, 5*time.Millisecond)
	srv.dropConns()
	require.Eventually(t, func() bool { return connCount(srv) == 0 }, 5*time.Second, 5*time.Millisecond)

	for i := 1; i <= 3; i++ {
		require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(i*10, 10)))
	}
	require.Eventually(t, func() bool { evs, _, _, _ := srv.snapshot(); return len(evs) == 40 }, 5*time.Second, 5*time.Millisecond)
	evs, _, _, _ := srv.snapshot()
	assert.Len(t, seqsOf(t, evs), 40)
}
