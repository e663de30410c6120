package weftstoreextension

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.uber.org/zap"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/translate"
	"github.com/weftobs/weft/internal/refusal"
)

var (
	// ErrTooFarInFuture is returned by the appenders of Appendable and
	// AppendableV2 for a sample stamped more than max_future_skew ahead of
	// the node's clock.
	ErrTooFarInFuture = errors.New("weft_store: sample too far ahead of the node's clock")
	// ErrSeriesLimit is returned by the appenders of Appendable and
	// AppendableV2 for a sample of a new series while the head holds
	// max_series series.
	ErrSeriesLimit = errors.New("weft_store: max_series reached")
)

// appendableSource is the source of samples written through Appendable and
// AppendableV2 (the rules manager): those writers pass no identity.
const appendableSource = "appendable"

// headInfo is what the guard reads of the TSDB head (*tsdb.Head).
type headInfo interface {
	MaxTime() int64
	NumSeries() uint64
}

// guard decides, before the TSDB appender sees a sample, whether its time
// is acceptable and whether its series may be created. Both write paths
// (AppendMetrics, through metricsWriter, and the Appendable appenders) go
// through it.
//
// The appendable window follows the wall clock: a sample is accepted from
// min(now, newest sample) - appendable_window to now + max_future_skew.
// The TSDB's own lower bound (newest sample - half the head chunk range)
// is put out of reach (headChunkRange), so no sample, not even one within
// the skew or one replayed from an old WAL, can make later correctly-timed
// samples out of bounds. The retention still sets a floor (Head.Truncate).
type guard struct {
	head      headInfo
	window    int64 // appendable_window, ms
	skew      int64 // max_future_skew, ms
	maxSeries uint64
	now       func() time.Time
	refused   *refusals
}

// bounds are the times a sample may have, fixed when an appender is taken
// (as the TSDB fixes its own).
type bounds struct {
	now        time.Time
	mint, maxt int64
}

func (g *guard) bounds() bounds {
	now := g.now()
	b := bounds{now: now, mint: math.MinInt64, maxt: now.UnixMilli() + g.skew}
	if hm := g.head.MaxTime(); hm != math.MinInt64 {
		b.mint = min(now.UnixMilli(), hm) - g.window
	}
	return b
}

// full reports whether the head holds max_series series.
func (g *guard) full() bool { return g.maxSeries > 0 && g.head.NumSeries() >= g.maxSeries }

// headChunkRange is the TSDB head's chunk range. The head refuses samples
// older than its newest sample minus half of it; at 200 years that bound
// never bites and the guard's wall-clock window decides. No blocks are cut
// (compactions are off), so the range has no other use than where head
// chunks end: they are cut by sample count (about 120 samples) instead.
const headChunkRange = 200 * 365 * 24 * time.Hour

// refusals counts the store's own refusals by reason and source; its
// logger writes their rate-limited log lines.
type refusals struct {
	logger *zap.Logger
	*refusal.Counts
}

func newRefusals(logger *zap.Logger) *refusals {
	return &refusals{logger: logger, Counts: refusal.New()}
}

// refusalLogInterval is the least time between two log lines about the
// refusals of one source for one reason.
const refusalLogInterval = refusal.LogInterval

// refuse counts n samples refused for reason and logs it, rate-limited.
// t is the (first) refused sample's time.
func (g *guard) refuse(b bounds, reason string, src refusal.Source, t, n int64) {
	logNow, refused := g.refused.Note(b.now, reason, src.ID, n)
	if !logNow {
		return
	}
	switch reason {
	case translate.ReasonTooFarInFuture:
		g.refused.logger.Warn("Samples too far ahead of the node's clock refused",
			zap.String("source", src.ID), zap.String("job", src.Job), zap.String("instance", src.Instance),
			zap.Time("sample_time", time.UnixMilli(t)), zap.Time("node_time", b.now),
			zap.Duration("skew", time.UnixMilli(t).Sub(b.now)), zap.Duration("max_future_skew", time.Duration(g.skew)*time.Millisecond),
			zap.Int64("refused", refused))
	case translate.ReasonSeriesLimit:
		g.refused.logger.Warn("Samples of new series refused: max_series reached",
			zap.String("source", src.ID), zap.String("job", src.Job), zap.String("instance", src.Instance),
			zap.Uint64("max_series", g.maxSeries), zap.Int64("refused", refused))
	}
}

// guardedAppender is an Appendable appender checked by the guard. Its
// exemplars wait in heldTx until the samples commit (see exemplarHold).
type guardedAppender struct {
	storage.Appender
	heldTx
	g *guard
	b bounds
}

var (
	_ storage.Appender = (*guardedAppender)(nil)
	_ storage.GetRef   = (*guardedAppender)(nil)
)

func (a *guardedAppender) Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	if err := a.g.admitRaw(a.b, a.Appender, ref, l, t); err != nil {
		return 0, err
	}
	return a.Appender.Append(ref, l, t, v)
}

func (a *guardedAppender) AppendHistogram(ref storage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	if err := a.g.admitRaw(a.b, a.Appender, ref, l, t); err != nil {
		return 0, err
	}
	return a.Appender.AppendHistogram(ref, l, t, h, fh)
}

// AppendSTZeroSample appends a zero at st, which the TSDB requires to be
// before t: checking t is enough for the future bound.
func (a *guardedAppender) AppendSTZeroSample(ref storage.SeriesRef, l labels.Labels, t, st int64) (storage.SeriesRef, error) {
	if err := a.g.admitRaw(a.b, a.Appender, ref, l, t); err != nil {
		return 0, err
	}
	return a.Appender.AppendSTZeroSample(ref, l, t, st)
}

func (a *guardedAppender) AppendHistogramSTZeroSample(ref storage.SeriesRef, l labels.Labels, t, st int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	if err := a.g.admitRaw(a.b, a.Appender, ref, l, t); err != nil {
		return 0, err
	}
	return a.Appender.AppendHistogramSTZeroSample(ref, l, t, st, h, fh)
}

func (a *guardedAppender) GetRef(l labels.Labels, hash uint64) (storage.SeriesRef, labels.Labels) {
	return getRef(a.Appender, l, hash)
}

// AppendExemplar holds e until Commit. A series neither given by ref nor
// found by its labels is an error, as the head's own.
func (a *guardedAppender) AppendExemplar(ref storage.SeriesRef, l labels.Labels, e exemplar.Exemplar) (storage.SeriesRef, error) {
	ref, err := exemplarRef(a.Appender, ref, l)
	if err != nil {
		return 0, err
	}
	a.hold(ref, e)
	return ref, nil
}

// Commit commits the samples, then the held exemplars.
func (a *guardedAppender) Commit() error { return a.commit(a.Appender.Commit) }

// Rollback drops the samples and the held exemplars.
func (a *guardedAppender) Rollback() error { return a.rollback(a.Appender.Rollback) }

// guardedAppenderV2 is an AppendableV2 appender checked by the guard. The
// exemplars of its samples wait in heldTx until the samples commit.
type guardedAppenderV2 struct {
	storage.AppenderV2
	heldTx
	g *guard
	b bounds
}

var (
	_ storage.AppenderV2 = (*guardedAppenderV2)(nil)
	_ storage.GetRef     = (*guardedAppenderV2)(nil)
)

func (a *guardedAppenderV2) Append(ref storage.SeriesRef, l labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	if err := a.g.admitRaw(a.b, a.AppenderV2, ref, l, t); err != nil {
		return 0, err
	}
	es := opts.Exemplars
	opts.Exemplars = nil
	ref, err := a.AppenderV2.Append(ref, l, st, t, v, h, fh, opts)
	if err != nil || len(es) == 0 {
		return ref, err
	}
	// The refusals are returned as the head's appender does: in a
	// storage.AppendPartialError, duplicates left out.
	var errs []error
	for _, e := range es {
		if err := a.holdChecked(ref, e); err != nil {
			errs = append(errs, err)
		}
	}
	return ref, (&storage.AppendPartialError{ExemplarErrors: errs}).ToError()
}

// Commit commits the samples, then the held exemplars.
func (a *guardedAppenderV2) Commit() error { return a.commit(a.AppenderV2.Commit) }

// Rollback drops the samples and the held exemplars.
func (a *guardedAppenderV2) Rollback() error { return a.rollback(a.AppenderV2.Rollback) }

func (a *guardedAppenderV2) GetRef(l labels.Labels, hash uint64) (storage.SeriesRef, labels.Labels) {
	return getRef(a.AppenderV2, l, hash)
}

func getRef(app any, l labels.Labels, hash uint64) (storage.SeriesRef, labels.Labels) {
	if g, ok := app.(storage.GetRef); ok {
		return g.GetRef(l, hash)
	}
	return 0, labels.EmptyLabels()
}

// admitRaw checks a sample written through Appendable or AppendableV2.
// Refusals for time and the series limit are counted under
// appendableSource; a sample behind the window gets the TSDB's own
// storage.ErrOutOfBounds.
func (g *guard) admitRaw(b bounds, app any, ref storage.SeriesRef, l labels.Labels, t int64) error {
	switch {
	case t > b.maxt:
		g.refuse(b, translate.ReasonTooFarInFuture, refusal.Source{ID: appendableSource}, t, 1)
		return fmt.Errorf("%w: sample at %s is %s ahead (max_future_skew %s)", ErrTooFarInFuture,
			time.UnixMilli(t).UTC().Format(time.RFC3339Nano), time.UnixMilli(t).Sub(b.now).Round(time.Millisecond),
			time.Duration(g.skew)*time.Millisecond)
	case t < b.mint:
		return storage.ErrOutOfBounds
	case ref == 0 && g.full():
		if r, _ := getRef(app, l, l.Hash()); r != 0 {
			return nil // an existing series
		}
		g.refuse(b, translate.ReasonSeriesLimit, refusal.Source{ID: appendableSource}, t, 1)
		return fmt.Errorf("%w (%d series)", ErrSeriesLimit, g.maxSeries)
	}
	return nil
}
