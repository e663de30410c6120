// Package exemplars is weft_store's exemplar storage: the last N exemplars
// appended (max_exemplars), in a ring, as the TSDB's circular exemplar
// storage keeps them, with a write-ahead log of its own (see wal.go).
//
// It replaces the TSDB's for memory. That storage finds a series by a map
// keyed by a copy of the series' labels (an Envoy series' labels are
// ~200 bytes: 292 bytes live per series with the map and its entry, in the
// store-memory heap profiles of bench/profiles/store-memory), and each
// exemplar keeps its labels in a string of its own (~80 bytes for a
// trace_id and a span_id). Here a series is found by its head series ref
// and shares the head's labels, and an exemplar whose labels are exactly a
// trace_id (32 lowercase hex digits), with or without a span_id (16), keeps
// the IDs as 24 bytes inside its ring entry.
//
// What a reader or writer sees is the TSDB's behaviour with no out-of-order
// window: an exemplar is refused when its labels are longer than
// exemplar.ExemplarMaxLabelSetLength (storage.ErrExemplarLabelLength), when
// it equals its series' newest (storage.ErrDuplicateExemplar) and when it
// orders before it by time, value, then label hash
// (storage.ErrOutOfOrderExemplar); a full ring overwrites its oldest
// exemplar; Select returns the exemplars of the series matching some
// matcher set, oldest first, series sorted by labels. An exemplar's series
// must be in the head when it is added: it is found there by ref (Lookup).
package exemplars

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/record"
)

// Lookup returns the labels of the head series ref, sharing the head's
// (a tsdb.IndexReader's Series does), or false when the head has no such
// series. The storage calls it with its lock held: calls never overlap.
type Lookup func(ref storage.SeriesRef) (labels.Labels, bool)

// Held is an exemplar of the series Ref, as Add takes it.
type Held struct {
	Ref storage.SeriesRef
	E   exemplar.Exemplar
}

// ErrUnknownSeries is Add's error for an exemplar of a series the head
// does not hold.
var ErrUnknownSeries = errors.New("exemplar of a series the head does not hold")

// MaxCapacity is the largest ring: entries are numbered with int32.
const MaxCapacity = math.MaxInt32

// none marks the end of a series' list of entries.
const none int32 = -1

// form is how an entry keeps its exemplar's labels.
type form uint8

const (
	formLabels    form = iota // in entry.other
	formTraceSpan             // span_id and trace_id: entry.ids, trace ID then span ID
	formTrace                 // trace_id alone: entry.ids[:16]
)

// entry is one slot of the ring: 56 bytes, the exemplar's labels
// included unless they are of formLabels (then in Storage.other). It holds
// no pointer: the ring is outside the Go heap where the platform allows
// (ring_linux.go), and the collector never scans it.
type entry struct {
	ts    int64
	value float64
	ref   storage.SeriesRef // the series; 0: a free slot
	next  int32             // the series' next newer entry, or none
	form  form
	hasTs bool
	ids   [24]byte
}

// series is a series with exemplars in the ring: its oldest and newest
// entries and its labels, the head's.
type series struct {
	oldest, newest int32
	lset           labels.Labels
}

// Storage is the exemplar ring. It is safe for concurrent use.
type Storage struct {
	lookup Lookup
	logger *slog.Logger

	mu     sync.RWMutex
	ring   []entry
	other  map[int32]labels.Labels // the labels of the formLabels entries, by slot
	next   int32                   // the slot the next exemplar takes
	used   int                     // slots holding an exemplar
	series map[storage.SeriesRef]series
	wal    *wal // nil: exemplars are kept in memory only

	// WAL write failures, logged at most once per walErrorInterval.
	walErrors    int64
	walErrLogged time.Time
	recs         []record.RefExemplar // Add's WAL batch
}

// New returns an empty ring of capacity exemplars (1 to MaxCapacity).
// Series are looked up in the head with lookup; logger gets the WAL's
// messages.
func New(capacity int, lookup Lookup, logger *slog.Logger) (*Storage, error) {
	if capacity < 1 || capacity > MaxCapacity {
		return nil, fmt.Errorf("exemplar capacity %d: must be from 1 to %d", capacity, MaxCapacity)
	}
	s := &Storage{
		lookup: lookup,
		logger: logger,
		other:  make(map[int32]labels.Labels),
		series: make(map[storage.SeriesRef]series),
	}
	var mapped []byte
	s.ring, mapped = newRing(capacity)
	if mapped != nil {
		runtime.AddCleanup(s, freeRing, mapped)
	}
	return s, nil
}

// Validate returns the error Add would give e for the series ref now
// (nil when it would be stored), as the TSDB's ValidateExemplar. A series
// the ring does not know yet is not looked up.
func (s *Storage) Validate(ref storage.SeriesRef, e exemplar.Exemplar) error {
	e.Labels = e.Labels.WithoutEmpty()
	f, ids := compact(e.Labels)
	s.mu.RLock()
	defer s.mu.RUnlock()
	sr, ok := s.series[ref]
	return s.check(sr, ok, e, f, &ids)
}

// Add stores the exemplars of hs in order and logs the stored ones to the
// WAL, in one record. It returns how many it stored; the others were
// refused (see Validate) or their series is not in the head.
func (s *Storage) Add(hs []Held) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = s.recs[:0]
	n := 0
	for _, h := range hs {
		e := h.E
		e.Labels = e.Labels.WithoutEmpty()
		if err := s.add(h.Ref, e); err != nil {
			continue
		}
		n++
		if s.wal != nil {
			s.recs = append(s.recs, record.RefExemplar{Ref: refOf(h.Ref), T: e.Ts, V: e.Value, Labels: e.Labels})
		}
	}
	if len(s.recs) > 0 {
		if err := s.wal.log(s.recs, len(s.ring)); err != nil {
			s.walFailed(err)
		}
	}
	clear(s.recs) // the exemplars' labels
	return n
}

const walErrorInterval = time.Minute

func (s *Storage) walFailed(err error) {
	s.walErrors++
	if now := time.Now(); now.Sub(s.walErrLogged) >= walErrorInterval {
		s.walErrLogged = now
		s.logger.Error("weft_store: exemplars kept in memory only: their WAL write failed",
			"error", err, "failed_writes", s.walErrors)
	}
}

// add stores e (its labels without empty ones) for the series ref.
func (s *Storage) add(ref storage.SeriesRef, e exemplar.Exemplar) error {
	f, ids := compact(e.Labels)
	sr, ok := s.series[ref]
	if err := s.check(sr, ok, e, f, &ids); err != nil {
		return err
	}
	if !ok {
		lset, found := s.lookup(ref)
		if !found {
			return ErrUnknownSeries
		}
		sr = series{oldest: none, newest: none, lset: lset}
	}
	slot := s.next
	if old := &s.ring[slot]; old.ref != 0 {
		evicted := old.ref
		s.evict(slot)
		if evicted == ref {
			if now, ok := s.series[ref]; ok {
				sr = now
			} else {
				sr.oldest, sr.newest = none, none // its only exemplar was evicted
			}
		}
	}
	s.ring[slot] = entry{ts: e.Ts, value: e.Value, ref: ref, next: none, form: f, hasTs: e.HasTs, ids: ids}
	if f == formLabels {
		s.other[slot] = e.Labels
	}
	if sr.newest == none {
		sr.oldest = slot
	} else {
		s.ring[sr.newest].next = slot
	}
	sr.newest = slot
	s.series[ref] = sr
	s.used++
	if s.next++; int(s.next) == len(s.ring) {
		s.next = 0
	}
	return nil
}

// evict frees slot, the ring's oldest entry: exemplars of a series are
// stored in order, so it is also its series' oldest.
func (s *Storage) evict(slot int32) {
	old := &s.ring[slot]
	if old.next == none {
		delete(s.series, old.ref)
	} else {
		sr := s.series[old.ref]
		sr.oldest = old.next
		s.series[old.ref] = sr
	}
	if old.form == formLabels {
		delete(s.other, slot)
	}
	*old = entry{}
	s.used--
}

// check is Validate's test of e (its labels of form f with ids) against
// the series sr (ok: the ring has exemplars of it).
func (s *Storage) check(sr series, ok bool, e exemplar.Exemplar, f form, ids *[24]byte) error {
	// The length counts the names' and values' characters only, as
	// OpenMetrics defines it.
	n := 0
	e.Labels.Range(func(l labels.Label) {
		n += utf8.RuneCountInString(l.Name) + utf8.RuneCountInString(l.Value)
	})
	if n > exemplar.ExemplarMaxLabelSetLength {
		return storage.ErrExemplarLabelLength
	}
	if !ok {
		return nil
	}
	newest := &s.ring[sr.newest]
	if s.equals(sr.newest, e, f, ids) {
		return storage.ErrDuplicateExemplar
	}
	// Exemplars at one time are ordered by value, then label hash: native
	// histograms have several per sample.
	if e.Ts < newest.ts ||
		(e.Ts == newest.ts && e.Value < newest.value) ||
		(e.Ts == newest.ts && e.Value == newest.value && e.Labels.Hash() < s.labels(sr.newest).Hash()) {
		return storage.ErrOutOfOrderExemplar
	}
	return nil
}

// equals is exemplar.Equals of the exemplar in slot and e (whose labels
// are of form f with ids): without a timestamp on either side, times are
// not compared.
func (s *Storage) equals(slot int32, e exemplar.Exemplar, f form, ids *[24]byte) bool {
	en := &s.ring[slot]
	if (en.hasTs || e.HasTs) && en.ts != e.Ts {
		return false
	}
	if en.value != e.Value || en.form != f {
		return false
	}
	if f == formLabels {
		return labels.Equal(s.other[slot], e.Labels)
	}
	return en.ids == *ids
}

// labels returns the exemplar labels of slot.
func (s *Storage) labels(slot int32) labels.Labels {
	if en := &s.ring[slot]; en.form != formLabels {
		return en.idLabels()
	}
	return s.other[slot]
}

// idLabels returns the labels of an entry that keeps IDs.
func (en *entry) idLabels() labels.Labels {
	if en.form == formTraceSpan {
		return labels.FromStrings("span_id", hex.EncodeToString(en.ids[16:]), "trace_id", hex.EncodeToString(en.ids[:16]))
	}
	return labels.FromStrings("trace_id", hex.EncodeToString(en.ids[:16]))
}

func (s *Storage) exemplar(slot int32) exemplar.Exemplar {
	en := &s.ring[slot]
	return exemplar.Exemplar{Labels: s.labels(slot), Value: en.value, Ts: en.ts, HasTs: en.hasTs}
}

// compact returns the form of the exemplar labels l and, for the forms
// that keep IDs, the IDs. Only lowercase hex is kept as bytes: labels()
// gives back the same string.
func compact(l labels.Labels) (form, [24]byte) {
	var ids [24]byte
	trace, span, other := false, false, false
	l.Range(func(lb labels.Label) {
		switch {
		case other:
		case lb.Name == "trace_id" && len(lb.Value) == 32 && lowerHex(lb.Value):
			_, _ = hex.Decode(ids[:16], []byte(lb.Value))
			trace = true
		case lb.Name == "span_id" && len(lb.Value) == 16 && lowerHex(lb.Value):
			_, _ = hex.Decode(ids[16:], []byte(lb.Value))
			span = true
		default:
			other = true
		}
	})
	switch {
	case other || !trace:
		return formLabels, [24]byte{}
	case span:
		return formTraceSpan, ids
	}
	return formTrace, ids
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Select returns the exemplars from start to end, both included, of the
// series that match all matchers of some set, as the TSDB's exemplar
// querier does.
func (s *Storage) Select(start, end int64, matchers ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	ret := make([]exemplar.QueryResult, 0)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, sr := range s.series {
		if s.ring[sr.oldest].ts > end || s.ring[sr.newest].ts < start || !matchesSome(sr.lset, matchers) {
			continue
		}
		r := exemplar.QueryResult{SeriesLabels: sr.lset}
		for i := sr.oldest; i != none; i = s.ring[i].next {
			en := &s.ring[i]
			if en.ts > end {
				break
			}
			if en.ts >= start {
				r.Exemplars = append(r.Exemplars, s.exemplar(i))
			}
		}
		if len(r.Exemplars) > 0 {
			ret = append(ret, r)
		}
	}
	slices.SortFunc(ret, func(a, b exemplar.QueryResult) int { return labels.Compare(a.SeriesLabels, b.SeriesLabels) })
	return ret, nil
}

func matchesSome(l labels.Labels, sets [][]*labels.Matcher) bool {
	for _, ms := range sets {
		if matchesAll(l, ms) {
			return true
		}
	}
	return false
}

func matchesAll(l labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(l.Get(m.Name)) {
			return false
		}
	}
	return true
}

// OfTrace returns the exemplars whose trace_id (or traceID) label is the
// trace ID id, in any case of hex digits, by series, in ring order. It
// compares the IDs kept as bytes without building labels.
func (s *Storage) OfTrace(id [16]byte) []exemplar.QueryResult {
	want := hex.EncodeToString(id[:])
	s.mu.RLock()
	defer s.mu.RUnlock()
	var ret []exemplar.QueryResult
	at := make(map[storage.SeriesRef]int) // index in ret
	for i := range s.ring {
		en := &s.ring[i]
		switch {
		case en.ref == 0:
			continue
		case en.form == formLabels:
			other := s.other[int32(i)] //nolint:gosec // slots are int32 (MaxCapacity)
			tid := other.Get("trace_id")
			if tid == "" {
				tid = other.Get("traceID")
			}
			if !strings.EqualFold(tid, want) {
				continue
			}
		case [16]byte(en.ids[:16]) != id:
			continue
		}
		j, ok := at[en.ref]
		if !ok {
			j = len(ret)
			at[en.ref] = j
			ret = append(ret, exemplar.QueryResult{SeriesLabels: s.series[en.ref].lset})
		}
		ret[j].Exemplars = append(ret[j].Exemplars, s.exemplar(int32(i))) //nolint:gosec // as above
	}
	return ret
}

// Len returns how many exemplars, and of how many series, the ring holds.
func (s *Storage) Len() (exemplars, seriesWith int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.used, len(s.series)
}

// WALFailures returns how many WAL writes failed (their exemplars were
// kept in memory only).
func (s *Storage) WALFailures() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.walErrors
}
