package weftpinsextension

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// benchPins returns a set holding n pins (traceID(0x11, i)) on the real
// clock, as the store and the sampler see it.
func benchPins(b *testing.B, n int) *Pins {
	b.Helper()
	cfg := localConfig()
	cfg.MaxPins = max(n, 1)
	p := newPins(nopSettings(), cfg)
	for i := range n {
		p.Pin(traceID(0x11, i), time.Time{}, ReasonErrorSpan)
	}
	return p
}

// BenchmarkPinned: the hot path, on a running set of 64k pins, for a
// pinned and an unpinned trace, from one goroutine and from all.
// Run: go test -run XXX -bench Pinned -benchmem ./extensions/weftpinsextension/
func BenchmarkPinned(b *testing.B) {
	p := benchPins(b, 65_536)
	startedForBench(b, p)
	hit, miss := traceID(0x11, 1234), traceID(0x22, 1234)
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !p.Pinned(hit) {
				b.Fatal("not pinned")
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if p.Pinned(miss) {
				b.Fatal("pinned")
			}
		}
	})
	b.Run("parallel_mixed", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var id pcommon.TraceID
			i := 0
			for pb.Next() {
				id = traceID(byte(0x11+i&1), i&0xffff)
				p.Pinned(id)
				i++
			}
		})
	})
}

// BenchmarkPin: a new pin (the write path: heap, ring, shard lock), at
// the max_pins bound so every pin also evicts one.
func BenchmarkPin(b *testing.B) {
	p := benchPins(b, 100_000)
	b.ReportAllocs()
	i := 0
	now := time.Now()
	for b.Loop() {
		p.Pin(traceID(0x33, i&0xffff), now.Add(time.Hour+time.Duration(i)*time.Second), ReasonErrorSpan)
		i++
	}
}

// TestPinnedNoAllocs asserts the hot path allocates nothing.
func TestPinnedNoAllocs(t *testing.T) {
	p, _ := newLocal(t, nil)
	id := traceID(0x44, 1)
	p.Pin(id, time.Time{}, ReasonAlert)
	if n := testing.AllocsPerRun(1000, func() { p.Pinned(id); p.Pinned(traceID(0x45, 1)) }); n != 0 {
		t.Fatalf("Pinned allocates %v times", n)
	}
}

// startedForBench runs the sweep (the coarse clock) as a started
// extension does.
func startedForBench(b *testing.B, p *Pins) {
	b.Helper()
	require.NoError(b, p.Start(context.Background(), componenttest.NewNopHost()))
	b.Cleanup(func() { require.NoError(b, p.Shutdown(context.Background())) })
}
