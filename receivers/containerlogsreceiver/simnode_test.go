package containerlogsreceiver

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/internal/simnode"
)

// The simulated node writes CRI logs as a real node does: 40 KiB lines as
// P/F records, Java stack traces on stderr one record per line, kubelet
// rotation. With a multi-line start pattern every stack trace arrives as one
// message, every big line whole, nothing unparsed or lost across rotations.
func TestSimulatedNode(t *testing.T) {
	dir := t.TempDir()
	node, err := simnode.Start(simnode.Options{
		Dir: dir, Rate: 2000, ErrorBurst: true, ErrorAfter: time.Millisecond, ErrorFor: time.Hour,
		RotateSize: 64 * 1024, Seed: 7,
	})
	require.NoError(t, err)
	defer func() { require.NoError(t, node.Close()) }()
	s := &sink{}
	cfg := testCfg(filepath.Join(node.PodsDir(), "*", "*", "*.log"))
	cfg.Multiline.LineStartPattern = `^[^\t]` // continuation lines start with a tab
	run := startReceiver(t, cfg, s)
	require.NoError(t, node.Run(t.Context(), 2*time.Second))
	stats := node.Stats()
	t.Logf("node: %+v", stats)
	require.Positive(t, stats.Rotations, "the test wants rotations")

	// Wait until the receiver has read everything the node wrote.
	require.Eventually(t, func() bool {
		before := s.len()
		time.Sleep(3 * cfg.PollInterval) // quiet for three polls: all read
		return before > 0 && s.len() == before
	}, 30*time.Second, 10*time.Millisecond)
	recs := s.records()
	var traces, big int
	for _, r := range recs {
		if strings.HasPrefix(r.body, "java.lang.IllegalStateException") {
			traces++
			assert.Equal(t, "stderr", r.stream)
			assert.Equal(t, 4, strings.Count(r.body, "\n\tat "), "stack trace joined: %q", r.body)
		}
		assert.False(t, strings.HasPrefix(r.body, "\tat "), "stack trace line on its own")
		if strings.HasPrefix(r.body, `{"level":"DEBUG"`) {
			big++
			assert.GreaterOrEqual(t, len(r.body), 40*1024)
			assert.True(t, json.Valid([]byte(r.body)), "40 KiB line reassembled")
		}
		assert.False(t, r.incomplete || r.truncated)
		assert.NotEmpty(t, r.resource["k8s.pod.name"])
	}
	t.Logf("%d records, %d stack traces, %d 40 KiB lines", len(recs), traces, big)
	assert.Positive(t, traces)
	// 40 KiB lines are rare (1 in 2000 requests): checked above when present;
	// TestPartialReassembly covers P/F reassembly deterministically.
	assert.Zero(t, run.counter(t, "container_logs.parse_errors", ""))
	assert.Zero(t, run.counter(t, "container_logs.bytes_lost", ""))
}
