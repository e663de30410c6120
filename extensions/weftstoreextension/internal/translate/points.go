package translate

import (
	"math"
	"strconv"
	"time"

	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// appendMetric appends every point of m and returns the number of samples
// appended.
func (a *Translator) appendMetric(m pmetric.Metric) int64 {
	a.metric, a.promName = m, ""
	a.boundTexts = pcommon.Map{}
	if a.asExposed {
		if v, ok := m.Metadata().Get(ExposedBoundsKey); ok && v.Type() == pcommon.ValueTypeMap {
			a.boundTexts = v.Map()
		}
	}
	var n int64
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		a.mtype = otlptranslator.MetricTypeGauge
		pts := m.Gauge().DataPoints()
		for i := 0; i < pts.Len(); i++ {
			n += a.numberPoint(pts.At(i))
		}
	case pmetric.MetricTypeSum:
		s := m.Sum()
		a.mtype = otlptranslator.MetricTypeNonMonotonicCounter
		if s.IsMonotonic() {
			if s.AggregationTemporality() == pmetric.AggregationTemporalityDelta {
				a.rejectedSamples[ReasonDelta].Add(int64(s.DataPoints().Len()))
				return 0
			}
			a.mtype = otlptranslator.MetricTypeMonotonicCounter
		}
		pts := s.DataPoints()
		for i := 0; i < pts.Len(); i++ {
			n += a.numberPoint(pts.At(i))
		}
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		if h.AggregationTemporality() == pmetric.AggregationTemporalityDelta {
			a.rejectedSamples[ReasonDelta].Add(int64(h.DataPoints().Len()))
			return 0
		}
		a.mtype = otlptranslator.MetricTypeHistogram
		pts := h.DataPoints()
		for i := 0; i < pts.Len(); i++ {
			n += a.histogramPoint(pts.At(i))
		}
	case pmetric.MetricTypeSummary:
		a.mtype = otlptranslator.MetricTypeSummary
		pts := m.Summary().DataPoints()
		for i := 0; i < pts.Len(); i++ {
			n += a.summaryPoint(pts.At(i))
		}
	case pmetric.MetricTypeExponentialHistogram:
		h := m.ExponentialHistogram()
		if h.AggregationTemporality() == pmetric.AggregationTemporalityDelta {
			a.rejectedSamples[ReasonDelta].Add(int64(h.DataPoints().Len()))
			return 0
		}
		a.mtype = otlptranslator.MetricTypeExponentialHistogram
		pts := h.DataPoints()
		for i := 0; i < pts.Len(); i++ {
			n += a.expHistogramPoint(pts.At(i))
		}
	default:
		// An empty metric has no points to lose.
	}
	return n
}

// startPoint computes the identity prefix of a point: metric name, unit,
// type, resource labels and point attributes.
func (a *Translator) startPoint(attrs pcommon.Map) {
	a.attrs = attrs
	b := a.base[:0]
	b = append(b, byte(a.mtype))
	if a.asExposed {
		b = append(b, 'x')
	}
	b = append(b, a.metric.Name()...)
	b = append(b, 0)
	b = append(b, a.metric.Unit()...)
	b = append(b, 0)
	for _, l := range a.resLabels() {
		b = append(b, l.Name...)
		b = append(b, 0)
		b = append(b, l.Value...)
		b = append(b, 0)
	}
	b = append(b, 1)
	for k, v := range attrs.All() {
		b = append(b, k...)
		b = append(b, 0)
		b = appendValue(b, v)
		b = append(b, 0)
	}
	a.base = b
}

func appendValue(b []byte, v pcommon.Value) []byte {
	b = append(b, byte(v.Type()))
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return append(b, v.Str()...)
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		return strconv.AppendFloat(b, v.Double(), 'g', -1, 64)
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(b, v.Bool())
	default:
		return append(b, v.AsString()...)
	}
}

func ms(ts pcommon.Timestamp) int64 {
	if ts == 0 {
		return time.Now().UnixMilli()
	}
	return int64(ts) / int64(time.Millisecond)
}

func (a *Translator) numberPoint(p pmetric.NumberDataPoint) int64 {
	a.startPoint(p.Attributes())
	var v float64
	switch p.ValueType() {
	case pmetric.NumberDataPointValueTypeInt:
		v = float64(p.IntValue())
	default:
		v = p.DoubleValue()
	}
	if p.Flags().NoRecordedValue() {
		v = math.Float64frombits(value.StaleNaN)
	}
	ref, ok := a.add(kindValue, "", "", ms(p.Timestamp()), v)
	exs := p.Exemplars()
	if !ok {
		a.rejectedExemplars[ReasonSampleRejected].Add(int64(exs.Len()))
		return 0
	}
	for i := 0; i < exs.Len(); i++ {
		a.addExemplar(ref, exs.At(i), ms(p.Timestamp()))
	}
	return 1
}

// bucketOf returns the index of the first bucket whose upper bound holds v
// (len(bounds) for +Inf).
func bucketOf(bounds pcommon.Float64Slice, v float64) int {
	for i := 0; i < bounds.Len(); i++ {
		if v <= bounds.At(i) {
			return i
		}
	}
	return bounds.Len()
}

func (a *Translator) histogramPoint(p pmetric.HistogramDataPoint) int64 {
	a.startPoint(p.Attributes())
	t := ms(p.Timestamp())
	stale := p.Flags().NoRecordedValue()
	val := func(v float64) float64 {
		if stale {
			return math.Float64frombits(value.StaleNaN)
		}
		return v
	}
	var n int64
	bounds, counts := p.ExplicitBounds(), p.BucketCounts()
	// Exemplars go to the first bucket whose bound holds their value.
	exs := p.Exemplars()
	exemplars := func(bucket int, ref storage.SeriesRef, ok bool) {
		for j := 0; j < exs.Len(); j++ {
			ex := exs.At(j)
			if bucketOf(bounds, exemplarValue(ex)) != bucket {
				continue
			}
			if !ok {
				a.rejectedExemplars[ReasonSampleRejected].Add(1)
				continue
			}
			a.addExemplar(ref, ex, t)
		}
	}
	var cum uint64
	for i := 0; i < bounds.Len(); i++ {
		if i < counts.Len() {
			cum += counts.At(i)
		}
		ref, ok := a.add(kindBucket, "le", a.formatBound(bounds.At(i)), t, val(float64(cum)))
		if ok {
			n++
		}
		exemplars(i, ref, ok)
	}
	ref, ok := a.add(kindBucket, "le", "+Inf", t, val(float64(p.Count())))
	if ok {
		n++
	}
	exemplars(bounds.Len(), ref, ok)
	if p.HasSum() {
		if _, ok := a.add(kindSum, "", "", t, val(p.Sum())); ok {
			n++
		}
	}
	if _, ok := a.add(kindCount, "", "", t, val(float64(p.Count()))); ok {
		n++
	}
	return n
}

func (a *Translator) summaryPoint(p pmetric.SummaryDataPoint) int64 {
	a.startPoint(p.Attributes())
	t := ms(p.Timestamp())
	// A point without a recorded value ends its series: a stale marker
	// on every quantile, the sum and the count, as for histograms.
	stale := p.Flags().NoRecordedValue()
	val := func(v float64) float64 {
		if stale {
			return math.Float64frombits(value.StaleNaN)
		}
		return v
	}
	var n int64
	qs := p.QuantileValues()
	for i := 0; i < qs.Len(); i++ {
		q := qs.At(i)
		if _, ok := a.add(kindQuantile, "quantile", a.formatBound(q.Quantile()), t, val(q.Value())); ok {
			n++
		}
	}
	if _, ok := a.add(kindSum, "", "", t, val(p.Sum())); ok {
		n++
	}
	if _, ok := a.add(kindCount, "", "", t, val(float64(p.Count()))); ok {
		n++
	}
	return n
}

// expHistogramPoint appends an exponential histogram point as a native
// histogram. OTel bucket i covers (base^i, base^(i+1)], Prometheus bucket j
// covers (base^(j-1), base^j]: j = i+1. Scales above 8 are merged down to
// 8 (the finest native schema); scales below -4 cannot be represented and
// are counted as unsupported.
func (a *Translator) expHistogramPoint(p pmetric.ExponentialHistogramDataPoint) int64 {
	scale := p.Scale()
	if scale < -4 {
		a.rejectedSamples[ReasonUnsupported].Add(1)
		return 0
	}
	var down int32
	if scale > 8 {
		down, scale = scale-8, 8
	}
	a.startPoint(p.Attributes())
	h := &histogram.Histogram{
		CounterResetHint: histogram.UnknownCounterReset,
		Schema:           scale,
		ZeroThreshold:    p.ZeroThreshold(),
		ZeroCount:        p.ZeroCount(),
		Count:            p.Count(),
		Sum:              p.Sum(),
	}
	if p.Flags().NoRecordedValue() {
		h.Sum = math.Float64frombits(value.StaleNaN)
	}
	h.PositiveSpans, h.PositiveBuckets = nativeBuckets(p.Positive(), down)
	h.NegativeSpans, h.NegativeBuckets = nativeBuckets(p.Negative(), down)
	e := a.series(kindValue, "", "")
	t := ms(p.Timestamp())
	exs := p.Exemplars()
	if r := a.admit(t); r != "" {
		a.reject(e, r, t)
		a.rejectedExemplars[ReasonSampleRejected].Add(int64(exs.Len()))
		return 0
	}
	if r := e.check(a.tx, t, h.Count); r != "" {
		a.rejectedSamples[r].Add(1)
		a.rejectedExemplars[ReasonSampleRejected].Add(int64(exs.Len()))
		return 0
	}
	ref, err := a.app.Append(e.ref, e.lset, t, 0, h)
	if err != nil {
		a.failed(e, err, t)
		a.rejectedExemplars[ReasonSampleRejected].Add(int64(exs.Len()))
		return 0
	}
	e.ref, e.lastT, e.lastV, e.tx = ref, t, h.Count, a.tx
	for i := 0; i < exs.Len(); i++ {
		a.addExemplar(ref, exs.At(i), t)
	}
	return 1
}

// nativeBuckets converts OTel exponential buckets, merged by 2^down, to
// native histogram spans and delta-encoded counts. Empty buckets are left
// out (they become gaps between spans).
func nativeBuckets(b pmetric.ExponentialHistogramDataPointBuckets, down int32) ([]histogram.Span, []int64) {
	counts := b.BucketCounts()
	var (
		spans  []histogram.Span
		deltas []int64
		prev   int64
		last   int32 // Prometheus index of the last emitted bucket
	)
	emit := func(idx int32, c uint64) {
		if c == 0 {
			return
		}
		switch {
		case len(spans) == 0:
			spans = append(spans, histogram.Span{Offset: idx})
		case idx != last+1:
			spans = append(spans, histogram.Span{Offset: idx - last - 1})
		}
		spans[len(spans)-1].Length++
		deltas = append(deltas, int64(c)-prev)
		prev, last = int64(c), idx
	}
	var acc uint64
	var accIdx int32
	for i := 0; i < counts.Len(); i++ {
		idx := (b.Offset() + int32(i)) >> down // arithmetic shift: floor division
		if i > 0 && idx != accIdx {
			emit(accIdx+1, acc)
			acc = 0
		}
		accIdx = idx
		acc += counts.At(i)
	}
	if counts.Len() > 0 {
		emit(accIdx+1, acc)
	}
	return spans, deltas
}
