package weftremotewriteextension

import (
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
)

// closedAppender is the appender of an extension whose WAL is not open.
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

// closedAppenderV2 is the AppenderV2 of an extension whose WAL is not open.
type closedAppenderV2 struct{}

var _ storage.AppenderV2 = closedAppenderV2{}

func (closedAppenderV2) Append(storage.SeriesRef, labels.Labels, int64, int64, float64, *histogram.Histogram, *histogram.FloatHistogram, storage.AOptions) (storage.SeriesRef, error) {
	return 0, errNotStarted
}

func (closedAppenderV2) Commit() error { return errNotStarted }

func (closedAppenderV2) Rollback() error { return nil }
