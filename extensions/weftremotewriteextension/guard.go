package weftremotewriteextension

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// ErrTooFarInFuture is returned (wrapping storage.ErrOutOfBounds, so
// writers count it as out of bounds) for a sample stamped more than
// max_future_skew ahead of the node's clock. Such a sample would hold its
// series at the receiver (every later sample older than it is refused)
// and would move the endpoint's progress mark past samples not yet sent.
var ErrTooFarInFuture = fmt.Errorf("weft_remote_write: sample too far ahead of the node's clock: %w", storage.ErrOutOfBounds)

// futureGuard refuses samples and histograms stamped after maxt: the
// clock when the appender was taken plus max_future_skew (a transaction
// is short next to the skew).
type futureGuard struct {
	storage.Appender
	maxt    int64
	refused *atomic.Int64
}

func newFutureGuard(app storage.Appender, now time.Time, skew time.Duration, refused *atomic.Int64) storage.Appender {
	return &futureGuard{Appender: app, maxt: now.Add(skew).UnixMilli(), refused: refused}
}

func (g *futureGuard) check(t int64) error {
	if t <= g.maxt {
		return nil
	}
	g.refused.Add(1)
	return fmt.Errorf("%w: stamped %s, after %s", ErrTooFarInFuture,
		time.UnixMilli(t).UTC().Format(time.RFC3339Nano), time.UnixMilli(g.maxt).UTC().Format(time.RFC3339Nano))
}

func (g *futureGuard) Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	if err := g.check(t); err != nil {
		return 0, err
	}
	return g.Appender.Append(ref, l, t, v)
}

func (g *futureGuard) AppendHistogram(ref storage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	if err := g.check(t); err != nil {
		return 0, err
	}
	return g.Appender.AppendHistogram(ref, l, t, h, fh)
}

// futureGuardV2 is futureGuard for storage.AppenderV2 (one Append for
// floats and histograms).
type futureGuardV2 struct {
	storage.AppenderV2
	g futureGuard
}

func newFutureGuardV2(app storage.AppenderV2, now time.Time, skew time.Duration, refused *atomic.Int64) storage.AppenderV2 {
	return &futureGuardV2{AppenderV2: app, g: futureGuard{maxt: now.Add(skew).UnixMilli(), refused: refused}}
}

func (g *futureGuardV2) Append(ref storage.SeriesRef, l labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	if err := g.g.check(t); err != nil {
		return 0, err
	}
	return g.AppenderV2.Append(ref, l, st, t, v, h, fh, opts)
}
