package weftpinsextension

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestWireRoundTrip(t *testing.T) {
	recs := []record{
		{id: traceID(0xab, 1), until: 1_800_000_000, reason: ReasonAlert},
		{id: traceID(0xcd, 2), until: 1_800_000_123, reason: ReasonErrorSpan},
		{id: traceID(0xef, 3), until: 1_800_000_456, reason: ReasonErrorLog},
	}
	b := appendMessage(nil, kindBatch, "node-a", recs)
	require.Len(t, b, messageLen("node-a", 3))
	assert.Equal(t, 5+6+3*21, len(b), "21 bytes a pin")
	m, why := decode(b)
	require.Empty(t, why)
	assert.Equal(t, byte(kindBatch), m.kind)
	assert.Equal(t, "node-a", string(m.origin))
	require.Equal(t, 3, m.n)
	for i, r := range recs {
		assert.Equal(t, r, m.record(i))
	}

	st := appendMessage(nil, kindState, "node-b", nil)
	m, why = decode(st)
	require.Empty(t, why, "an empty state is valid")
	assert.Equal(t, 0, m.n)

	full := make([]record, maxBatch)
	for i := range full {
		full[i] = record{id: traceID(1, i), until: 1, reason: ReasonAlert}
	}
	assert.LessOrEqual(t, len(appendMessage(nil, kindBatch, string(make([]byte, maxOrigin)), full)), 1100,
		"a full batch fits one memberlist UDP packet (1400 bytes) with its framing")
}

// TestDecodeRefuses: every malformed message is refused with its reason.
func TestDecodeRefuses(t *testing.T) {
	good := appendMessage(nil, kindBatch, "n", []record{{id: traceID(1, 1), until: 2_000_000_000, reason: ReasonAlert}})
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tooMany := appendMessage(nil, kindBatch, "n", make([]record, maxBatch+1))
	for _, tc := range []struct {
		name string
		buf  []byte
		want string
	}{
		{"empty", nil, refusedShort},
		{"header only", good[:4], refusedShort},
		{"version 0", mut(func(b []byte) []byte { b[0] = 0; return b }), refusedVersion},
		{"version 2", mut(func(b []byte) []byte { b[0] = 2; return b }), refusedVersion},
		{"kind 0", mut(func(b []byte) []byte { b[1] = 0; return b }), refusedKind},
		{"kind 3", mut(func(b []byte) []byte { b[1] = 3; return b }), refusedKind},
		{"empty origin", mut(func(b []byte) []byte { b[2] = 0; return b }), refusedOrigin},
		{"origin too long", mut(func(b []byte) []byte { b[2] = maxOrigin + 1; return b }), refusedOrigin},
		{"origin past the end", mut(func(b []byte) []byte { b[2] = 60; return b }), refusedShort},
		{"truncated record", good[:len(good)-1], refusedLength},
		{"trailing byte", append(append([]byte(nil), good...), 0), refusedLength},
		{"count too high", mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[4:], 2); return b }), refusedLength},
		{"count 65535", mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[4:], 0xffff); return b }), refusedLength},
		{"empty batch", appendMessage(nil, kindBatch, "n", nil), refusedLength},
		{"batch over maxBatch", tooMany, refusedLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, why := decode(tc.buf)
			assert.Equal(t, tc.want, why)
		})
	}
}

func TestRecordCheck(t *testing.T) {
	assert.Empty(t, record{id: traceID(1, 1), reason: ReasonErrorLog}.check())
	assert.Equal(t, refusedReason, record{id: traceID(1, 1), reason: 0}.check())
	assert.Equal(t, refusedReason, record{id: traceID(1, 1), reason: 4}.check())
	assert.Equal(t, refusedZeroID, record{id: pcommon.TraceID{}, reason: ReasonAlert}.check())
}

func TestWireUntil(t *testing.T) {
	assert.Equal(t, uint32(0), wireUntil(-5))
	assert.Equal(t, uint32(1<<32-1), wireUntil(1<<40))
	now := time.Now().Unix()
	assert.Equal(t, uint32(now), wireUntil(now))
}

// TestNotifyMsgHostile feeds a running node's delegate hostile messages:
// each is refused and counted by reason, and nothing is pinned.
func TestNotifyMsgHostile(t *testing.T) {
	p, clk := newLocal(t, nil)
	g := &gossip{p: p, cfg: p.cfg.Gossip, name: "self", lim: newLimiter(5, 5)}
	g.q = newTestQueue()
	now := clk.Now().Unix()
	good := func(b byte, n int) record { return record{id: traceID(b, n), until: now + 60, reason: ReasonErrorSpan} }

	// Whole messages refused.
	g.NotifyMsg(nil)
	g.NotifyMsg([]byte{9, 1, 1, 'x', 0, 0})
	g.NotifyMsg(appendMessage(nil, kindState, "peer", []record{good(1, 1)})) // a state as a broadcast
	g.MergeRemoteState(appendMessage(nil, kindBatch, "peer", []record{good(1, 2)}), false)
	g.NotifyMsg(appendMessage(nil, kindBatch, "peer", []record{good(1, 3)})[:20])
	// Records refused.
	g.NotifyMsg(appendMessage(nil, kindBatch, "peer", []record{
		{id: traceID(2, 1), until: now + 60, reason: 7},
		{id: pcommon.TraceID{}, until: now + 60, reason: ReasonAlert},
		{id: traceID(2, 2), until: now - 1, reason: ReasonAlert},
		{id: traceID(2, 3), until: now + 10*365*24*3600, reason: ReasonAlert}, // clamped, accepted
	}))
	st := p.Stats()
	assert.Equal(t, map[string]int64{"short": 1, "version": 1, "kind": 2, "length": 1, "origin": 0, "undecryptable": 0}, st.RefusedMessages)
	assert.Equal(t, map[string]int64{"reason": 1, "zero_id": 1, "expired": 1, "rate_limited": 0}, st.RefusedPins)
	assert.Equal(t, 1, st.Pins)
	assert.Equal(t, int64(1), st.Clamped)
	u, ok := p.PinnedUntil(traceID(2, 3))
	require.True(t, ok)
	assert.Equal(t, clk.Now().Add(p.cfg.MaxTTL), u, "clamped to max_ttl")
	assert.Equal(t, 1, g.q.NumQueued(), "the accepted pin is relayed")
	relay := g.q.GetBroadcasts(0, 1400)
	require.Len(t, relay, 1)
	rm, why := decode(relay[0])
	require.Empty(t, why)
	assert.Equal(t, "peer", string(rm.origin), "a relay keeps the origin")
	require.Equal(t, 1, rm.n)
	assert.Equal(t, record{id: traceID(2, 3), until: ceilUnix(clk.Now().Add(p.cfg.MaxTTL)), reason: ReasonAlert}, rm.record(0), "with the expiry as applied")
	g.q.Reset()
	g.NotifyMsg(appendMessage(nil, kindBatch, "peer2", []record{{id: traceID(2, 3), until: now + 60, reason: ReasonAlert}}))
	assert.Equal(t, 0, g.q.NumQueued(), "a known pin is not relayed again")

	// A flood from one origin: 5 a second (burst 5) get through; repeats
	// of known pins cost nothing; another origin has its own budget.
	var flood []record
	for i := range 20 {
		flood = append(flood, good(3, i))
	}
	g.NotifyMsg(appendMessage(nil, kindBatch, "flooder", flood))
	g.NotifyMsg(appendMessage(nil, kindBatch, "flooder", flood[:5]))
	assert.Equal(t, int64(15), p.Stats().RefusedPins["rate_limited"])
	g.NotifyMsg(appendMessage(nil, kindBatch, "other", []record{good(4, 1)}))
	assert.True(t, p.Pinned(traceID(4, 1)))
	clk.Advance(time.Second)
	g.NotifyMsg(appendMessage(nil, kindBatch, "flooder", flood[5:15]))
	st = p.Stats()
	assert.Equal(t, int64(20), st.RefusedPins["rate_limited"], "the budget refills at 5 a second")
	assert.Equal(t, int64(1+5+1+5), st.Received)
	assert.Equal(t, map[string]map[string]int64{"flooder": {"rate_limited": 20}}, map[string]map[string]int64{"flooder": {"rate_limited": p.refused.Snapshot()["rate_limited"]["flooder"]}})
}

// TestLimiterBoundsOrigins: origins beyond maxOrigins share one bucket.
func TestLimiterBoundsOrigins(t *testing.T) {
	l := newLimiter(1, 1)
	now := time.Now()
	for i := range maxOrigins + 10 {
		l.allow(string(rune('a'+i%26))+string(rune(i)), now)
	}
	assert.LessOrEqual(t, len(l.buckets), maxOrigins+1)
}
