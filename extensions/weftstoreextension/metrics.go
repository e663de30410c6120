package weftstoreextension

import (
	"context"
	"sync"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/translate"
	"github.com/weftobs/weft/internal/refusal"
)

// metricsWriter writes the batches of AppendMetrics: the translator's
// samples, admitted by the guard, into one TSDB transaction per batch. It
// is the translator's Appender and Guard for the batch it writes.
type metricsWriter struct {
	db storage.Appendable
	g  *guard
	x  *exemplarHold

	mu  sync.Mutex // serializes the batches; guards tr and the batch state
	tr  *translate.Translator
	app storage.Appender // the current batch's transaction
	ex  heldTx           // the current batch's exemplars
	b   bounds           // the current batch's bounds
}

var (
	_ translate.Appender = (*metricsWriter)(nil)
	_ translate.Guard    = (*metricsWriter)(nil)
)

func newMetricsWriter(db storage.Appendable, g *guard, x *exemplarHold) *metricsWriter {
	return &metricsWriter{db: db, g: g, x: x, tr: translate.New()}
}

// write converts md and appends it in one transaction.
func (w *metricsWriter) write(ctx context.Context, md pmetric.Metrics) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.app = w.db.Appender(ctx)
	w.ex = heldTx{x: w.x}
	w.b = w.g.bounds()
	defer func() {
		w.app = nil
		w.x.release(&w.ex.held) // none unless the batch ended before its commit
	}()
	return w.tr.Append(w, w, md)
}

// purge forgets the cached series not used since the previous purge.
func (w *metricsWriter) purge() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tr.Purge()
}

func (w *metricsWriter) cachedSeries() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tr.CachedSeries()
}

// Bounds returns the guard's bounds of the current batch.
func (w *metricsWriter) Bounds() (mint, maxt int64) { return w.b.mint, w.b.maxt }

// Refuse counts a refused sample of the current batch (see guard.refuse).
func (w *metricsWriter) Refuse(reason string, src refusal.Source, t int64) {
	w.g.refuse(w.b, reason, src, t, 1)
}

// Append appends a sample to the current transaction. A sample of a series
// new to the translator while the head is full is refused
// (translate.ErrSeriesLimit: the translator counts it by source), unless
// the head still holds the series (the translator's cache forgot it, or it
// came from the WAL).
func (w *metricsWriter) Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64, h *histogram.Histogram) (storage.SeriesRef, error) {
	if ref == 0 && w.g.full() {
		if ref, _ = getRef(w.app, l, l.Hash()); ref == 0 {
			return 0, translate.ErrSeriesLimit
		}
	}
	if h != nil {
		return w.app.AppendHistogram(ref, l, t, h, nil)
	}
	return w.app.Append(ref, l, t, v)
}

// AppendExemplar checks e against the exemplar storage and holds it for
// the current transaction's commit (see exemplarHold). A duplicate is not
// an error and is not stored, as with the head's appender.
func (w *metricsWriter) AppendExemplar(ref storage.SeriesRef, e exemplar.Exemplar) error {
	return w.ex.holdChecked(ref, e)
}

// Commit commits the current transaction's samples, then its exemplars.
func (w *metricsWriter) Commit() error { return w.ex.commit(w.app.Commit) }
