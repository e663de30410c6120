package evidencesamplingprocessor

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// TestBufferAccounting: bytes and items come back to zero whichever way
// traces leave (deadline, pin, eviction); a header shared by chunks counts
// once and until its last chunk leaves; a pinned entry's overhead stays
// until it reaches the front of the queue.
func TestBufferAccounting(t *testing.T) {
	b := newBuffer(100, 1<<20, 10)
	hdr := &header{b: make([]byte, 100)}
	body := make([]byte, 50)
	for i := range 3 {
		_, fits := b.add(unsampledID(uint64(i)), chunk{hdr: hdr, body: body}, 1, int64(i))
		require.True(t, fits)
	}
	items, bytes := b.size()
	assert.Equal(t, 3, items)
	assert.Equal(t, 3*(entryOverhead+50+chunkOverhead)+100+headerOverhead, bytes)

	assert.True(t, b.pin(unsampledID(1)))
	assert.False(t, b.pin(unsampledID(1)), "released once")
	items, bytes = b.size()
	assert.Equal(t, 2, items)
	assert.Equal(t, 3*entryOverhead+2*(50+chunkOverhead)+100+headerOverhead, bytes, "the pinned entry's overhead stays queued")

	got := b.due(11, false) // deadlines: trace 0 at 10, trace 1 (released) at 11
	require.Len(t, got, 2)
	assert.True(t, got[0].pinned, "released first")
	assert.Equal(t, unsampledID(0), got[1].id)
	items, bytes = b.size()
	assert.Equal(t, 1, items)
	assert.Equal(t, entryOverhead+50+chunkOverhead+100+headerOverhead, bytes, "trace 1 popped, trace 2 waits")

	got = b.due(0, true)
	require.Len(t, got, 1)
	items, bytes = b.size()
	assert.Zero(t, items)
	assert.Zero(t, bytes)
	assert.Zero(t, hdr.refs)
}

// TestBufferEvictsOldest: at the item bound the oldest trace leaves
// first, a chunk larger than the bound does not fit, and many traces
// passing through keep the queue compact.
func TestBufferEvictsOldest(t *testing.T) {
	b := newBuffer(2, 1<<20, 10)
	hdr := &header{b: []byte{1}}
	add := func(n uint64, items int) ([]*entry, bool) {
		return b.add(unsampledID(n), chunk{hdr: hdr, body: []byte{2}}, items, 0)
	}
	_, _ = add(1, 1)
	_, _ = add(2, 1)
	ev, fits := add(3, 1)
	require.True(t, fits)
	require.Len(t, ev, 1)
	assert.Equal(t, unsampledID(1), ev[0].id)
	_, fits = add(4, 3)
	assert.False(t, fits)
	for i := range 10_000 {
		_, _ = add(uint64(100+i), 1)
	}
	assert.LessOrEqual(t, len(b.queue)-b.head, 2)
	assert.LessOrEqual(t, cap(b.queue), 4096, "popped slots are reused")
	items, _ := b.size()
	assert.Equal(t, 2, items)
}

// TestLogsFollowSpans: log records and spans of the same traces are
// sampled alike (the same trace-ID randomness), so a kept trace keeps
// its log lines.
func TestLogsFollowSpans(t *testing.T) {
	host, _ := localHost(t)
	tr := newTracesRig(t, testConfig(tenPercent), host)
	lr := newLogsRig(t, testConfig(tenPercent), host)
	ids := randomIDs(2000, 5)
	var spans []span
	var records []logRecord
	for i, id := range ids {
		spans = append(spans, span{trace: id, n: uint64(i)})
		records = append(records, logRecord{trace: id, severity: 9, body: "GET /reviews 200"})
	}
	require.NoError(t, tr.front.ConsumeTraces(t.Context(), traces(spans...)))
	require.NoError(t, lr.front.ConsumeLogs(t.Context(), logs(records...)))
	ks, kl := keptSpans(tr.sink), keptLogs(lr.sink)
	assert.Equal(t, ks, kl)
	assert.NotEmpty(t, ks)
}

// TestRecentDrops: the last recentWindow dropped traces are remembered,
// each late pin counts once, older ones are forgotten.
func TestRecentDrops(t *testing.T) {
	var r recentDrops
	r.add([]pcommon.TraceID{unsampledID(0), unsampledID(0)})
	for i := 1; i <= recentWindow; i++ {
		r.add([]pcommon.TraceID{unsampledID(uint64(i))})
	}
	assert.False(t, r.late(unsampledID(0)), "pushed out")
	assert.True(t, r.late(unsampledID(1)))
	assert.False(t, r.late(unsampledID(1)), "once")
	assert.True(t, r.late(unsampledID(recentWindow)))
	assert.LessOrEqual(t, len(r.set), recentWindow)
}
