package weftstoreextension

import (
	"context"
	"fmt"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// Exemplars written through Appendable (pod_scrape's native path, the
// rules manager) reach the TSDB after their transaction's samples, in
// transactions of their own of at most exemplarsPerCommit each.
//
// Given to the head appender with the samples, a scrape's exemplars are
// held in the appender's buffers and encoded into one WAL record at
// Commit: for a target that exposes an exemplar on most of 100k series
// that is ~5 MB of pending exemplars and a record buffer grown to ~10 MB
// by doubling, tens of MB of garbage per such scrape. The head's pools do
// not keep those buffers from one scrape to the next, because a garbage
// collection in between empties them, so each such scrape allocated them
// afresh, and the process's RSS is its heap's high-water mark. Committed in
// small transactions, one after the other, the head reuses one small
// buffer of each kind.
//
// Nothing a reader can see changes: the exemplar storage has no isolation
// (the head adds a commit's exemplars one by one, visible as they come),
// and the samples' transaction still commits whole. An exemplar waits for
// its samples' commit because its series may be new in that transaction:
// the series' WAL record is written by that commit, and a replay drops
// exemplars of series it does not know yet. A failed or rolled back
// transaction drops its exemplars, as before. What changes for the writer:
// AppendExemplar no longer returns the head's refusals (out of order,
// duplicate, labels too long); the head finds them at Commit and the
// exemplar is dropped. The Appendable's writers ignored those errors, as
// Prometheus's scrape loop does. AppendMetrics keeps its exemplars in the
// samples' transaction: the translator counts every refused exemplar by
// reason when it is appended.
const exemplarsPerCommit = 1024

// heldExemplar is an exemplar waiting for its transaction's commit.
type heldExemplar struct {
	ref storage.SeriesRef
	e   exemplar.Exemplar
}

// heldExemplars are a transaction's held exemplars, in blocks of
// exemplarsPerCommit: holding grows no slice by doubling, and each block is
// one exemplar transaction.
type heldExemplars struct {
	blocks [][]heldExemplar
}

// maxKeptBlocks is how many blocks the hold keeps between transactions:
// 128 × exemplarsPerCommit exemplars, ~6 MB at most, kept once a
// transaction needed them.
const maxKeptBlocks = 128

// exemplarHold commits held exemplars to the TSDB and keeps their blocks
// between transactions. Unlike a sync.Pool, it keeps them across garbage
// collections: with targets scraped every 15 s, a pool is emptied between
// two scrapes.
type exemplarHold struct {
	db   storage.Appendable
	free chan []heldExemplar
}

func newExemplarHold(db storage.Appendable) *exemplarHold {
	return &exemplarHold{db: db, free: make(chan []heldExemplar, maxKeptBlocks)}
}

// hold adds e, for the series ref, to h.
func (x *exemplarHold) hold(h *heldExemplars, ref storage.SeriesRef, e exemplar.Exemplar) {
	n := len(h.blocks)
	if n == 0 || len(h.blocks[n-1]) == exemplarsPerCommit {
		var b []heldExemplar
		select {
		case b = <-x.free:
		default:
			b = make([]heldExemplar, 0, exemplarsPerCommit)
		}
		h.blocks = append(h.blocks, b)
		n++
	}
	h.blocks[n-1] = append(h.blocks[n-1], heldExemplar{ref: ref, e: e})
}

// put empties block b and keeps it, unless enough are kept.
func (x *exemplarHold) put(b []heldExemplar) {
	clear(b) // the exemplars' labels
	select {
	case x.free <- b[:0]:
	default:
	}
}

// release drops h's exemplars, keeping its blocks.
func (x *exemplarHold) release(h *heldExemplars) {
	for _, b := range h.blocks {
		x.put(b)
	}
	h.blocks = nil
}

// commit appends h's exemplars to the TSDB, one transaction per block, and
// releases h. An exemplar the head refuses (out of order, a duplicate,
// labels too long, a series gone) is dropped, as the head's own validation
// did when exemplars came with the samples; so is the rest of a block
// whose commit fails.
func (x *exemplarHold) commit(ctx context.Context, h *heldExemplars) {
	var none labels.Labels // the head finds the series by ref
	for _, b := range h.blocks {
		app := x.db.Appender(ctx)
		for _, he := range b {
			_, _ = app.AppendExemplar(he.ref, none, he.e)
		}
		_ = app.Commit()
		x.put(b)
	}
	h.blocks = nil
}

// exemplarRef returns the series ref an exemplar is held for: ref, or when
// the caller has none, that of the series l, which must exist in the head
// or the transaction (app's GetRef).
func exemplarRef(app any, ref storage.SeriesRef, l labels.Labels) (storage.SeriesRef, error) {
	if ref != 0 {
		return ref, nil
	}
	if r, _ := getRef(app, l, l.Hash()); r != 0 {
		return r, nil
	}
	return 0, fmt.Errorf("exemplar for unknown series %s", l)
}
