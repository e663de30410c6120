package evidencesamplingprocessor

import (
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Accounted overheads, checked with BenchmarkBufferBytesPerSpan: an
// entry (struct, map slot, queue slot), one chunk (its slice element and
// body's slice header) and one header.
const (
	entryOverhead  = 160
	chunkOverhead  = 48
	headerOverhead = 48
)

// header is the encoded resource and scope (OTLP protobuf, no items) of
// the waiting items of one resource and scope of one batch, shared by
// the chunks of all the batch's traces there.
type header struct {
	b    []byte
	refs int // chunks in the buffer that use it (guarded by buffer.mu)
}

// chunk is part of a trace's waiting data: the items of one arrival under
// one resource and scope, encoded (OTLP protobuf with an empty resource
// and scope), and the header that holds the resource and scope.
type chunk struct {
	hdr  *header
	body []byte
}

// entry is the data of one trace waiting for its decision, decided at
// its deadline, or earlier when a pin arrives or the buffer is full.
type entry struct {
	id       pcommon.TraceID
	deadline int64 // unix nanoseconds
	chunks   []chunk
	items    int  // spans or log records
	bytes    int  // chunk bodies, their overhead and the entry's
	pinned   bool // released by a pin (OnPin) before its deadline
	done     bool // decided; still in the queue until popped
}

// buffer holds the waiting traces of one signal, bounded by items and
// bytes. One mutex; no goroutine of its own (the processor's worker
// calls due).
//
// The queue is in arrival order of each trace's first item, which is
// deadline order (the wait is the same for all), so the worker pops due
// traces from the front and the full rule evicts the oldest from there
// too. A trace released early by a pin stays in the queue as a done entry
// (its data gone, its overhead still counted) until it reaches the front.
type buffer struct {
	maxItems, maxBytes int
	wait               int64 // decision_wait, nanoseconds

	mu       sync.Mutex
	byID     map[pcommon.TraceID]*entry
	queue    []*entry
	head     int
	items    int
	bytes    int
	released []*entry // pinned early, for the worker
}

func newBuffer(maxItems, maxBytes int, wait int64) *buffer {
	return &buffer{maxItems: maxItems, maxBytes: maxBytes, wait: wait, byID: map[pcommon.TraceID]*entry{}}
}

// add puts items of trace id, encoded as c, into the buffer at time now.
// When the bounds would be passed, the oldest traces are taken out first
// and returned (evicted) for an early decision. A chunk that alone is
// larger than the bounds cannot wait: fits is false and nothing is added.
func (b *buffer) add(id pcommon.TraceID, c chunk, items int, now int64) (evicted []*entry, fits bool) {
	need := len(c.body) + chunkOverhead
	hdrNeed := len(c.hdr.b) + headerOverhead
	if items > b.maxItems || need+hdrNeed+entryOverhead > b.maxBytes {
		return nil, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		total := b.bytes + need + entryOverhead
		if c.hdr.refs == 0 {
			total += hdrNeed
		}
		if b.items+items <= b.maxItems && total <= b.maxBytes {
			break
		}
		e := b.popFront()
		if e == nil {
			break
		}
		if !e.done {
			b.take(e)
			evicted = append(evicted, e)
		}
	}
	e := b.byID[id]
	if e == nil {
		e = &entry{id: id, deadline: now + b.wait, bytes: entryOverhead}
		b.byID[id] = e
		b.queue = append(b.queue, e)
		b.bytes += entryOverhead
	}
	if c.hdr.refs == 0 {
		b.bytes += hdrNeed
	}
	c.hdr.refs++
	e.chunks = append(e.chunks, c)
	e.items += items
	e.bytes += need
	b.items += items
	b.bytes += need
	return evicted, true
}

// popFront removes the queue's first entry and its overhead; nil when
// empty.
func (b *buffer) popFront() *entry {
	if b.head == len(b.queue) {
		return nil
	}
	e := b.queue[b.head]
	b.queue[b.head] = nil
	b.head++
	if b.head == len(b.queue) {
		b.queue, b.head = b.queue[:0], 0
	} else if b.head > 1024 && b.head > len(b.queue)/2 {
		n := copy(b.queue, b.queue[b.head:])
		clear(b.queue[n:])
		b.queue, b.head = b.queue[:n], 0
	}
	b.bytes -= entryOverhead
	return e
}

// take marks e decided and removes its data from the map and the totals
// (its overhead stays until it is popped from the queue); a header no
// waiting chunk uses any more is no longer counted.
func (b *buffer) take(e *entry) {
	e.done = true
	delete(b.byID, e.id)
	b.items -= e.items
	b.bytes -= e.bytes - entryOverhead
	for _, c := range e.chunks {
		if c.hdr.refs--; c.hdr.refs == 0 {
			b.bytes -= len(c.hdr.b) + headerOverhead
		}
	}
}

// pin releases the waiting data of trace id, if any, for the worker; it
// reports whether there was some. Called from weft_pins' OnPin.
func (b *buffer) pin(id pcommon.TraceID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.byID[id]
	if e == nil {
		return false
	}
	b.take(e)
	e.pinned = true
	b.released = append(b.released, e)
	return true
}

// due returns the traces released by pins and those whose deadline is at
// or before now (all of them when all is set, at shutdown), taking them
// out of the buffer.
func (b *buffer) due(now int64, all bool) (out []*entry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out, b.released = b.released, nil
	for b.head < len(b.queue) {
		e := b.queue[b.head]
		if !all && e.deadline > now {
			break
		}
		b.popFront()
		if !e.done {
			b.take(e)
			out = append(out, e)
		}
	}
	return out
}

// size returns the buffered items and bytes.
func (b *buffer) size() (items, bytes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.items, b.bytes
}
