package index

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestArenaFIFO drives an arena as an index does: allocations of random
// sizes at the head, the oldest released as a budget would evict them.
// Every allocation still held must keep its bytes (no block is freed or
// reused under it), and the arena must hold no more than the live bytes
// plus the block being filled, a spare and the block of the oldest.
func TestArenaFIFO(t *testing.T) {
	const budget = 1 << 20
	a := newArena(budget)
	bs := a.st.blockSize
	require.Equal(t, 16<<10, bs, "a 1 MiB budget takes 16 KiB blocks")
	type held struct {
		p    []byte
		at   uint64
		fill byte
	}
	var live []held
	liveBytes := 0
	rng := rand.New(rand.NewPCG(1, 2))
	var maxMapped int64
	for i := range 200_000 {
		n := rng.IntN(600)
		if i%1000 == 0 {
			n = bs/4 + 1 + rng.IntN(bs) // too large: from the heap
		}
		headBefore := a.st.head
		p, at := a.alloc(n)
		require.Len(t, p, n)
		require.Equal(t, n, cap(p), "an allocation cannot be appended into its neighbour")
		if n > bs/4 {
			assert.Equal(t, headBefore, at, "a heap allocation takes no arena space")
			assert.Equal(t, headBefore, a.st.head)
		} else {
			assert.GreaterOrEqual(t, at, headBefore)
			assert.Equal(t, at+uint64(n), a.st.head)
		}
		h := held{p: p, at: at, fill: byte(i)}
		for k := range p {
			p[k] = h.fill
		}
		live = append(live, h)
		liveBytes += n
		for liveBytes > budget {
			liveBytes -= len(live[0].p)
			live = live[1:]
		}
		a.release(live[0].at)
		maxMapped = max(maxMapped, a.mappedBytes())
		if i%997 == 0 {
			for _, h := range live {
				require.Equal(t, bytes.Repeat([]byte{h.fill}, len(h.p)), h.p, "allocation %d", i)
			}
		}
	}
	for _, h := range live {
		require.Equal(t, bytes.Repeat([]byte{h.fill}, len(h.p)), h.p)
	}
	t.Logf("blocks of %d B; held at most %d B outside the heap for %d B live", bs, maxMapped, budget)
	// Each block leaves less than the largest allocation (600 B) unused at
	// its end; beyond the live bytes: the oldest block, partly released,
	// the one being filled and the spare.
	assert.LessOrEqual(t, maxMapped, int64((budget/(bs-600)+3)*bs))
	assert.Positive(t, maxMapped, "blocks come from the operating system")

	a.release(a.st.head)
	assert.Len(t, a.st.blocks, 1, "the block being filled stays")
	assert.LessOrEqual(t, a.mappedBytes(), int64(2*bs), "that block and the spare")
}

// TestArenaCleanup: the blocks of an index that became unreachable go back
// to the operating system.
func TestArenaCleanup(t *testing.T) {
	x := NewLogs(1 << 20)
	st := x.arena.st
	var seq uint64
	fillLogs(x, &seq, 2)
	require.Positive(t, x.arena.mappedBytes())
	x = nil
	_ = x
	require.Eventually(t, func() bool {
		runtime.GC()
		return st.mapped.Load() == 0
	}, 10*time.Second, 10*time.Millisecond, "the cleanup freed every block")
}
