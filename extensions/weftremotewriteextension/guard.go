package weftremotewriteextension

import (
	"fmt"
	"math"
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
// is short next to the skew). It also tells the catch-ups of a commit
// that holds a sample stamped at or before a switch (see lateCommits).
type futureGuard struct {
	storage.Appender
	maxt    int64
	mint    int64 // the oldest sample or histogram appended
	refused *atomic.Int64
	late    *lateCommits
}

func newFutureGuard(app storage.Appender, now time.Time, skew time.Duration, refused *atomic.Int64, late *lateCommits) storage.Appender {
	return &futureGuard{Appender: app, maxt: now.Add(skew).UnixMilli(), mint: math.MaxInt64, refused: refused, late: late}
}

func (g *futureGuard) check(t int64) error {
	if t <= g.maxt {
		g.mint = min(g.mint, t)
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

// AppendSTZeroSample and AppendHistogramSTZeroSample write a zero
// stamped st, older than t: st counts as the transaction's oldest.
func (g *futureGuard) AppendSTZeroSample(ref storage.SeriesRef, l labels.Labels, t, st int64) (storage.SeriesRef, error) {
	g.mint = min(g.mint, st)
	return g.Appender.AppendSTZeroSample(ref, l, t, st)
}

func (g *futureGuard) AppendHistogramSTZeroSample(ref storage.SeriesRef, l labels.Labels, t, st int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	g.mint = min(g.mint, st)
	return g.Appender.AppendHistogramSTZeroSample(ref, l, t, st, h, fh)
}

func (g *futureGuard) Commit() error {
	err := g.Appender.Commit()
	g.late.committed(g.mint) // after the WAL write, failed or not
	g.mint = math.MaxInt64
	return err
}

// futureGuardV2 is futureGuard for storage.AppenderV2 (one Append for
// floats and histograms).
type futureGuardV2 struct {
	storage.AppenderV2
	g futureGuard
}

func newFutureGuardV2(app storage.AppenderV2, now time.Time, skew time.Duration, refused *atomic.Int64, late *lateCommits) storage.AppenderV2 {
	return &futureGuardV2{AppenderV2: app, g: futureGuard{maxt: now.Add(skew).UnixMilli(), mint: math.MaxInt64, refused: refused, late: late}}
}

func (g *futureGuardV2) Append(ref storage.SeriesRef, l labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	if err := g.g.check(t); err != nil {
		return 0, err
	}
	return g.AppenderV2.Append(ref, l, st, t, v, h, fh, opts)
}

func (g *futureGuardV2) Commit() error {
	err := g.AppenderV2.Commit()
	g.g.late.committed(g.g.mint)
	g.g.mint = math.MaxInt64
	return err
}

// lateCommits counts the commits that hold a sample or histogram stamped
// at or before the latest switch time of a catch-up (see catchup.go):
// what a queue's watcher skips and a catch-up in its grace period must
// send. While the count stands still the catch-ups have nothing to read:
// the WAL holds only what the queues send themselves.
type lateCommits struct {
	until atomic.Int64 // the latest switch time, ms
	n     atomic.Int64
}

func newLateCommits() *lateCommits {
	l := &lateCommits{}
	l.until.Store(math.MinInt64)
	return l
}

// committed is called after a commit's WAL write with the oldest
// timestamp it held (math.MaxInt64 for none).
func (l *lateCommits) committed(mint int64) {
	if mint <= l.until.Load() {
		l.n.Add(1)
	}
}

// raise makes until at least t. A commit that reads the old value wrote
// the WAL before the raise, so a read started after it finds the commit.
func (l *lateCommits) raise(t int64) {
	for {
		u := l.until.Load()
		if t <= u || l.until.CompareAndSwap(u, t) {
			return
		}
	}
}
