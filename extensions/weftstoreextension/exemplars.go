package weftstoreextension

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/exemplars"
	"github.com/weftobs/weft/extensions/weftstoreextension/internal/walsalvage"
)

// Exemplars wait for their transaction's commit, then go to the store's
// exemplar storage (internal/exemplars, in place of the TSDB's), in
// batches of at most exemplarsPerCommit.
//
// An exemplar waits for its samples' commit because its series may be new
// in that transaction: the series' WAL record is written by that commit,
// and the exemplar WAL's replay, after the head's, drops exemplars of
// series the head does not know. A failed or rolled back transaction drops
// its exemplars. Readers see the samples' transaction commit whole and the
// exemplars as they are added (exemplar storage has no isolation, the
// TSDB's had none either).
//
// Appendable's AppendExemplar does not return the storage's refusals (out
// of order, duplicate, labels too long): they are found at commit and the
// exemplar is dropped; its writers ignored those errors, as Prometheus's
// scrape loop does. AppendMetrics checks each exemplar when it is appended
// (the translator counts every refused exemplar by reason) and holds it
// the same way.
//
// The held exemplars of a transaction are kept in fixed blocks, not one
// slice grown by doubling: for a target that exposes an exemplar on most
// of 100k series that would be megabytes of garbage per scrape, and the
// process's RSS is its heap's high-water mark.
const exemplarsPerCommit = 1024

// exemplarWALDir is the exemplar WAL's directory, in the store directory.
const exemplarWALDir = "exemplar_wal"

// openExemplars returns the exemplar storage of head, of capacity
// exemplars, with its WAL in dir replayed when the store is persistent. A
// damaged WAL is returned as a loss, beside the storage.
func openExemplars(capacity int64, persistent bool, dir string, compress compression.Type, head *tsdb.Head, logger *zap.Logger) (*exemplars.Storage, *StorageLoss, error) {
	exs, err := exemplars.New(int(capacity), headLookup(head), slog.New(zapslog.NewHandler(logger.Core())))
	if err != nil {
		return nil, nil, fmt.Errorf("max_exemplars: %w", err)
	}
	if !persistent {
		return exs, nil, nil
	}
	walDir := filepath.Join(dir, exemplarWALDir)
	_, statErr := os.Stat(walDir)
	loss, err := exs.OpenWAL(walDir, compress)
	var sl *StorageLoss
	if loss != nil {
		sl = &StorageLoss{Reason: walsalvage.SegmentCorrupt, File: filepath.Join(exemplarWALDir, loss.File), Bytes: loss.Bytes, Err: loss.Err}
	}
	if err != nil || !errors.Is(statErr, fs.ErrNotExist) {
		return exs, sl, err
	}
	// The first start with this storage: a store that ran an earlier weft
	// kept its exemplars in the head's WAL, which the head no longer
	// replays them from.
	if _, err := os.Stat(filepath.Join(dir, "wal")); err == nil {
		n, err := exs.Import(filepath.Join(dir, "wal"))
		if err != nil {
			logger.Warn("weft_store: exemplars of the metrics WAL not all read", zap.Int("read", n), zap.Error(err))
		} else if n > 0 {
			logger.Info("weft_store: exemplars moved from the metrics WAL to the exemplar WAL", zap.Int("exemplars", n))
		}
	}
	return exs, sl, nil
}

// headLookup finds a series' labels in head by ref: the head's own, which
// the exemplar storage shares. The storage calls it under its lock, so one
// index reader (valid for series created after it) and one builder serve
// every call.
func headLookup(head *tsdb.Head) exemplars.Lookup {
	ir, err := head.Index()
	var b labels.ScratchBuilder
	return func(ref storage.SeriesRef) (labels.Labels, bool) {
		if err != nil || ir.Series(ref, &b, nil) != nil {
			return labels.EmptyLabels(), false
		}
		return b.Labels(), true
	}
}

// heldExemplars are a transaction's held exemplars, in blocks of
// exemplarsPerCommit: holding grows no slice by doubling, and each block is
// one batch of the exemplar storage.
type heldExemplars struct {
	blocks [][]exemplars.Held
}

// maxKeptBlocks is how many blocks the hold keeps between transactions:
// 128 × exemplarsPerCommit exemplars, ~6 MB at most, kept once a
// transaction needed them.
const maxKeptBlocks = 128

// exemplarHold adds held exemplars to the exemplar storage and keeps their
// blocks between transactions. Unlike a sync.Pool, it keeps them across
// garbage collections: with targets scraped every 15 s, a pool is emptied
// between two scrapes.
type exemplarHold struct {
	store *exemplars.Storage
	free  chan []exemplars.Held
}

func newExemplarHold(store *exemplars.Storage) *exemplarHold {
	return &exemplarHold{store: store, free: make(chan []exemplars.Held, maxKeptBlocks)}
}

// hold adds e, for the series ref, to h.
func (x *exemplarHold) hold(h *heldExemplars, ref storage.SeriesRef, e exemplar.Exemplar) {
	n := len(h.blocks)
	if n == 0 || len(h.blocks[n-1]) == exemplarsPerCommit {
		var b []exemplars.Held
		select {
		case b = <-x.free:
		default:
			b = make([]exemplars.Held, 0, exemplarsPerCommit)
		}
		h.blocks = append(h.blocks, b)
		n++
	}
	h.blocks[n-1] = append(h.blocks[n-1], exemplars.Held{Ref: ref, E: e})
}

// put empties block b and keeps it, unless enough are kept.
func (x *exemplarHold) put(b []exemplars.Held) {
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

// commit adds h's exemplars to the exemplar storage, a block at a time,
// and releases h. An exemplar the storage refuses (out of order, a
// duplicate, labels too long, a series gone) is dropped.
func (x *exemplarHold) commit(h *heldExemplars) {
	for _, b := range h.blocks {
		x.store.Add(b)
		x.put(b)
	}
	h.blocks = nil
}

// heldTx is the exemplar side of a transaction: its held exemplars.
type heldTx struct {
	x    *exemplarHold
	held heldExemplars
}

// hold holds e for the series ref.
func (t *heldTx) hold(ref storage.SeriesRef, e exemplar.Exemplar) { t.x.hold(&t.held, ref, e) }

// holdChecked checks e against the exemplar storage, as the head's
// appender does, and holds it when the storage would store it now. A
// duplicate is dropped without an error.
func (t *heldTx) holdChecked(ref storage.SeriesRef, e exemplar.Exemplar) error {
	if err := t.x.store.Validate(ref, e); err != nil {
		if errors.Is(err, storage.ErrDuplicateExemplar) {
			return nil
		}
		return err
	}
	t.hold(ref, e)
	return nil
}

// commit runs the samples' commit, then adds the held exemplars, or drops
// them when the commit failed.
func (t *heldTx) commit(samples func() error) error {
	if err := samples(); err != nil {
		t.x.release(&t.held)
		return err
	}
	t.x.commit(&t.held)
	return nil
}

// rollback drops the held exemplars and runs the samples' rollback.
func (t *heldTx) rollback(samples func() error) error {
	t.x.release(&t.held)
	return samples()
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
