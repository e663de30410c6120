package index

// seqList is a FIFO of ascending sequence numbers.
type seqList struct {
	s    []uint64
	head int
}

func (l *seqList) push(seq uint64) { l.s = append(l.s, seq) }

func (l *seqList) len() int { return len(l.s) - l.head }

// popFront removes seq if it is the oldest element and reports whether the
// list is now empty.
func (l *seqList) popFront(seq uint64) bool {
	if l.head < len(l.s) && l.s[l.head] == seq {
		l.head++
	}
	if l.head == len(l.s) {
		l.s, l.head = l.s[:0], 0
		return true
	}
	// Compact once half of the backing array is dead.
	if l.head >= 32 && 2*l.head >= len(l.s) {
		n := copy(l.s, l.s[l.head:])
		l.s, l.head = l.s[:n], 0
	}
	return false
}

// newestFirst calls fn for each sequence number from the newest to the
// oldest until fn returns false.
func (l *seqList) newestFirst(fn func(seq uint64) bool) {
	for i := len(l.s) - 1; i >= l.head; i-- {
		if !fn(l.s[i]) {
			return
		}
	}
}

// ring holds entries in arrival order; the entry with sequence number seq is
// at buf[(start + seq - first) % len(buf)].
type ring[E any] struct {
	buf   []E
	start int    // index of the oldest entry
	n     int    // number of entries
	first uint64 // sequence number of the oldest entry
}

// ringFirstSlots is the ring's first capacity; it doubles when full. Its
// slots are charged at once (core.push): 64 of them cost under 8 KiB, a
// small share of the smallest budget (64 KiB), where 1024 (≈ 104 KiB of
// span slots) would exceed it, leaving the index empty after every append.
const ringFirstSlots = 64

// full reports whether a push needs more slots.
func (r *ring[E]) full() bool { return r.n == len(r.buf) }

// grow moves the entries into buf, a larger slice (zeroed), oldest first.
func (r *ring[E]) grow(buf []E) {
	k := copy(buf, r.buf[r.start:min(r.start+r.n, len(r.buf))])
	copy(buf[k:r.n], r.buf[:r.n-k])
	r.buf, r.start = buf, 0
}

// push appends e and returns its sequence number and the number of slots
// the ring grew by (0 unless it was full: then on the heap; core grows
// its rings outside the heap first, see core.push).
func (r *ring[E]) push(e E) (seq uint64, grown int) {
	if r.full() {
		grown = max(len(r.buf), ringFirstSlots)
		r.grow(make([]E, len(r.buf)+grown))
	}
	r.buf[(r.start+r.n)%len(r.buf)] = e
	r.n++
	return r.first + uint64(r.n) - 1, grown
}

// get returns the entry with sequence number seq, or nil once it is evicted.
func (r *ring[E]) get(seq uint64) *E {
	if seq < r.first || seq >= r.first+uint64(r.n) {
		return nil
	}
	return &r.buf[(r.start+int(seq-r.first))%len(r.buf)]
}

// oldest returns the oldest entry and its sequence number; ok is false when
// the ring is empty.
func (r *ring[E]) oldest() (e *E, seq uint64, ok bool) {
	if r.n == 0 {
		return nil, 0, false
	}
	return &r.buf[r.start], r.first, true
}

// pop removes the oldest entry.
func (r *ring[E]) pop() {
	var zero E
	r.buf[r.start] = zero
	r.start = (r.start + 1) % len(r.buf)
	r.n--
	r.first++
}

// next is the sequence number the next push will get.
func (r *ring[E]) next() uint64 { return r.first + uint64(r.n) }

// newestFirst calls fn for the sequence number of every entry, from the
// newest to the oldest, until fn returns false.
func (r *ring[E]) newestFirst(fn func(seq uint64) bool) {
	for seq := r.next(); seq > r.first; seq-- {
		if !fn(seq - 1) {
			return
		}
	}
}
