package evidencesamplingprocessor

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extensions/weftpinsextension"
	"github.com/weftobs/weft/internal/loopback"
	"github.com/weftobs/weft/internal/weftest"
)

// gossipWait bounds waits for gossip (20 ms rounds here; the race
// detector and a loaded machine slow everything).
const gossipWait = 20 * time.Second

// node is one simulated agent: a weft_pins extension gossiping on
// loopback, and an evidence_sampling processor for traces on it.
type node struct {
	pins *weftpinsextension.Pins
	host weftest.Host
}

// twoNodes starts two weft_pins extensions on loopback that form one
// encrypted gossip cluster.
func twoNodes(t *testing.T) (a, b node) {
	t.Helper()
	key := writeKey(t)
	addrs, err := loopback.FreeAddrs(2)
	require.NoError(t, err)
	idA, pa := newPins(t, "a", gossipPins("a", addrs[0], key))
	idB, pb := newPins(t, "b", gossipPins("b", addrs[1], key, addrs[0]))
	for _, p := range []*weftpinsextension.Pins{pa, pb} {
		require.Eventually(t, func() bool { return p.Stats().Members == 2 }, gossipWait, 20*time.Millisecond, "two members")
	}
	return node{pins: pa, host: weftest.Host{idA: pa}}, node{pins: pb, host: weftest.Host{idB: pb}}
}

// TestConsistentAcrossNodes: two nodes, each seeing its own hop (own
// spans, own resource) of the same 10,000 traces at 10 %, keep exactly
// the same traces without a word between them, and the kept fraction is
// the threshold's probability within 4 binomial standard deviations.
//
// The threshold of 10 % is e666 (precision 4): p = 1 - 0xe666/0x10000 =
// 0.100006…; n = 10,000 gives σ = √(n·p·(1-p)) ≈ 30, so 4σ ≈ 120 traces.
// The IDs come from a seeded generator (the figure is reproducible); with
// fresh random IDs the test would fail by chance once in ~16,000 runs.
func TestConsistentAcrossNodes(t *testing.T) {
	na, nb := twoNodes(t)
	cfg := testConfig(func(c *Config) { tenPercent(c); c.DecisionWait = time.Minute })
	ra, rb := newTracesRig(t, cfg, na.host), newTracesRig(t, cfg, nb.host)
	ctx := context.Background()
	const n = 10_000
	ids := randomIDs(n, 20)
	for start := 0; start < n; start += 500 {
		var sa, sb []span
		for i := start; i < start+500; i++ {
			sa = append(sa, span{trace: ids[i], n: uint64(2 * i)})
			sb = append(sb, span{trace: ids[i], n: uint64(2*i + 1)})
		}
		require.NoError(t, ra.front.ConsumeTraces(ctx, traces(sa...)))
		require.NoError(t, rb.front.ConsumeTraces(ctx, traces(sb...)))
	}
	// End of the wait: whatever was not sampled is dropped on both.
	for _, r := range []*tracesRig{ra, rb} {
		r.clock.Advance(cfg.DecisionWait)
		r.p.flush(ctx, false)
	}
	keptA, keptB := keptSpans(ra.sink), keptSpans(rb.sink)
	assert.Equal(t, keptA, keptB, "the same traces on both nodes")

	p := 1 - float64(thresholdFor(10))/float64(maxThreshold)
	sigma := math.Sqrt(n * p * (1 - p))
	got := float64(len(keptA))
	t.Logf("kept %d of %d traces (%.4f); expected %.1f ± %.1f (4σ)", len(keptA), n, got/n, n*p, 4*sigma)
	assert.InDelta(t, n*p, got, 4*sigma)
	for _, r := range []*tracesRig{ra, rb} {
		assert.Equal(t, int64(len(keptA)), r.p.counts.kept[keptSampled].Load())
		assert.Equal(t, int64(n-len(keptA)), r.p.counts.dropped[droppedUnsampled].Load())
		for _, td := range r.sink.AllTraces() {
			spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
			for i := range spans.Len() {
				require.Equal(t, "ot=th:e666", spans.At(i).TraceState().AsRaw())
			}
		}
	}
}

// TestPinFromPeerKeepsWaitingSpans: node B holds spans of an unsampled
// trace; an error span of that trace on node A pins it there, the pin
// reaches B by gossip within decision_wait, and B passes its waiting
// spans on (long before the deadline: the wait is a minute). A trace
// nobody pinned stays waiting on B and is dropped at its end.
func TestPinFromPeerKeepsWaitingSpans(t *testing.T) {
	na, nb := twoNodes(t)
	cfg := testConfig(func(c *Config) { tenPercent(c); c.DecisionWait = time.Minute })
	ra, rb := newTracesRig(t, cfg, na.host), newTracesRig(t, cfg, nb.host)
	ctx := context.Background()
	failing, quiet := unsampledID(0x51), unsampledID(0x52)

	require.NoError(t, rb.front.ConsumeTraces(ctx, traces(span{trace: failing, n: 1}, span{trace: failing, n: 2}, span{trace: quiet, n: 3})))
	assert.Zero(t, rb.sink.SpanCount(), "unsampled: waiting on B")

	require.NoError(t, ra.front.ConsumeTraces(ctx, traces(span{trace: failing, n: 10, http: 503})))
	assert.Equal(t, map[pcommon.TraceID]int{failing: 1}, keptSpans(ra.sink), "A keeps its error span")
	assert.True(t, na.pins.Pinned(failing))

	require.Eventually(t, func() bool { return keptSpans(rb.sink)[failing] == 2 }, gossipWait, 10*time.Millisecond,
		"B's waiting spans are kept once the pin arrives")
	assert.True(t, nb.pins.Pinned(failing))
	assert.Zero(t, keptSpans(rb.sink)[quiet])
	assert.Equal(t, int64(1), na.pins.Stats().Local["error_span"])
	assert.Equal(t, int64(0), nb.pins.Stats().Local["error_span"], "B only received it")

	rb.clock.Advance(cfg.DecisionWait)
	rb.p.flush(ctx, false)
	assert.Zero(t, keptSpans(rb.sink)[quiet])
	assert.Equal(t, int64(1), rb.p.counts.dropped[droppedUnsampled].Load())

	// Later spans of the pinned trace pass at once on either node.
	require.NoError(t, rb.front.ConsumeTraces(ctx, traces(span{trace: failing, n: 4, status: ptrace.StatusCodeUnset})))
	assert.Equal(t, 3, keptSpans(rb.sink)[failing])
}
