package weftpinsextension

import (
	"container/heap"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Reason says why a trace was pinned. It travels in the wire format as one
// byte; a new reason needs a new wire version (see README: wire format).
type Reason uint8

// The reasons a trace becomes evidence.
const (
	ReasonAlert     Reason = 1 // an alert cites the trace
	ReasonErrorSpan Reason = 2 // one of its spans is an error (status error, 5xx)
	ReasonErrorLog  Reason = 3 // one of its log records is at error severity or above

	maxReason = ReasonErrorLog
)

// reasons lists the valid reasons, for counters and tests.
var reasons = []Reason{ReasonAlert, ReasonErrorSpan, ReasonErrorLog}

func (r Reason) String() string {
	switch r {
	case ReasonAlert:
		return "alert"
	case ReasonErrorSpan:
		return "error_span"
	case ReasonErrorLog:
		return "error_log"
	}
	return "unknown"
}

func (r Reason) valid() bool { return r >= ReasonAlert && r <= maxReason }

// numShards splits the set so readers of different traces rarely touch the
// same lock word. A power of two.
const numShards = 64

// shard is one part of the set: trace ID → expiry (unix seconds). The
// padding keeps two shards' locks off one cache line.
type shard struct {
	mu sync.RWMutex
	m  map[pcommon.TraceID]int64
	_  [40]byte
}

func shardOf(id pcommon.TraceID) int {
	// The rightmost bytes carry the W3C trace-ID randomness; a 64-bit B3
	// ID left-padded with zeros still has them.
	return int(id[15]^id[11]) & (numShards - 1)
}

// set is the bounded set of pinned trace IDs. Readers (has, until) take
// one shard's read lock; writers serialize on wmu, which guards the
// expiry heap, the count and the recent ring, then take the shard's write
// lock.
type set struct {
	shards [numShards]shard
	now    func() time.Time
	max    int

	wmu    sync.Mutex
	n      int        // pins held
	exp    expiryHeap // soonest expiry first; may hold stale entries
	recent []record   // ring of the latest pins (new or extended), for push/pull state
	next   int        // next slot of recent
	full   bool       // recent has wrapped

	expired atomic.Int64
	evicted atomic.Int64

	// coarse is the clock in unix seconds, kept by the running sweep
	// (0: not running, read the clock). Reading the clock was 60% of
	// Pinned's time on the development VM (pprof, BenchmarkPinned/hit).
	coarse atomic.Int64
}

func newSet(maxPins, recentN int, now func() time.Time) *set {
	s := &set{now: now, max: maxPins, recent: make([]record, recentN)}
	for i := range s.shards {
		s.shards[i].m = make(map[pcommon.TraceID]int64)
	}
	return s
}

// has reports whether id is pinned now. It does not allocate. While the
// sweep runs, "now" is its coarse clock: a pin may still count up to one
// clockTick after its expiry.
func (s *set) has(id pcommon.TraceID) bool {
	sh := &s.shards[shardOf(id)]
	sh.mu.RLock()
	u, ok := sh.m[id]
	sh.mu.RUnlock()
	if !ok {
		return false
	}
	now := s.coarse.Load()
	if now == 0 {
		now = s.now().Unix()
	}
	return u > now
}

// tick advances the coarse clock and drops expired pins; the sweep calls
// it every clockTick.
func (s *set) tick() {
	s.coarse.Store(s.now().Unix())
	s.expire()
}

// until returns the expiry of id's pin (unix seconds), 0 if none.
func (s *set) until(id pcommon.TraceID) int64 {
	sh := &s.shards[shardOf(id)]
	sh.mu.RLock()
	u, ok := sh.m[id]
	sh.mu.RUnlock()
	if !ok || u <= s.now().Unix() {
		return 0
	}
	return u
}

// add pins id until u (unix seconds, already clamped by the caller). A pin
// only ever grows: an earlier u than the one held is ignored. It reports
// whether the pin is new or extended, and how many pins it evicted.
func (s *set) add(id pcommon.TraceID, u int64, reason Reason) (changed bool) {
	now := s.now().Unix()
	if u <= now || id.IsEmpty() {
		return false
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	sh := &s.shards[shardOf(id)]
	sh.mu.Lock()
	old, ok := sh.m[id]
	live := ok && old > now
	if live && old >= u {
		sh.mu.Unlock()
		return false
	}
	sh.m[id] = u
	sh.mu.Unlock()
	if !ok {
		s.n++
	}
	heap.Push(&s.exp, expEntry{until: u, id: id})
	if s.n > s.max {
		s.expireLocked(now)
	}
	for s.n > s.max {
		s.evictOneLocked()
	}
	// The pin itself may have been the soonest to expire.
	sh.mu.RLock()
	held := sh.m[id] == u
	sh.mu.RUnlock()
	if !held {
		return false
	}
	if len(s.recent) > 0 {
		s.recent[s.next] = record{id: id, until: u, reason: reason}
		s.next++
		if s.next == len(s.recent) {
			s.next, s.full = 0, true
		}
	}
	s.compactLocked()
	return true
}

// expire drops the pins that expired at or before now.
func (s *set) expire() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.expireLocked(s.now().Unix())
	s.compactLocked()
}

func (s *set) expireLocked(now int64) {
	for len(s.exp) > 0 && s.exp[0].until <= now {
		e := heap.Pop(&s.exp).(expEntry)
		if s.removeIfLocked(e) {
			s.expired.Add(1)
		}
	}
}

// evictOneLocked removes the live pin with the soonest expiry.
func (s *set) evictOneLocked() {
	for len(s.exp) > 0 {
		e := heap.Pop(&s.exp).(expEntry)
		if s.removeIfLocked(e) {
			s.evicted.Add(1)
			return
		}
	}
}

// removeIfLocked deletes e.id if its pin still ends at e.until (a heap
// entry left behind by an extension is stale).
func (s *set) removeIfLocked(e expEntry) bool {
	sh := &s.shards[shardOf(e.id)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if u, ok := sh.m[e.id]; !ok || u != e.until {
		return false
	}
	delete(sh.m, e.id)
	s.n--
	return true
}

// compactLocked rebuilds the heap when stale entries (from extended pins)
// outnumber the live ones, so the heap stays within 2×max_pins + slack.
func (s *set) compactLocked() {
	if len(s.exp) <= 2*s.n+1024 {
		return
	}
	s.exp = s.exp[:0]
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for id, u := range sh.m {
			s.exp = append(s.exp, expEntry{until: u, id: id})
		}
		sh.mu.RUnlock()
	}
	heap.Init(&s.exp)
}

// len returns the pins held (expired ones not yet swept included).
func (s *set) len() int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.n
}

// latest appends to dst the most recent pins (new or extended), newest
// first, at most one per trace, only those still pinned, with their
// current expiry.
func (s *set) latest(dst []record) []record {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	now := s.now().Unix()
	n := s.next
	if s.full {
		n = len(s.recent)
	}
	seen := make(map[pcommon.TraceID]struct{}, n)
	for i := range n {
		r := s.recent[(s.next-1-i+len(s.recent))%len(s.recent)]
		if _, dup := seen[r.id]; dup {
			continue
		}
		seen[r.id] = struct{}{}
		sh := &s.shards[shardOf(r.id)]
		sh.mu.RLock()
		u, ok := sh.m[r.id]
		sh.mu.RUnlock()
		if ok && u > now {
			r.until = u
			dst = append(dst, r)
		}
	}
	return dst
}

type expEntry struct {
	until int64
	id    pcommon.TraceID
}

// expiryHeap is a min-heap of expiries.
type expiryHeap []expEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until < h[j].until }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
