package weftstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Reasons a sample or exemplar is not stored. Each is a self-metric label
// value and a key of Stats.RejectedSamples / Stats.RejectedExemplars.
const (
	reasonOutOfOrder       = "out_of_order"
	reasonOutOfBounds      = "out_of_bounds"
	reasonTooOld           = "too_old"
	reasonDuplicate        = "duplicate"
	reasonDelta            = "delta_temporality"
	reasonUnsupported      = "unsupported_type"
	reasonCommitFailed     = "commit_failed"
	reasonLabelLength      = "label_length"
	reasonNoTraceID        = "no_trace_id"
	reasonOther            = "other"
	reasonExemplarDisabled = "exemplars_disabled"
	reasonSampleRejected   = "sample_rejected" // the exemplar's sample was rejected
)

// sampleReasons are counted by reason only; the store's own refusals
// (reasonTooFarInFuture, reasonSeriesLimit) by reason and source, in
// refusals.
var sampleReasons = []string{reasonOutOfOrder, reasonOutOfBounds, reasonTooOld, reasonDuplicate, reasonDelta, reasonUnsupported, reasonCommitFailed, reasonOther}

var exemplarReasons = []string{reasonOutOfOrder, reasonDuplicate, reasonLabelLength, reasonNoTraceID, reasonExemplarDisabled, reasonSampleRejected, reasonTooFarInFuture, reasonOther}

// promoted are the resource attributes that become labels of every series,
// named the way Prometheus's promote_resource_attributes names them.
var promoted = []struct{ attr, label string }{
	{"k8s.namespace.name", "k8s_namespace_name"},
	{"k8s.pod.name", "k8s_pod_name"},
	{"k8s.container.name", "k8s_container_name"},
	{"k8s.node.name", "k8s_node_name"},
}

// series kinds, part of a series' identity besides the metric's.
const (
	kindValue byte = iota
	kindBucket
	kindSum
	kindCount
	kindQuantile
)

// seriesEntry is a cached TSDB series: id is the exact identity bytes whose
// hash is the cache key (compared on every hit, so a hash collision costs a
// label build, never a wrong series).
//
// lastT/lastV are the last sample appended through this entry in
// transaction tx. The head checks a sample only against committed data, and
// drops a sample that is out of order against an earlier one of the same
// transaction at commit without telling the caller; checking against lastT
// within a transaction makes those rejections visible (counted by reason).
type seriesEntry struct {
	id    []byte
	ref   storage.SeriesRef
	lset  labels.Labels
	gen   uint32
	lastT int64
	lastV uint64       // float bits; for histograms the count
	tx    uint64       // the append call that set lastT
	next  *seriesEntry // same hash, different identity
}

// check reports why a sample at t with value bits v cannot follow the
// entry's last one, or "" when it can. A repeat of the last sample is
// accepted (the head ignores it; nothing is lost).
func (e *seriesEntry) check(tx uint64, t int64, v uint64) string {
	if e.tx != tx {
		return "" // the head checks against committed samples
	}
	switch {
	case t < e.lastT:
		return reasonOutOfOrder
	case t == e.lastT && v != e.lastV:
		return reasonDuplicate
	}
	return ""
}

// metricAppender converts pdata metrics into TSDB samples. Known series are
// found by a hash of their pdata identity (metric, resource labels, point
// attributes) and appended by SeriesRef: no label building, sorting or
// label hashing.
type metricAppender struct {
	db storage.Appendable
	g  *guard

	mu    sync.Mutex
	seed  maphash.Seed
	cache map[uint64]*seriesEntry
	gen   uint32
	tx    uint64 // number of the current append call, from 1

	// Scratch state of one append call, reused.
	app      storage.Appender
	b        bounds      // sample times the call accepts
	resAttrs pcommon.Map // attributes of the current resource
	src      sourceInfo  // source of the current resource, built on the first refusal
	lastHash uint64      // cache key of the entry series returned last
	base     []byte      // identity of the metric + resource + point attributes
	id       []byte
	res      []labels.Label // labels from the resource: job, instance
	promRes  []labels.Label // promoted k8s labels from the resource
	resAll   []labels.Label // res + promRes, reused
	// asExposed: the current scope's metrics were scraped from a
	// Prometheus endpoint (pod_scrape); their names, label names and
	// bucket bounds are kept exactly as exposed, what a Prometheus
	// scraping the same target stores, instead of the OTel translation.
	asExposed bool
	// boundTexts maps a bound's 'g' form to its exposed text, for the
	// current scraped metric (pod_scrape's ExposedBoundsKey metadata).
	boundTexts pcommon.Map
	ls         []labels.Label
	metric     pmetric.Metric
	mtype      otlptranslator.MetricType
	promName   string // lazily built Prometheus name of metric ("" until needed)
	attrs      pcommon.Map
	exLabels   labels.ScratchBuilder
	// pendingEx are the exemplars of the current transaction, appended in
	// order just before Commit (see appendExemplars).
	pendingEx []pendingExemplar

	metricNamer otlptranslator.MetricNamer
	labelNamer  otlptranslator.LabelNamer

	samples           atomic.Int64
	exemplars         atomic.Int64
	newSeries         atomic.Int64
	rejectedSamples   map[string]*atomic.Int64
	rejectedExemplars map[string]*atomic.Int64
}

func newMetricAppender(db storage.Appendable, g *guard) *metricAppender {
	a := &metricAppender{
		db:                db,
		g:                 g,
		seed:              maphash.MakeSeed(),
		cache:             make(map[uint64]*seriesEntry),
		gen:               1,
		exLabels:          labels.NewScratchBuilder(2),
		metricNamer:       otlptranslator.MetricNamer{WithMetricSuffixes: true},
		labelNamer:        otlptranslator.LabelNamer{},
		rejectedSamples:   make(map[string]*atomic.Int64),
		rejectedExemplars: make(map[string]*atomic.Int64),
	}
	for _, r := range sampleReasons {
		a.rejectedSamples[r] = new(atomic.Int64)
	}
	for _, r := range exemplarReasons {
		a.rejectedExemplars[r] = new(atomic.Int64)
	}
	return a
}

// purge forgets series not used since the previous purge: their refs may be
// gone from the head after truncation.
func (a *metricAppender) purge() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, e := range a.cache {
		var keep *seriesEntry
		for ; e != nil; e = e.next {
			if e.gen+1 >= a.gen {
				c := *e
				c.next = keep
				keep = &c
			}
		}
		if keep == nil {
			delete(a.cache, h)
		} else {
			a.cache[h] = keep
		}
	}
	a.gen++
}

func (a *metricAppender) cachedSeries() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, e := range a.cache {
		for ; e != nil; e = e.next {
			n++
		}
	}
	return n
}

func (a *metricAppender) append(ctx context.Context, md pmetric.Metrics) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.app = a.db.Appender(ctx)
	a.b = a.g.bounds()
	a.tx++
	defer func() { a.app = nil }()
	var pending int64 // samples appended in this transaction
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		a.resAttrs, a.src = rm.Resource().Attributes(), sourceInfo{}
		a.resourceLabels(a.resAttrs)
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			a.asExposed = sms.At(j).Scope().Name() == scrapedScope
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				pending += a.appendMetric(ms.At(k))
			}
		}
	}
	a.appendExemplars()
	if err := a.app.Commit(); err != nil {
		a.rejectedSamples[reasonCommitFailed].Add(pending)
		return fmt.Errorf("weft_store: commit samples: %w", err)
	}
	a.samples.Add(pending)
	return nil
}

// resourceLabels sets a.res (sorted) from the resource attributes: job and
// instance, and a.promRes from the promoted k8s attributes.
func (a *metricAppender) resourceLabels(attrs pcommon.Map) {
	a.res, a.promRes = a.res[:0], a.promRes[:0]
	if svc := attrString(attrs, "service.name"); svc != "" {
		job := svc
		if ns := attrString(attrs, "service.namespace"); ns != "" {
			job = ns + "/" + svc
		}
		a.res = append(a.res, labels.Label{Name: "job", Value: job})
	}
	if inst := attrString(attrs, "service.instance.id"); inst != "" {
		a.res = append(a.res, labels.Label{Name: "instance", Value: inst})
	}
	for _, p := range promoted {
		if v := attrString(attrs, p.attr); v != "" {
			a.promRes = append(a.promRes, labels.Label{Name: p.label, Value: v})
		}
	}
}

// appendMetric appends every point of m and returns the number of samples
// appended.
func (a *metricAppender) appendMetric(m pmetric.Metric) int64 {
	a.metric, a.promName = m, ""
	a.boundTexts = pcommon.Map{}
	if a.asExposed {
		if v, ok := m.Metadata().Get(exposedBoundsKey); ok && v.Type() == pcommon.ValueTypeMap {
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
				a.rejectedSamples[reasonDelta].Add(int64(s.DataPoints().Len()))
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
			a.rejectedSamples[reasonDelta].Add(int64(h.DataPoints().Len()))
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
			a.rejectedSamples[reasonDelta].Add(int64(h.DataPoints().Len()))
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
func (a *metricAppender) startPoint(attrs pcommon.Map) {
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

func (a *metricAppender) numberPoint(p pmetric.NumberDataPoint) int64 {
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
	ref, ok := a.add(kindValue, 0, "", "", ms(p.Timestamp()), v)
	exs := p.Exemplars()
	if !ok {
		a.rejectedExemplars[reasonSampleRejected].Add(int64(exs.Len()))
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

func (a *metricAppender) histogramPoint(p pmetric.HistogramDataPoint) int64 {
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
				a.rejectedExemplars[reasonSampleRejected].Add(1)
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
		ref, ok := a.add(kindBucket, i, "le", a.formatBound(bounds.At(i)), t, val(float64(cum)))
		if ok {
			n++
		}
		exemplars(i, ref, ok)
	}
	ref, ok := a.add(kindBucket, bounds.Len(), "le", "+Inf", t, val(float64(p.Count())))
	if ok {
		n++
	}
	exemplars(bounds.Len(), ref, ok)
	if p.HasSum() {
		if _, ok := a.add(kindSum, 0, "", "", t, val(p.Sum())); ok {
			n++
		}
	}
	if _, ok := a.add(kindCount, 0, "", "", t, val(float64(p.Count()))); ok {
		n++
	}
	return n
}

func (a *metricAppender) summaryPoint(p pmetric.SummaryDataPoint) int64 {
	a.startPoint(p.Attributes())
	t := ms(p.Timestamp())
	var n int64
	qs := p.QuantileValues()
	for i := 0; i < qs.Len(); i++ {
		q := qs.At(i)
		if _, ok := a.add(kindQuantile, i, "quantile", a.formatBound(q.Quantile()), t, q.Value()); ok {
			n++
		}
	}
	if _, ok := a.add(kindSum, 0, "", "", t, p.Sum()); ok {
		n++
	}
	if _, ok := a.add(kindCount, 0, "", "", t, float64(p.Count())); ok {
		n++
	}
	return n
}

// scrapedScope is the instrumentation scope of pod_scrape's metrics, and
// exposedBoundsKey its metric metadata key for bounds exposed in another
// form than 'g' (podscrape.ExposedBoundsKey; the store does not import
// receivers).
const (
	scrapedScope     = "github.com/weftobs/weft/receivers/podscrape"
	exposedBoundsKey = "weft.prometheus.exposed_bounds"
)

// resLabels are the resource's labels for the current scope: job and
// instance, plus the promoted k8s labels for OTel-named metrics (a
// Prometheus scraping a target adds none of them).
func (a *metricAppender) resLabels() []labels.Label {
	if a.asExposed || len(a.promRes) == 0 {
		return a.res
	}
	a.resAll = append(append(a.resAll[:0], a.res...), a.promRes...)
	return a.resAll
}

// formatBound formats an le or quantile label value. Scraped bounds use
// the shortest 'g' form, what Go's client library and Envoy expose
// (1e+06, 0.00011, 1e-05), so that the label matches what Prometheus
// stored from the same exposition; OTel-named metrics keep the OTel
// translator's form.
func (a *metricAppender) formatBound(f float64) string {
	if a.asExposed && !math.IsInf(f, 0) {
		g := strconv.FormatFloat(f, 'g', -1, 64)
		if a.boundTexts != (pcommon.Map{}) {
			if raw, ok := a.boundTexts.Get(g); ok {
				return raw.AsString()
			}
		}
		return g
	}
	return formatFloat(f)
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// add appends one sample of the current point's series of the given kind
// (with the extra label for buckets and quantiles) and returns its ref.
func (a *metricAppender) add(kind byte, _ int, extraName, extraValue string, t int64, v float64) (storage.SeriesRef, bool) {
	e := a.series(kind, extraName, extraValue)
	if r := a.admit(e, t); r != "" {
		a.reject(e, r, t)
		return 0, false
	}
	if r := e.check(a.tx, t, math.Float64bits(v)); r != "" {
		a.rejectedSamples[r].Add(1)
		return 0, false
	}
	ref, err := a.app.Append(e.ref, e.lset, t, v)
	if err != nil {
		a.rejectedSamples[sampleReason(err)].Add(1)
		return 0, false
	}
	e.ref, e.lastT, e.lastV, e.tx = ref, t, math.Float64bits(v), a.tx
	return ref, true
}

// admit reports why the store refuses a sample of e at t before the TSDB
// sees it, or "": too far ahead of the clock, behind the appendable window
// (see guard), or of a new series while the head is full.
func (a *metricAppender) admit(e *seriesEntry, t int64) string {
	switch {
	case t > a.b.maxt:
		return reasonTooFarInFuture
	case t < a.b.mint:
		return reasonOutOfBounds
	case e.ref == 0 && a.g.full():
		// A new cache entry; the head may still hold the series (the
		// cache forgot it, or it came from the WAL).
		ref, _ := getRef(a.app, e.lset, e.lset.Hash())
		if ref == 0 {
			return reasonSeriesLimit
		}
		e.ref = ref
	}
	return ""
}

// reject counts a sample of e at t refused by admit.
func (a *metricAppender) reject(e *seriesEntry, reason string, t int64) {
	switch reason {
	case reasonTooFarInFuture, reasonSeriesLimit:
		if a.src.ID == "" {
			a.src = sourceOf(a.resAttrs)
		}
		a.g.refuse(a.b, reason, a.src, t, 1)
	default:
		a.rejectedSamples[reason].Add(1)
	}
	if e.ref == 0 {
		a.forget(e)
	}
}

// forget removes e, just returned by series and never appended, from the
// cache: refused new series must not grow it.
func (a *metricAppender) forget(e *seriesEntry) {
	if a.cache[a.lastHash] != e {
		return
	}
	if e.next == nil {
		delete(a.cache, a.lastHash)
	} else {
		a.cache[a.lastHash] = e.next
	}
}

// series returns the cache entry of the current point's series of the
// given kind, building its labels on a miss.
func (a *metricAppender) series(kind byte, extraName, extraValue string) *seriesEntry {
	a.id = append(a.id[:0], a.base...)
	a.id = append(a.id, kind)
	a.id = append(a.id, extraValue...)
	h := maphash.Bytes(a.seed, a.id)
	a.lastHash = h
	var e *seriesEntry
	for c := a.cache[h]; c != nil; c = c.next {
		if string(c.id) == string(a.id) {
			e = c
			break
		}
	}
	if e == nil {
		e = &seriesEntry{id: slices.Clone(a.id), lset: a.buildLabels(kind, extraName, extraValue), next: a.cache[h]}
		a.cache[h] = e
		a.newSeries.Add(1)
	}
	e.gen = a.gen
	return e
}

// expHistogramPoint appends an exponential histogram point as a native
// histogram. OTel bucket i covers (base^i, base^(i+1)], Prometheus bucket j
// covers (base^(j-1), base^j]: j = i+1. Scales above 8 are merged down to
// 8 (the finest native schema); scales below -4 cannot be represented and
// are counted as unsupported.
func (a *metricAppender) expHistogramPoint(p pmetric.ExponentialHistogramDataPoint) int64 {
	scale := p.Scale()
	if scale < -4 {
		a.rejectedSamples[reasonUnsupported].Add(1)
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
	if r := a.admit(e, t); r != "" {
		a.reject(e, r, t)
		a.rejectedExemplars[reasonSampleRejected].Add(int64(exs.Len()))
		return 0
	}
	if r := e.check(a.tx, t, h.Count); r != "" {
		a.rejectedSamples[r].Add(1)
		a.rejectedExemplars[reasonSampleRejected].Add(int64(exs.Len()))
		return 0
	}
	ref, err := a.app.AppendHistogram(e.ref, e.lset, t, h, nil)
	if err != nil {
		a.rejectedSamples[sampleReason(err)].Add(1)
		a.rejectedExemplars[reasonSampleRejected].Add(int64(exs.Len()))
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

func sampleReason(err error) string {
	switch {
	case errors.Is(err, storage.ErrOutOfOrderSample):
		return reasonOutOfOrder
	case errors.Is(err, storage.ErrOutOfBounds):
		return reasonOutOfBounds
	case errors.Is(err, storage.ErrTooOldSample):
		return reasonTooOld
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return reasonDuplicate
	default:
		return reasonOther
	}
}

// buildLabels builds the label set of a new series: the Prometheus name,
// the resource labels, the point attributes (which win over resource labels
// of the same name) and the bucket/quantile label.
func (a *metricAppender) buildLabels(kind byte, extraName, extraValue string) labels.Labels {
	if a.promName == "" {
		name, err := a.metricNamer.Build(otlptranslator.Metric{Name: a.metric.Name(), Unit: a.metric.Unit(), Type: a.mtype})
		if a.asExposed {
			name, err = a.metric.Name(), nil
		}
		if err != nil || name == "" {
			name = "unnamed_metric"
		}
		a.promName = name
	}
	name := a.promName
	switch kind {
	case kindBucket:
		name += "_bucket"
	case kindSum:
		name += "_sum"
	case kindCount:
		name += "_count"
	}
	ls := a.ls[:0]
	for k, v := range a.attrs.All() {
		ln, err := a.labelNamer.Build(k)
		if a.asExposed {
			ln, err = k, nil // exposed label names are Prometheus names already
		}
		if err != nil || ln == "" {
			continue // an empty attribute key names no label
		}
		ls = append(ls, labels.Label{Name: ln, Value: v.AsString()})
	}
	// Attributes with the same sanitized name are joined with ";" as the
	// Prometheus OTLP translator does.
	slices.SortStableFunc(ls, func(x, y labels.Label) int { return strings.Compare(x.Name, y.Name) })
	out := ls[:0]
	for _, l := range ls {
		if n := len(out); n > 0 && out[n-1].Name == l.Name {
			out[n-1].Value += ";" + l.Value
			continue
		}
		out = append(out, l)
	}
	ls = out
	has := func(n string) bool {
		_, found := slices.BinarySearchFunc(out, n, func(l labels.Label, n string) int { return strings.Compare(l.Name, n) })
		return found
	}
	for _, l := range a.resLabels() {
		if !has(l.Name) {
			ls = append(ls, l)
		}
	}
	if extraName != "" {
		ls = append(ls, labels.Label{Name: extraName, Value: extraValue})
	}
	ls = append(ls, labels.Label{Name: model.MetricNameLabel, Value: name})
	a.ls = ls
	return labels.New(ls...)
}

func exemplarValue(ex pmetric.Exemplar) float64 {
	if ex.ValueType() == pmetric.ExemplarValueTypeInt {
		return float64(ex.IntValue())
	}
	return ex.DoubleValue()
}

// addExemplar queues ex for the series ref (see appendExemplars).
// Exemplars without a trace ID
// are counted as rejected: they cannot join anything. An exemplar without a
// timestamp (the span_metrics connector sets none) takes its point's, t.
func (a *metricAppender) addExemplar(ref storage.SeriesRef, ex pmetric.Exemplar, t int64) {
	tid := ex.TraceID()
	if tid.IsEmpty() && !a.asExposed {
		a.rejectedExemplars[reasonNoTraceID].Add(1)
		return
	}
	a.exLabels.Reset()
	sid := ex.SpanID()
	if !sid.IsEmpty() {
		a.exLabels.Add("span_id", sid.String())
	}
	if !tid.IsEmpty() {
		a.exLabels.Add("trace_id", tid.String())
	}
	if a.asExposed {
		// A scraped exemplar keeps every label it was exposed with, as
		// Prometheus stores it (pod_scrape moved trace_id and span_id
		// into the IDs, the rest into the filtered attributes).
		for k, v := range ex.FilteredAttributes().All() {
			a.exLabels.Add(k, v.AsString())
		}
		a.exLabels.Sort()
	}
	ts := ms(ex.Timestamp())
	if ex.Timestamp() == 0 {
		ts = t
	}
	if ts > a.b.maxt {
		// Exemplars must be in order per series: one from the future
		// would hide every later one of its series.
		a.rejectedExemplars[reasonTooFarInFuture].Add(1)
		return
	}
	e := exemplar.Exemplar{Labels: a.exLabels.Labels(), Value: exemplarValue(ex), Ts: ts, HasTs: true}
	a.pendingEx = append(a.pendingEx, pendingExemplar{ref: ref, e: e, hash: e.Labels.Hash()})
}

// pendingExemplar is an exemplar waiting for appendExemplars.
type pendingExemplar struct {
	ref  storage.SeriesRef
	e    exemplar.Exemplar
	hash uint64 // of e.Labels
}

// appendExemplars appends the transaction's exemplars per series in the
// order the TSDB's exemplar storage requires (time, then value, then label
// hash). The head checks an exemplar against the stored ones when it is
// appended, but one that is out of order within the same transaction is
// dropped at Commit without a word; sorting first makes every drop one that
// is counted here.
func (a *metricAppender) appendExemplars() {
	pending := a.pendingEx
	a.pendingEx = a.pendingEx[:0]
	slices.SortStableFunc(pending, func(x, y pendingExemplar) int {
		return cmp.Or(cmp.Compare(x.ref, y.ref), cmp.Compare(x.e.Ts, y.e.Ts), cmp.Compare(x.e.Value, y.e.Value), cmp.Compare(x.hash, y.hash))
	})
	var lset labels.Labels // the head appender finds the series by ref
	for i, p := range pending {
		if i > 0 && pending[i-1].ref == p.ref && pending[i-1].e.Equals(p.e) {
			a.rejectedExemplars[reasonDuplicate].Add(1)
			continue
		}
		if _, err := a.app.AppendExemplar(p.ref, lset, p.e); err != nil {
			a.rejectedExemplars[exemplarReason(err)].Add(1)
			continue
		}
		a.exemplars.Add(1)
	}
}

func exemplarReason(err error) string {
	switch {
	case errors.Is(err, storage.ErrOutOfOrderExemplar):
		return reasonOutOfOrder
	case errors.Is(err, storage.ErrDuplicateExemplar):
		return reasonDuplicate
	case errors.Is(err, storage.ErrExemplarLabelLength):
		return reasonLabelLength
	case errors.Is(err, storage.ErrExemplarsDisabled):
		return reasonExemplarDisabled
	default:
		return reasonOther
	}
}

func attrString(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}

// podOf returns the pod named by resource attributes.
func podOf(m pcommon.Map) Pod {
	return Pod{Namespace: attrString(m, "k8s.namespace.name"), Name: attrString(m, "k8s.pod.name")}
}
