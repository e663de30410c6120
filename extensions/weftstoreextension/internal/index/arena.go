package index

import (
	"runtime"
	"sync/atomic"
)

// arena holds the serialized records and resources of an index outside
// the Go heap, in blocks taken from the operating system (osAlloc).
//
// Why outside: the collector lets the heap grow by GOGC percent of the
// live heap before it runs, so a byte kept on the heap costs 1 + GOGC/100
// bytes of RSS at the heap's high-water mark (1.75 at weft's GOGC 75). The
// indexes' budgets (64 MiB each by default) are most of weft's live heap at
// the nominal load; in the arena a budget costs its size, and the collector
// neither marks nor sweeps it.
//
// Records enter an index in arrival order and leave it oldest first, so
// the arena is a FIFO of bytes: alloc takes space at its head, and release
// frees the blocks wholly behind the oldest byte still in use. Space is
// addressed by a logical offset that only grows.
//
// Nothing outside the index may keep a slice of the arena: readers copy
// (otlpwire.Blob.Wrap builds a new buffer), entries moved to the pinned
// budget take heap copies (detach), and blocks are freed only under the
// index's write lock. Blocks still held when the index becomes unreachable
// are freed by a cleanup (withArenaCleanup).
//
// The arena also holds the ring's slots (mapRing): entries are
// pointer-free, so the collector need not see them.
type arena struct {
	st *arenaState
}

type arenaState struct {
	blockSize int
	blocks    []arenaBlock // oldest first; the last one takes allocations
	head      uint64       // logical offset of the next byte
	spare     block        // one freed block kept for reuse (buf nil: none)
	mapped    atomic.Int64 // bytes of the blocks held outside the heap (read by Stats)

	// Records too large for a block, on the heap: by location (jumboBit
	// set), and in allocation order with the head at that moment, for
	// release.
	jumbo     map[uint64][]byte
	jumboFIFO []jumboRec
	jumboNext uint64

	ringMem block // the ring's slots
}

type jumboRec struct{ pos, loc uint64 }

// jumboBit marks the location of a record kept on the heap.
const jumboBit = 1 << 63

// block is a block's memory: mapped by osAlloc, or on the heap if the
// operating system refused (the index then works as before the arena).
type block struct {
	buf []byte
	os  bool
}

type arenaBlock struct {
	block
	start uint64 // logical offset of buf[0]
	used  int
}

// Block sizes: a 64 MiB budget takes 1 MiB blocks, smaller budgets smaller
// ones, so that the two blocks the arena may hold beyond the records (the
// one being filled, the spare) stay within ~3% of the budget.
const (
	arenaMaxBlock = 1 << 20
	arenaMinBlock = 16 << 10
)

// newArena returns an arena for an index of maxBytes.
func newArena(maxBytes int64) arena {
	size := int64(arenaMaxBlock)
	for size > arenaMinBlock && size*64 > maxBytes {
		size /= 2
	}
	return arena{st: &arenaState{blockSize: int(size)}}
}

// withArenaCleanup frees the blocks of a once owner, the index holding it,
// is unreachable.
func withArenaCleanup[T any](owner *T, a arena) *T {
	runtime.AddCleanup(owner, (*arenaState).freeAll, a.st)
	return owner
}

// alloc returns n bytes (length and capacity n) at the head of the arena,
// and the logical offset they start at. A request over a quarter of a
// block is served from the heap instead (offset: the head), so that no
// block is left mostly empty.
func (a *arena) alloc(n int) ([]byte, uint64) {
	st := a.st
	if a.jumbo(n) {
		return make([]byte, n), st.head
	}
	if len(st.blocks) == 0 || st.blocks[len(st.blocks)-1].used+n > st.blockSize {
		st.grow()
	}
	b := &st.blocks[len(st.blocks)-1]
	at := b.start + uint64(b.used)
	p := b.buf[b.used : b.used+n : b.used+n]
	b.used += n
	st.head = at + uint64(n)
	return p, at
}

// jumbo reports whether n bytes go to the heap rather than a block.
func (a *arena) jumbo(n int) bool { return n > a.st.blockSize/4 }

// allocRec returns n bytes for a record and their location, for bytes: a
// logical offset, or for a record too large for a block (on the heap,
// kept until release passes its place) jumboBit and a number.
func (a *arena) allocRec(n int) ([]byte, uint64) {
	st := a.st
	if !a.jumbo(n) {
		return a.alloc(n)
	}
	if st.jumbo == nil {
		st.jumbo = make(map[uint64][]byte)
	}
	p := make([]byte, n)
	loc := jumboBit | st.jumboNext
	st.jumboNext++
	st.jumbo[loc] = p
	// One byte of a block marks its place: after its resource, before the
	// next scope's, so release drops it exactly when its entry is gone.
	_, pos := a.alloc(1)
	st.jumboFIFO = append(st.jumboFIFO, jumboRec{pos: pos, loc: loc})
	return p, loc
}

// bytes returns the n bytes of the record at loc.
func (a *arena) bytes(loc uint64, n uint32) []byte {
	st := a.st
	if loc&jumboBit != 0 {
		return st.jumbo[loc]
	}
	b := &st.blocks[(loc-st.blocks[0].start)/uint64(st.blockSize)]
	off := int(loc - b.start)
	return b.buf[off : off+int(n) : off+int(n)]
}

// grow starts a new block (the rest of the last block is left unused).
func (st *arenaState) grow() {
	start := st.head
	if k := len(st.blocks); k > 0 {
		start = st.blocks[k-1].start + uint64(st.blockSize)
	}
	b := st.spare
	st.spare = block{}
	if b.buf == nil {
		b = st.take()
	}
	st.blocks = append(st.blocks, arenaBlock{block: b, start: start})
	st.head = start
}

// take returns a new block, its pages resident (populate).
func (st *arenaState) take() block {
	buf, err := osAlloc(st.blockSize)
	if err != nil {
		return block{buf: make([]byte, st.blockSize)}
	}
	populate(buf)
	st.mapped.Add(int64(st.blockSize))
	return block{buf: buf, os: true}
}

// give returns a block to the operating system (a heap block to the
// collector).
func (st *arenaState) give(b block) {
	if b.os {
		osFree(b.buf)
		st.mapped.Add(-int64(st.blockSize))
	}
}

// release frees the blocks that end at or before the logical offset upTo,
// the start of the oldest bytes still in use, and the heap records taken
// before it; the block being filled stays. The first block freed becomes
// the spare if there is none.
func (a *arena) release(upTo uint64) {
	st := a.st
	k := 0
	for k < len(st.blocks)-1 && st.blocks[k].start+uint64(st.blockSize) <= upTo {
		if st.spare.buf == nil {
			st.spare = st.blocks[k].block
		} else {
			st.give(st.blocks[k].block)
		}
		k++
	}
	if k > 0 {
		n := copy(st.blocks, st.blocks[k:])
		clear(st.blocks[n:])
		st.blocks = st.blocks[:n]
	}
	j := 0
	for j < len(st.jumboFIFO) && st.jumboFIFO[j].pos < upTo {
		delete(st.jumbo, st.jumboFIFO[j].loc)
		j++
	}
	if j > 0 {
		st.jumboFIFO = append(st.jumboFIFO[:0], st.jumboFIFO[j:]...)
	}
}

// mapRing returns n zeroed bytes for the ring's slots and the ring's
// previous ones, which the caller frees with unmapRing once it copied
// them.
func (a *arena) mapRing(n int) (buf []byte, old block) {
	st := a.st
	old = st.ringMem
	buf, err := osAlloc(n)
	if err != nil {
		buf = make([]byte, n)
	} else {
		st.mapped.Add(int64(n))
	}
	st.ringMem = block{buf: buf, os: err == nil}
	return buf, old
}

// unmapRing frees the ring's slots b (from an earlier mapRing).
func (a *arena) unmapRing(b block) {
	if b.os {
		osFree(b.buf)
		a.st.mapped.Add(-int64(len(b.buf)))
	}
}

// freeAll frees every block.
func (st *arenaState) freeAll() {
	for _, b := range st.blocks {
		st.give(b.block)
	}
	st.give(st.spare)
	if st.ringMem.os {
		osFree(st.ringMem.buf)
		st.mapped.Add(-int64(len(st.ringMem.buf)))
	}
	st.blocks, st.spare, st.ringMem = nil, block{}, block{}
}

// mappedBytes is what the arena holds outside the heap.
func (a *arena) mappedBytes() int64 { return a.st.mapped.Load() }
