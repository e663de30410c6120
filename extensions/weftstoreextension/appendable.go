package weftstoreextension

import (
	"context"

	"github.com/prometheus/prometheus/storage"

	"github.com/weftobs/weft/internal/promappend"
)

// Appendable returns the TSDB as a storage.Appendable, for writers that
// speak Prometheus series directly (the rules manager's recording rules and
// ALERTS series). It may be taken before Start; its appenders fail every
// call while the store is not open. Samples pass the same checks as
// AppendMetrics' (see guard): ErrTooFarInFuture, storage.ErrOutOfBounds
// behind the appendable window, ErrSeriesLimit.
func (s *Store) Appendable() storage.Appendable { return appendable{s} }

type appendable struct{ s *Store }

// NewSeriesPerCommit makes the appendable a promappend.Splittable as
// configured (new_series_per_commit; 0: never split).
func (a appendable) NewSeriesPerCommit() int { return a.s.cfg.NewSeriesPerCommit }

func (a appendable) Appender(ctx context.Context) storage.Appender {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if a.s.db == nil {
		return promappend.Closed{Err: errNotStarted}
	}
	return &guardedAppender{Appender: a.s.db.Appender(ctx), heldTx: heldTx{x: a.s.exemplars}, g: a.s.guard, b: a.s.guard.bounds()}
}

// AppendableV2 returns the TSDB as a storage.AppendableV2: the appender
// that takes a start timestamp with each sample (stored when
// start_timestamps is on, ignored otherwise) and exemplars in its options.
// Like Appendable it may be taken before Start; its appenders fail every
// call while the store is not open.
func (s *Store) AppendableV2() storage.AppendableV2 { return appendable{s} }

func (a appendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if a.s.db == nil {
		return promappend.ClosedV2{Err: errNotStarted}
	}
	return &guardedAppenderV2{AppenderV2: a.s.db.AppenderV2(ctx), heldTx: heldTx{x: a.s.exemplars}, g: a.s.guard, b: a.s.guard.bounds()}
}
