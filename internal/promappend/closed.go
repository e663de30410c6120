package promappend

import (
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
)

// Closed is the appender a Provider hands out while it is not open
// (before Start, after Shutdown): every append and Commit fail with Err,
// Rollback succeeds, so a writer's usual error path runs.
type Closed struct{ Err error }

var _ storage.Appender = Closed{}

func (c Closed) Append(storage.SeriesRef, labels.Labels, int64, float64) (storage.SeriesRef, error) {
	return 0, c.Err
}

func (Closed) SetOptions(*storage.AppendOptions) {}

func (c Closed) Commit() error { return c.Err }

func (Closed) Rollback() error { return nil }

func (c Closed) AppendExemplar(storage.SeriesRef, labels.Labels, exemplar.Exemplar) (storage.SeriesRef, error) {
	return 0, c.Err
}

func (c Closed) AppendHistogram(storage.SeriesRef, labels.Labels, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, c.Err
}

func (c Closed) AppendHistogramSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, c.Err
}

func (c Closed) UpdateMetadata(storage.SeriesRef, labels.Labels, metadata.Metadata) (storage.SeriesRef, error) {
	return 0, c.Err
}

func (c Closed) AppendSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64) (storage.SeriesRef, error) {
	return 0, c.Err
}

// ClosedV2 is Closed for storage.AppenderV2.
type ClosedV2 struct{ Err error }

var _ storage.AppenderV2 = ClosedV2{}

func (c ClosedV2) Append(storage.SeriesRef, labels.Labels, int64, int64, float64, *histogram.Histogram, *histogram.FloatHistogram, storage.AOptions) (storage.SeriesRef, error) {
	return 0, c.Err
}

func (c ClosedV2) Commit() error { return c.Err }

func (ClosedV2) Rollback() error { return nil }
