package translate

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/goleak"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
	"github.com/weftobs/weft/internal/refusal"
)

// The translator's behaviour through the TSDB (names, labels, types,
// exemplars, rejections by reason and source) is tested with the store
// that assembles it: weftstore's store_test.go, naming_test.go and
// guard_test.go.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNativeBuckets(t *testing.T) {
	tests := []struct {
		name       string
		offset     int32
		counts     []uint64
		down       int32
		wantSpans  []histogram.Span
		wantDeltas []int64
	}{
		{"empty", 0, nil, 0, nil, nil},
		{"contiguous", 0, []uint64{2, 3, 1}, 0, []histogram.Span{{Offset: 1, Length: 3}}, []int64{2, 1, -2}},
		{"gap", -3, []uint64{1, 0, 0, 4}, 0, []histogram.Span{{Offset: -2, Length: 1}, {Offset: 2, Length: 1}}, []int64{1, 3}},
		{"merge by 4", 0, []uint64{1, 1, 1, 1, 1}, 2, []histogram.Span{{Offset: 1, Length: 2}}, []int64{4, -3}},
		{"merge negative indexes", -3, []uint64{1, 2, 3}, 1, []histogram.Span{{Offset: -1, Length: 2}}, []int64{1, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := pmetric.NewExponentialHistogramDataPointBuckets()
			b.SetOffset(tt.offset)
			b.BucketCounts().FromRaw(tt.counts)
			spans, deltas := nativeBuckets(b, tt.down)
			assert.Equal(t, tt.wantSpans, spans)
			assert.Equal(t, tt.wantDeltas, deltas)
		})
	}
}

// nopTx is an Appender and a Guard that accept everything and keep
// nothing: the translator's own cost.
type nopTx struct{ refs storage.SeriesRef }

func (x *nopTx) Append(ref storage.SeriesRef, _ labels.Labels, _ int64, _ float64, _ *histogram.Histogram) (storage.SeriesRef, error) {
	if ref == 0 {
		x.refs++
		ref = x.refs
	}
	return ref, nil
}

func (*nopTx) AppendExemplar(storage.SeriesRef, exemplar.Exemplar) error { return nil }
func (*nopTx) Commit() error                                             { return nil }
func (*nopTx) Bounds() (mint, maxt int64)                                { return math.MinInt64, math.MaxInt64 }
func (*nopTx) Refuse(string, refusal.Source, int64)                      {}

// BenchmarkTranslate measures the translator alone (no TSDB): one op is
// the batch of weftstore's BenchmarkAppendSamples/known_series, 100 gauge
// points of known series in one call.
func BenchmarkTranslate(b *testing.B) {
	md := simtest.Gauges(0, time.Now())
	a, tx := New(), &nopTx{}
	if err := a.Append(tx, tx, md); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		// The same points again: the nop appender does not mind, and the
		// translator checks the order of samples within a call only.
		if err := a.Append(tx, tx, md); err != nil {
			b.Fatal(err)
		}
	}
	simtest.PerItem(b, "sample")
	if st := a.Stats(); st.NewSeries != simtest.Batch || st.Samples != int64(b.N+1)*simtest.Batch {
		b.Fatalf("%d series created, %d samples appended: want %d, %d", st.NewSeries, st.Samples, simtest.Batch, (b.N+1)*simtest.Batch)
	}
}
