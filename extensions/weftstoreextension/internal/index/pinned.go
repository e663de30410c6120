package index

import (
	"bytes"
	"container/heap"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Pins says which traces are pinned: weft_pins' *Pins. Pinned is asked
// for every entry the normal budget evicts (the hot path); PinnedUntil
// only for pinned ones.
type Pins interface {
	Pinned(traceID pcommon.TraceID) bool
	PinnedUntil(traceID pcommon.TraceID) (time.Time, bool)
}

// Reasons an entry of the pinned budget is evicted.
const (
	// PinnedBudgetFull: the pinned budget was full; the entries of the
	// trace whose pin ends soonest go first (oldest first within it).
	PinnedBudgetFull = "budget_full"
	// PinnedExpired: the trace's pin ended (expired, or weft_pins dropped it).
	PinnedExpired = "expired"
)

// pinnedEntry is an entry the normal budget evicted while its trace was
// pinned, with its sequence number (queries order by it).
type pinnedEntry[V any] struct {
	e   V
	seq uint64
}

// pinnedTrace holds the entries of one pinned trace that left the ring,
// oldest first (entries[head:]).
type pinnedTrace[V any] struct {
	id pcommon.TraceID
	// until is the end of the pin (unix seconds) as last asked. A pin only
	// grows, so the real end is never earlier; it is asked again before
	// the trace is evicted.
	until   int64
	entries []pinnedEntry[V]
	head    int
	slots   int // capacity of entries charged to the pinned budget
	pos     int // position in the heap
}

func (pt *pinnedTrace[V]) live() []pinnedEntry[V] { return pt.entries[pt.head:] }

// pinnedTraceOverhead is what a pinned trace costs besides its entries: the
// struct, its map entry and its heap slot.
const pinnedTraceOverhead = int64(unsafe.Sizeof(pinnedTrace[spanEntry]{})) + 64 + 8

// pinHeap orders pinned traces by the end of their pin, soonest first.
type pinHeap[V any] []*pinnedTrace[V]

func (h pinHeap[V]) Len() int           { return len(h) }
func (h pinHeap[V]) Less(i, j int) bool { return h[i].until < h[j].until }
func (h pinHeap[V]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}
func (h *pinHeap[V]) Push(x any) {
	pt := x.(*pinnedTrace[V])
	pt.pos = len(*h)
	*h = append(*h, pt)
}
func (h *pinHeap[V]) Pop() any {
	old := *h
	pt := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return pt
}

// pinned is the pinned budget of an index: entries of pinned traces that
// the normal budget evicted, kept until their pin ends, within maxBytes.
// It is part of core and guarded by core's mutex.
type pinned[V any] struct {
	pins     Pins // nil: no exemption
	now      func() time.Time
	maxBytes int64
	traces   map[pcommon.TraceID]*pinnedTrace[V]
	heap     pinHeap[V]
	bytes    int64
	records  int64

	moved   int64 // entries moved here from the normal budget
	full    int64 // evicted: budget_full
	expired int64 // evicted: expired
	// meta returns an entry's trace ID, its resource and the bytes it was
	// charged (its size in the normal budget); data, its bytes.
	meta func(v *V) (pcommon.TraceID, *resource, int32)
	data func(v *V) *[]byte
}

// slotSize is what one pinned entry's slot costs.
func (p *pinned[V]) slotSize() int64 { return int64(unsafe.Sizeof(pinnedEntry[V]{})) }

// SetPins turns on the exemption of pinned traces from eviction: entries
// of traces that pins reports pinned are kept in a budget of their own of
// maxBytes until their pin ends. now is the clock their expiry is compared
// with. A nil pins or a zero maxBytes turns it off (entries already kept
// stay until they expire or are evicted). A non-nil pins also turns on,
// for good, the memory of evicted traces that NotePin reads
// (EvictedTraceBytes).
func (c *core[E, V]) SetPins(pins Pins, maxBytes int64, now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pins != nil && c.gone.Load() == nil {
		c.gone.Store(new(evictedTraces))
	}
	if maxBytes <= 0 {
		pins = nil
	}
	c.pin.pins, c.pin.maxBytes, c.pin.now = pins, maxBytes, now
}

// pinnedUntil reports whether the trace id is pinned (asked of the pins
// when an entry of it is evicted) and until when.
func (c *core[E, V]) pinnedUntil(id pcommon.TraceID) (time.Time, bool) {
	p := &c.pin
	if p.pins == nil || id.IsEmpty() || !p.pins.Pinned(id) {
		return time.Time{}, false
	}
	return p.pins.PinnedUntil(id)
}

// keep moves v, the entry numbered seq that the normal budget evicted
// (already unlinked and uncharged, resolved before), into the pinned
// budget: its trace is pinned until until.
func (c *core[E, V]) keep(v V, seq uint64, until time.Time) {
	p := &c.pin
	id, res, size := p.meta(&v)
	u := until.Unix()
	pt := p.traces[id]
	if pt == nil {
		if p.traces == nil {
			p.traces = make(map[pcommon.TraceID]*pinnedTrace[V])
		}
		pt = &pinnedTrace[V]{id: id, until: u}
		p.traces[id] = pt
		heap.Push(&p.heap, pt)
		p.bytes += pinnedTraceOverhead
	} else if u > pt.until {
		pt.until = u
		heap.Fix(&p.heap, pt.pos)
	}
	// The arena frees what the ring no longer holds: the kept entry and its
	// resource move to the heap (the same size: the charge stands).
	if d := p.data(&v); d != nil {
		*d = bytes.Clone(*d)
	}
	if !res.onHeap {
		res.Blob, res.onHeap = res.Blob.Clone(), true
	}
	pt.entries = append(pt.entries, pinnedEntry[V]{e: v, seq: seq})
	if c := cap(pt.entries); c > pt.slots {
		p.bytes += int64(c-pt.slots) * p.slotSize()
		pt.slots = c
	}
	if res.pinRefs == 0 {
		p.bytes += res.size()
	}
	res.pinRefs++
	p.bytes += int64(size)
	p.records++
	p.moved++
}

// expirePinned evicts the pinned entries of traces whose pin has ended.
// It costs one comparison while no stored expiry has passed.
func (c *core[E, V]) expirePinned() {
	p := &c.pin
	if len(p.heap) == 0 {
		return
	}
	now := time.Now
	if p.now != nil {
		now = p.now
	}
	t := now().Unix()
	for len(p.heap) > 0 && p.heap[0].until <= t {
		pt := p.heap[0]
		if p.pins != nil {
			if u, ok := p.pins.PinnedUntil(pt.id); ok && u.Unix() > t {
				pt.until = u.Unix() // extended since it was kept
				heap.Fix(&p.heap, 0)
				continue
			}
		}
		c.dropPinned(pt, &p.expired)
	}
}

// fitPinned evicts pinned entries until the pinned budget holds: the
// trace whose pin ends soonest first, its oldest entries first. Before a
// trace is chosen its pin is asked again: an extended pin moves it back
// in the order, an ended one is evicted whole as expired.
func (c *core[E, V]) fitPinned() {
	p := &c.pin
	for p.bytes > p.maxBytes && len(p.heap) > 0 {
		pt := p.heap[0]
		if p.pins != nil {
			u, ok := p.pins.PinnedUntil(pt.id)
			if !ok {
				c.dropPinned(pt, &p.expired)
				continue
			}
			if u.Unix() > pt.until {
				pt.until = u.Unix()
				heap.Fix(&p.heap, 0)
				continue
			}
		}
		c.evictPinnedOldest(pt, &p.full)
	}
}

// evictPinnedOldest evicts the oldest entry of pt, counting it in reason.
func (c *core[E, V]) evictPinnedOldest(pt *pinnedTrace[V], reason *int64) {
	p := &c.pin
	pe := &pt.entries[pt.head]
	_, res, size := p.meta(&pe.e)
	c.releasePinned(res, size, reason)
	*pe = pinnedEntry[V]{}
	pt.head++
	if pt.head == len(pt.entries) {
		c.removePinned(pt)
		return
	}
	if pt.head >= 32 && 2*pt.head >= len(pt.entries) {
		n := copy(pt.entries, pt.entries[pt.head:])
		clear(pt.entries[n:])
		pt.entries, pt.head = pt.entries[:n], 0
	}
}

// dropPinned evicts every entry of pt, counting them in reason. Its pin
// has ended (the only reason a whole trace goes): a new pin of it comes
// after eviction.
func (c *core[E, V]) dropPinned(pt *pinnedTrace[V], reason *int64) {
	c.rememberEvicted(pt.id)
	for _, pe := range pt.live() {
		_, res, size := c.pin.meta(&pe.e)
		c.releasePinned(res, size, reason)
	}
	c.removePinned(pt)
}

func (c *core[E, V]) releasePinned(res *resource, size int32, reason *int64) {
	p := &c.pin
	res.pinRefs--
	if res.pinRefs == 0 {
		p.bytes -= res.size()
	}
	p.bytes -= int64(size)
	p.records--
	*reason++
	c.evicted++
	c.evictedBytes += int64(size)
}

func (c *core[E, V]) removePinned(pt *pinnedTrace[V]) {
	p := &c.pin
	heap.Remove(&p.heap, pt.pos)
	delete(p.traces, pt.id)
	p.bytes -= pinnedTraceOverhead + int64(pt.slots)*p.slotSize()
}

// pinnedOf calls fn for the pinned entries of trace id, newest first,
// until fn returns false.
func (c *core[E, V]) pinnedOf(id pcommon.TraceID, fn func(e *V, seq uint64) bool) {
	pt := c.pin.traces[id]
	if pt == nil {
		return
	}
	live := pt.live()
	for i := len(live) - 1; i >= 0; i-- {
		if !fn(&live[i].e, live[i].seq) {
			return
		}
	}
}

// allPinned calls fn for every pinned entry (in no particular order) until
// fn returns false.
func (c *core[E, V]) allPinned(fn func(e *V, seq uint64) bool) {
	for _, pt := range c.pin.traces {
		live := pt.live()
		for i := range live {
			if !fn(&live[i].e, live[i].seq) {
				return
			}
		}
	}
}
