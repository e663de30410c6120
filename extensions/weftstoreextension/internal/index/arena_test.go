package index

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

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

// TestEntriesHoldNoPointers: the rings live outside the heap, so their
// entries must hold no pointer the collector would need to see (newCore
// panics otherwise); hasPointers itself is checked on both kinds.
func TestEntriesHoldNoPointers(t *testing.T) {
	assert.False(t, hasPointers(reflect.TypeFor[spanEntry]()))
	assert.False(t, hasPointers(reflect.TypeFor[logEntry]()))
	for _, typ := range []reflect.Type{reflect.TypeFor[spanView](), reflect.TypeFor[*int](), reflect.TypeFor[string](),
		reflect.TypeFor[[]byte](), reflect.TypeFor[map[int]int](), reflect.TypeFor[[2]struct{ s string }]()} {
		assert.True(t, hasPointers(typ), "%v", typ)
	}
	assert.Panics(t, func() { newCore[spanView, spanView](1<<20, nil, nil, nil, nil) })
}

// TestLargeRecords: records too large for a block are kept on the heap,
// read back whole while stored and released with their eviction.
func TestLargeRecords(t *testing.T) {
	x := NewLogs(1 << 20) // 16 KiB blocks: records over 4 KiB go to the heap
	big := strings.Repeat("x", 10_000)
	batch := func(i int) plog.Logs {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("k8s.namespace.name", "ns")
		rl.Resource().Attributes().PutStr("k8s.pod.name", fmt.Sprintf("pod-%d", i))
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.Body().SetStr(fmt.Sprintf("%d:%s", i, big))
		lr.SetTimestamp(pcommon.Timestamp(i + 1))
		return ld
	}
	for i := range 300 {
		x.Append(batch(i))
		recs, err := SearchLogs(x, LogQuery{Namespace: "ns", Pod: fmt.Sprintf("pod-%d", i)}, sameLog)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.Equal(t, fmt.Sprintf("%d:%s", i, big), recs[0].Body)
	}
	st := x.Stats()
	require.Positive(t, st.Evicted)
	assert.Equal(t, int64(300), st.Records+st.Evicted)
	assert.Equal(t, int(st.Records), len(x.arena.st.jumbo), "the evicted ones' bytes were released")
	all, err := SearchLogs(x, LogQuery{Limit: 1000}, sameLog)
	require.NoError(t, err)
	require.Len(t, all, int(st.Records))
	for _, r := range all {
		assert.True(t, strings.HasSuffix(r.Body, big))
	}
}

// TestTableHandles: freed handles are reused, 0 is none.
func TestTableHandles(t *testing.T) {
	var tb table[int]
	a, b := 1, 2
	ha, hb := tb.add(&a), tb.add(&b)
	assert.NotZero(t, ha)
	assert.NotEqual(t, ha, hb)
	assert.Nil(t, tb.get(0))
	assert.Same(t, &b, tb.get(hb))
	tb.remove(ha)
	c := 3
	assert.Equal(t, ha, tb.add(&c))
	assert.Same(t, &c, tb.get(ha))
}
