// Package index keeps weft_store's recent spans and log records in memory
// within a byte budget each, and answers the store's span and log queries.
//
// The span and log indexes share one layout (core): entries live in a ring
// in arrival order, each with a sequence number; every index key (trace
// ID, service, pod, ...) maps to a seqList of the sequence numbers of its
// entries in ascending order. Eviction always removes the oldest entry,
// whose sequence number is therefore at the front of every list it is on,
// so removing it from an index is a pop from the front: no search, no
// tree. An evicted entry whose trace is pinned leaves the ring and its
// lists all the same, into the pinned budget (pinned.go), which the
// queries read besides the ring.
//
// Each record is kept serialized: otlpwire.Encoder writes each record's
// bytes as pdata would, and the resource and scope of a ScopeX, kept once
// and shared by its records, come from marshaling the batch without its
// records (skeleton) and splitting that (otlpwire). Those bytes live in
// the index's arena, outside the Go heap (arena.go).
package index

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/otlpwire"
)

// Pod identifies a Kubernetes pod (k8s.namespace.name, k8s.pod.name).
type Pod struct {
	Namespace string
	Name      string
}

// Stats are an index's counters, as weftstoreextension.IndexStats (their public
// form) describes them.
type Stats struct {
	Records, Bytes, MaxBytes, Evicted, EvictedBytes, Unencodable int64
	// The arena's blocks (outside the Go heap; part of Bytes).
	OffHeapBytes int64
	// The pinned budget (see SetPins).
	PinnedRecords, PinnedBytes, PinnedMaxBytes, Pinned, EvictedPinnedFull, EvictedPinnedExpired int64
	// Pins that came after records of their trace were dropped (NotePin).
	PinsAfterEviction int64
}

// resource holds the serialized resource and scope shared by the records
// of one ScopeX. Its bytes are charged to the index while at least one
// entry refers to it.
type resource struct {
	otlpwire.Blob
	at      uint64 // logical offset of the blob in the arena (see release)
	h       handle // in core.res while entries in the ring refer to it
	onHeap  bool   // the blob was copied to the heap (detach)
	refs    int    // entries in the ring
	pinRefs int    // entries in the pinned budget (charged there apart)
}

// resourceOverhead is the heap cost of a resource besides its bytes.
const resourceOverhead = int(unsafe.Sizeof(resource{})) + 16

// size is what the resource is charged.
func (r *resource) size() int64 { return int64(r.Cap() + resourceOverhead) }

// core is what the span and log indexes share: their entries E in a ring
// in arrival order within a byte budget, and the counters. E holds no
// pointers (handles instead: table.go), so the ring lives in the arena,
// outside the heap; V is an entry with its handles resolved (and its
// bytes), what queries read and the pinned budget keeps.
type core[E, V any] struct {
	mu       sync.RWMutex
	maxBytes int64
	bytes    int64
	ring     ring[E]
	byTrace  map[pcommon.TraceID]*seqList
	arena    arena           // the bytes of the entries and their resources, and the ring's slots
	res      table[resource] // the resources of the ring's entries
	// hot returns a ring entry's trace ID, resource and charged bytes;
	// view resolves it (valid until the index's lock is released).
	hot  func(e *E) (pcommon.TraceID, handle, int32)
	view func(e *E) V

	evicted      int64
	evictedBytes int64
	unencodable  int64 // records that failed to serialize (never expected for valid pdata)

	// The batch being appended: its scopes on the wire, without their
	// records (nil if it could not be serialized or split), and the
	// number of scopes added.
	wire  []otlpwire.Scope
	added int
	enc   otlpwire.Encoder // the records' bytes

	pin pinned[V] // entries of pinned traces the budget evicted

	// The traces whose records were dropped, for NotePin; nil until
	// SetPins (not guarded by mu: see evictedTraces).
	gone atomic.Pointer[evictedTraces]
}

// newCore returns a core of maxBytes (hot and view: see core); meta
// returns a view's trace ID, resource and charged bytes, data a pointer
// to its bytes.
func newCore[E, V any](maxBytes int64, hot func(e *E) (pcommon.TraceID, handle, int32), view func(e *E) V,
	meta func(v *V) (pcommon.TraceID, *resource, int32), data func(v *V) *[]byte) core[E, V] {
	if hasPointers(reflect.TypeFor[E]()) {
		panic(fmt.Sprintf("index: %v holds pointers: its ring lives outside the heap", reflect.TypeFor[E]()))
	}
	return core[E, V]{maxBytes: maxBytes, byTrace: make(map[pcommon.TraceID]*seqList), arena: newArena(maxBytes),
		hot: hot, view: view, pin: pinned[V]{meta: meta, data: data}}
}

// addTrace puts the entry seq on the list of the trace id.
func (c *core[E, V]) addTrace(id pcommon.TraceID, seq uint64) {
	tl := c.byTrace[id]
	if tl == nil {
		tl = &seqList{}
		c.byTrace[id] = tl
	}
	tl.push(seq)
}

// removeTrace takes the oldest entry, seq, off the list of the trace id.
func (c *core[E, V]) removeTrace(id pcommon.TraceID, seq uint64) {
	if c.byTrace[id].popFront(seq) {
		delete(c.byTrace, id)
	}
}

// appendBatch stores a batch whose resources and scopes, without their
// records, are serialized as buf (err: they could not be): walk calls
// addScope for each of its scopes, in order. Then the oldest
// entries are evicted until the index fits its budget (see evictOverflow).
func (c *core[E, V]) appendBatch(buf []byte, err error, walk func(), unlink func(e *E, seq uint64)) {
	var wire []otlpwire.Scope
	if err == nil {
		if wire, err = otlpwire.Split(buf, nil); err != nil {
			wire = nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wire, c.added = wire, 0
	walk()
	c.wire = nil
	c.evictOverflow(unlink)
}

// addScope stores the count records of the next scope of the batch:
// encode writes record k with c.enc, and insert stores it with the
// location of its bytes (loc, n: see arena.bytes) and the scope's shared
// resource. The records of a scope missing from the batch's wire form
// are counted as unencodable.
func (c *core[E, V]) addScope(count int, encode func(e *otlpwire.Encoder, k int) []byte, insert func(k int, res *resource, loc uint64, n uint32)) {
	n := c.added
	c.added++
	if count == 0 {
		return
	}
	if n >= len(c.wire) {
		c.unencodable += int64(count)
		return
	}
	w := &c.wire[n]
	buf, at := c.arena.alloc(w.Size())
	res := &resource{Blob: otlpwire.MakeBlob(w, buf), at: at}
	res.h = c.res.add(res)
	for k := range count {
		rec := encode(&c.enc, k)
		data, loc := c.arena.allocRec(len(rec))
		copy(data, rec)
		insert(k, res, loc, uint32(len(data)))
	}
}

// charge adds an entry of size bytes that refers to res to the bytes of
// the index.
func (c *core[E, V]) charge(res *resource, size int) {
	if res.refs == 0 {
		c.bytes += res.size()
	}
	res.refs++
	c.bytes += int64(size)
}

// push adds e to the ring, charging the ring's growth: its slots
// (unsafe.Sizeof of an entry each, in the arena) are charged when the
// ring grows, for its whole capacity, and never released: the ring does
// not shrink.
func (c *core[E, V]) push(e E) {
	if c.ring.full() {
		size := int(unsafe.Sizeof(e))
		n := max(2*len(c.ring.buf), ringFirstSlots)
		buf, old := c.arena.mapRing(n * size)
		c.ring.grow(unsafe.Slice((*E)(unsafe.Pointer(unsafe.SliceData(buf))), n))
		c.arena.unmapRing(old)
		c.bytes += int64(n-c.ring.n) * int64(size)
	}
	c.ring.push(e)
}

// evictOverflow removes the oldest entries until the index fits its
// budget. unlink takes an entry off the index's lists (freeing the
// handles only it used). An entry whose trace is pinned (asked now, at
// its eviction) moves into the pinned budget, resolved, instead of being
// dropped; that budget then sheds what expired and what does not fit
// (see fitPinned). Last, the arena frees what no entry uses any more.
func (c *core[E, V]) evictOverflow(unlink func(e *E, seq uint64)) {
	c.expirePinned()
	moved := false
	gone := c.gone.Load()
	locked := false // gone.mu, taken at the first record dropped
	for c.bytes > c.maxBytes {
		e, seq, ok := c.ring.oldest()
		if !ok {
			break
		}
		id, rh, size := c.hot(e)
		until, pinned := c.pinnedUntil(id)
		var v V
		if pinned {
			v = c.view(e) // before unlink frees the handles
		}
		unlink(e, seq)
		res := c.res.get(rh)
		res.refs--
		if res.refs == 0 {
			c.bytes -= res.size()
			c.res.remove(rh)
		}
		c.bytes -= int64(size)
		if pinned {
			c.keep(v, seq, until)
			moved = true
		} else {
			c.evicted++
			c.evictedBytes += int64(size)
			if gone != nil && !id.IsEmpty() {
				if !locked {
					gone.mu.Lock()
					locked = true
				}
				gone.addLocked(fingerprint(id))
			}
		}
		c.ring.pop()
	}
	if locked {
		gone.mu.Unlock() // before fitPinned, whose drops take it
	}
	if moved {
		c.fitPinned()
	}
	// The oldest entry's resource precedes its bytes and everything newer
	// in the arena (pinned entries hold heap copies).
	if e, _, ok := c.ring.oldest(); ok {
		_, rh, _ := c.hot(e)
		c.arena.release(c.res.get(rh).at)
	} else {
		c.arena.release(c.arena.st.head)
	}
}

// ExpirePinned evicts the pinned entries whose pin has ended; appends do
// it too, this is for an index that receives nothing.
func (c *core[E, V]) ExpirePinned() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expirePinned()
}

// Stats returns the index's counters.
func (c *core[E, V]) Stats() Stats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	p := &c.pin
	st := Stats{Records: int64(c.ring.n), Bytes: c.bytes, MaxBytes: c.maxBytes, OffHeapBytes: c.arena.mappedBytes(),
		Evicted: c.evicted, EvictedBytes: c.evictedBytes, Unencodable: c.unencodable,
		PinnedRecords: p.records, PinnedBytes: p.bytes, PinnedMaxBytes: p.maxBytes, Pinned: p.moved,
		EvictedPinnedFull: p.full, EvictedPinnedExpired: p.expired}
	if g := c.gone.Load(); g != nil {
		st.PinsAfterEviction = g.count()
	}
	return st
}

func attrString(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}

// podOf returns the pod named by resource attributes.
func podOf(m pcommon.Map) Pod {
	return Pod{Namespace: attrString(m, "k8s.namespace.name"), Name: attrString(m, "k8s.pod.name")}
}
