package index

import (
	"encoding/binary"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// A pin that arrives after the index already evicted records of its trace
// comes too late for them: nothing can bring them back, but it must not
// go unnoticed. The index remembers the trace IDs of the records it
// dropped (from the normal budget, and from the pinned budget when their
// pin ended) in an evictedTraces, and NotePin counts a pin whose trace is
// there.

// Sizing of the memory of evicted traces, per index.
const (
	// EvictedTraceSlots is the number of trace fingerprints an index
	// remembers: EvictedTraceBytes of memory, outside the byte budgets.
	EvictedTraceSlots = evictedBuckets * evictedWays
	// EvictedTraceBytes is the memory of EvictedTraceSlots fingerprints.
	EvictedTraceBytes = EvictedTraceSlots * 8

	evictedWays    = 4
	evictedBuckets = 1 << 14
)

// evictedTraces is a bounded, lossy set of the traces an index evicted
// records of: a table of evictedBuckets buckets of evictedWays 64-bit
// fingerprints. A trace's bucket is given by the low bits of its
// fingerprint; within a bucket the newest fingerprint is first and the
// oldest is forgotten when a new one comes. Hence:
//
//   - memory is fixed (EvictedTraceBytes) whatever the traffic;
//   - a trace is forgotten once evictedWays later evicted traces fell into
//     its bucket: after n distinct traces evicted since, it is remembered
//     with probability P(Poisson(n/evictedBuckets) < evictedWays), 0.98
//     at n = 16k, 0.86 at n = 32k, 0.43 at n = 64k; a late pin of a
//     forgotten trace is not counted;
//   - a trace never evicted is counted only if its fingerprint equals one
//     of the evictedWays in its bucket, whose bucket bits it shares: 50
//     random bits must match, a false positive rate below 4·2⁻⁵⁰ (4e-15)
//     per pin for random trace IDs.
//
// It has its own mutex, so that a pin (weft_pins' OnPin, on the gossip
// receiver or a caller of Pin) never waits for an append holding the
// index's: at most for the evictions of one append, which take this one
// once for all their records.
type evictedTraces struct {
	mu      sync.Mutex
	buckets [evictedBuckets][evictedWays]uint64 // 0: empty slot
	last    uint64                              // the fingerprint added last (consecutive records of a trace)
	late    int64                               // pins counted by take
}

// fingerprint is a 64-bit hash of a trace ID, never 0 (the empty slot).
// Both halves are mixed in: W3C trace IDs are random in their last 7 bytes
// only, some generators put a timestamp in the first ones.
func fingerprint(id pcommon.TraceID) uint64 {
	h := binary.LittleEndian.Uint64(id[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(id[8:])
	// splitmix64's finalizer.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	if h == 0 {
		h = 1
	}
	return h
}

// add remembers that records of the trace with fingerprint fp were
// evicted. A fingerprint already in its bucket stays where it is.
func (g *evictedTraces) add(fp uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.addLocked(fp)
}

// addLocked is add with g.mu held: the eviction loop takes it once for
// all the records it evicts.
func (g *evictedTraces) addLocked(fp uint64) {
	if fp == g.last {
		return
	}
	g.last = fp
	b := &g.buckets[fp&(evictedBuckets-1)]
	end := evictedWays - 1 // the slot to free: the first empty one, else the oldest
	for i, v := range b {
		if v == fp {
			return
		}
		if v == 0 && end == evictedWays-1 {
			end = i
		}
	}
	copy(b[1:end+1], b[:end])
	b[0] = fp
}

// take reports whether the trace with fingerprint fp was evicted (and not
// taken since), counts it as a late pin and forgets it, so that the same
// eviction is counted once however often its pin is extended.
func (g *evictedTraces) take(fp uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := &g.buckets[fp&(evictedBuckets-1)]
	for i, v := range b {
		if v == fp {
			b[i] = 0
			if g.last == fp {
				g.last = 0
			}
			g.late++
			return true
		}
	}
	return false
}

func (g *evictedTraces) count() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.late
}

// rememberEvicted notes that records of trace id were dropped, if the
// index remembers evicted traces (see SetPins).
func (c *core[E, V]) rememberEvicted(id pcommon.TraceID) {
	if g := c.gone.Load(); g != nil && !id.IsEmpty() {
		g.add(fingerprint(id))
	}
}

// NotePin is told of a pin of trace id that is new or extended (weft_pins'
// OnPin): if the index dropped records of that trace before (remembered as
// evictedTraces describes), it counts a pin after eviction and reports
// true. It takes no lock of the index's.
func (c *core[E, V]) NotePin(id pcommon.TraceID) bool {
	g := c.gone.Load()
	if g == nil || id.IsEmpty() {
		return false
	}
	return g.take(fingerprint(id))
}
