package weftpinsextension

import (
	"testing"
	"time"
)

// FuzzDecode: decode never panics, accepts only messages of the exact
// length, and what it accepts re-encodes to the same bytes; applying any
// input to a node never panics and never pins more than the message holds.
// Run: go test -run XXX -fuzz FuzzDecode ./extensions/weftpinsextension/
func FuzzDecode(f *testing.F) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC).Unix()
	f.Add(appendMessage(nil, kindBatch, "node-a", []record{{id: traceID(1, 1), until: now + 60, reason: ReasonAlert}}))
	f.Add(appendMessage(nil, kindState, "node-b", []record{{id: traceID(2, 1), until: now + 60, reason: ReasonErrorLog}, {id: traceID(2, 2), until: now - 60, reason: 9}}))
	f.Add(appendMessage(nil, kindState, "n", nil))
	f.Add([]byte{})
	f.Add([]byte{1, 1, 255})
	f.Add([]byte{1, 2, 1, 'x', 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, why := decode(b)
		if why != "" {
			return
		}
		if len(b) != messageLen(string(m.origin), m.n) {
			t.Fatalf("accepted %d bytes for %d records", len(b), m.n)
		}
		recs := make([]record, m.n)
		for i := range recs {
			recs[i] = m.record(i)
		}
		if got := appendMessage(nil, m.kind, string(m.origin), recs); string(got) != string(b) {
			t.Fatalf("re-encoded %x, want %x", got, b)
		}
		p, _ := newLocal(t, func(c *Config) { c.MaxPins = 10 })
		g := &gossip{p: p, cfg: p.cfg.Gossip, name: "self", lim: newLimiter(1000, 1000), q: newTestQueue()}
		if m.kind == kindBatch {
			g.NotifyMsg(b)
		} else {
			g.MergeRemoteState(b, false)
		}
		if n := p.Stats().Pins; n > m.n || n > 10 {
			t.Fatalf("%d pins from %d records", n, m.n)
		}
	})
}
