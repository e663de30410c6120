package weftstoreextension

import (
	"context"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
)

// Appendable returns the TSDB as a storage.Appendable, for writers that
// speak Prometheus series directly (the rules manager's recording rules and
// ALERTS series). It may be taken before Start; its appenders fail every
// call while the store is not open. Samples pass the same checks as
// AppendMetrics' (see guard): ErrTooFarInFuture, storage.ErrOutOfBounds
// behind the appendable window, ErrSeriesLimit.
func (s *Store) Appendable() storage.Appendable { return appendable{s} }

type appendable struct{ s *Store }

func (a appendable) Appender(ctx context.Context) storage.Appender {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if a.s.db == nil {
		return closedAppender{}
	}
	return &guardedAppender{Appender: a.s.db.Appender(ctx), g: a.s.guard, b: a.s.guard.bounds()}
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
		return closedAppenderV2{}
	}
	return &guardedAppenderV2{AppenderV2: a.s.db.AppenderV2(ctx), g: a.s.guard, b: a.s.guard.bounds()}
}

// closedAppenderV2 is the AppenderV2 of a store that is not open.
type closedAppenderV2 struct{}

var _ storage.AppenderV2 = closedAppenderV2{}

func (closedAppenderV2) Append(storage.SeriesRef, labels.Labels, int64, int64, float64, *histogram.Histogram, *histogram.FloatHistogram, storage.AOptions) (storage.SeriesRef, error) {
	return 0, errNotStarted
}

func (closedAppenderV2) Commit() error { return errNotStarted }

func (closedAppenderV2) Rollback() error { return nil }

// closedAppender is the appender of a store that is not open.
type closedAppender struct{}

var _ storage.Appender = closedAppender{}

func (closedAppender) Append(storage.SeriesRef, labels.Labels, int64, float64) (storage.SeriesRef, error) {
	return 0, errNotStarted
}

func (closedAppender) SetOptions(*storage.AppendOptions) {}

func (closedAppender) Commit() error { return errNotStarted }

func (closedAppender) Rollback() error { return nil }

func (closedAppender) AppendExemplar(storage.SeriesRef, labels.Labels, exemplar.Exemplar) (storage.SeriesRef, error) {
	return 0, errNotStarted
}

func (closedAppender) AppendHistogram(storage.SeriesRef, labels.Labels, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errNotStarted
}

func (closedAppender) AppendHistogramSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errNotStarted
}

func (closedAppender) UpdateMetadata(storage.SeriesRef, labels.Labels, metadata.Metadata) (storage.SeriesRef, error) {
	return 0, errNotStarted
}

func (closedAppender) AppendSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64) (storage.SeriesRef, error) {
	return 0, errNotStarted
}
