// Package translate converts pdata metrics into Prometheus series for
// weft_store's TSDB: names and labels (the OTel translation, or the names
// as exposed for pod_scrape's scraped metrics), float samples, classic and
// native histograms, summaries and exemplars. Known series are found in a
// positional cache by a hash of their pdata identity and appended by
// SeriesRef. Every sample or exemplar not stored is counted by reason.
//
// The TSDB is reached through Appender, one transaction per batch; the
// store's guard (time window, series limit, refusals by source) through
// Guard.
package translate

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sync/atomic"

	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/weftobs/weft/internal/refusal"
)

// Reasons a sample or exemplar is not stored. Each is a self-metric label
// value and a key of Stats.RejectedSamples / Stats.RejectedExemplars.
const (
	ReasonOutOfOrder       = "out_of_order"
	ReasonOutOfBounds      = "out_of_bounds"
	ReasonTooOld           = "too_old"
	ReasonDuplicate        = "duplicate"
	ReasonDelta            = "delta_temporality"
	ReasonUnsupported      = "unsupported_type"
	ReasonCommitFailed     = "commit_failed"
	ReasonLabelLength      = "label_length"
	ReasonNoTraceID        = "no_trace_id"
	ReasonOther            = "other"
	ReasonExemplarDisabled = "exemplars_disabled"
	ReasonSampleRejected   = "sample_rejected" // the exemplar's sample was rejected

	// The store's own refusals, decided before a sample reaches the TSDB
	// appender; samples refused for them are counted by the Guard, by
	// reason and source.
	ReasonTooFarInFuture = "too_far_in_future"
	ReasonSeriesLimit    = "series_limit"
)

// sampleReasons are counted here, by reason only; the store's own
// refusals (ReasonTooFarInFuture, ReasonSeriesLimit) by the Guard.
var sampleReasons = []string{ReasonOutOfOrder, ReasonOutOfBounds, ReasonTooOld, ReasonDuplicate, ReasonDelta, ReasonUnsupported, ReasonCommitFailed, ReasonOther}

var exemplarReasons = []string{ReasonOutOfOrder, ReasonDuplicate, ReasonLabelLength, ReasonNoTraceID, ReasonExemplarDisabled, ReasonSampleRejected, ReasonTooFarInFuture, ReasonOther}

// ErrSeriesLimit is what an Appender returns (wrapped or not) for a sample
// of a new series the store refuses: its head holds max_series series. The
// translator counts the sample through Guard.Refuse.
var ErrSeriesLimit = errors.New("weft_store: max_series reached")

// Appender is one TSDB transaction, as the translator writes to it.
type Appender interface {
	// Append appends a float sample (h nil) or a native histogram sample
	// at t to the series ref, or, with ref 0, to the series l, and returns
	// the series' ref. A new series the store refuses: ErrSeriesLimit.
	Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64, h *histogram.Histogram) (storage.SeriesRef, error)
	// AppendExemplar appends e to the series ref.
	AppendExemplar(ref storage.SeriesRef, e exemplar.Exemplar) error
	Commit() error
}

// Guard is the store's admission of the samples of one batch.
type Guard interface {
	// Bounds returns the times a sample of the batch may have: from mint
	// to maxt. Later ones are refused as ReasonTooFarInFuture, earlier
	// ones as ReasonOutOfBounds.
	Bounds() (mint, maxt int64)
	// Refuse counts a sample of the source src at t, refused for reason
	// ReasonTooFarInFuture or ReasonSeriesLimit.
	Refuse(reason string, src refusal.Source, t int64)
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
		return ReasonOutOfOrder
	case t == e.lastT && v != e.lastV:
		return ReasonDuplicate
	}
	return ""
}

// Translator converts pdata metrics into TSDB samples. Known series are
// found by a hash of their pdata identity (metric, resource labels, point
// attributes) and appended by SeriesRef: no label building, sorting or
// label hashing.
//
// A Translator is not safe for concurrent use, except Stats: its caller
// serializes Append, Purge and CachedSeries.
type Translator struct {
	seed  maphash.Seed
	cache map[uint64]*seriesEntry
	gen   uint32
	tx    uint64 // number of the current Append call, from 1

	// Scratch state of one Append call, reused.
	app        Appender
	g          Guard
	mint, maxt int64          // sample times the call accepts
	resAttrs   pcommon.Map    // attributes of the current resource
	src        refusal.Source // source of the current resource, built on the first refusal
	lastHash   uint64         // cache key of the entry series returned last
	base       []byte         // identity of the metric + resource + point attributes
	id         []byte
	res        []labels.Label // labels from the resource: job, instance
	promRes    []labels.Label // promoted k8s labels from the resource
	resAll     []labels.Label // res + promRes, reused
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

// New returns a Translator with an empty series cache.
func New() *Translator {
	a := &Translator{
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

// Purge forgets series not used since the previous purge: their refs may be
// gone from the head after truncation.
func (a *Translator) Purge() {
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

// CachedSeries returns the number of series in the cache.
func (a *Translator) CachedSeries() int {
	n := 0
	for _, e := range a.cache {
		for ; e != nil; e = e.next {
			n++
		}
	}
	return n
}

// Stats are the translator's counters.
type Stats struct {
	Samples           int64            // appended and committed
	Exemplars         int64            // appended
	NewSeries         int64            // cache misses: series whose labels were built
	RejectedSamples   map[string]int64 // by reason, except the Guard's refusals
	RejectedExemplars map[string]int64 // by reason
}

// Stats returns the translator's counters. It is safe for concurrent use.
func (a *Translator) Stats() Stats {
	st := Stats{
		Samples: a.samples.Load(), Exemplars: a.exemplars.Load(), NewSeries: a.newSeries.Load(),
		RejectedSamples:   make(map[string]int64, len(a.rejectedSamples)),
		RejectedExemplars: make(map[string]int64, len(a.rejectedExemplars)),
	}
	for r, c := range a.rejectedSamples {
		st.RejectedSamples[r] = c.Load()
	}
	for r, c := range a.rejectedExemplars {
		st.RejectedExemplars[r] = c.Load()
	}
	return st
}

// Append converts md and appends its samples and exemplars through app in
// one transaction, which it commits. Samples outside g's bounds are not
// appended; samples and exemplars not stored are counted by reason (the
// Guard's refusals by the Guard).
func (a *Translator) Append(app Appender, g Guard, md pmetric.Metrics) error {
	a.app, a.g = app, g
	a.mint, a.maxt = g.Bounds()
	a.tx++
	defer func() { a.app, a.g = nil, nil }()
	var pending int64 // samples appended in this transaction
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		a.resAttrs, a.src = rm.Resource().Attributes(), refusal.Source{}
		a.resourceLabels(a.resAttrs)
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			a.asExposed = sms.At(j).Scope().Name() == ScrapedScope
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				pending += a.appendMetric(ms.At(k))
			}
		}
	}
	a.appendExemplars()
	if err := a.app.Commit(); err != nil {
		a.rejectedSamples[ReasonCommitFailed].Add(pending)
		return fmt.Errorf("weft_store: commit samples: %w", err)
	}
	a.samples.Add(pending)
	return nil
}

// add appends one sample of the current point's series of the given kind
// (with the extra label for buckets and quantiles) and returns its ref.
func (a *Translator) add(kind byte, extraName, extraValue string, t int64, v float64) (storage.SeriesRef, bool) {
	e := a.series(kind, extraName, extraValue)
	if r := a.admit(t); r != "" {
		a.reject(e, r, t)
		return 0, false
	}
	if r := e.check(a.tx, t, math.Float64bits(v)); r != "" {
		a.rejectedSamples[r].Add(1)
		return 0, false
	}
	ref, err := a.app.Append(e.ref, e.lset, t, v, nil)
	if err != nil {
		a.failed(e, err, t)
		return 0, false
	}
	e.ref, e.lastT, e.lastV, e.tx = ref, t, math.Float64bits(v), a.tx
	return ref, true
}

// admit reports why the store refuses a sample at t before the TSDB sees
// it, or "": too far ahead of the clock, or behind the appendable window
// (the Guard's bounds). The series limit is the Appender's (see failed).
func (a *Translator) admit(t int64) string {
	switch {
	case t > a.maxt:
		return ReasonTooFarInFuture
	case t < a.mint:
		return ReasonOutOfBounds
	}
	return ""
}

// failed counts a sample of e at t that the Appender did not take.
func (a *Translator) failed(e *seriesEntry, err error, t int64) {
	if errors.Is(err, ErrSeriesLimit) {
		a.reject(e, ReasonSeriesLimit, t)
		return
	}
	a.rejectedSamples[sampleReason(err)].Add(1)
}

// reject counts a sample of e at t refused by admit or for the series
// limit.
func (a *Translator) reject(e *seriesEntry, reason string, t int64) {
	switch reason {
	case ReasonTooFarInFuture, ReasonSeriesLimit:
		if a.src.ID == "" {
			a.src = refusal.SourceOf(a.resAttrs)
		}
		a.g.Refuse(reason, a.src, t)
	default:
		a.rejectedSamples[reason].Add(1)
	}
	if e.ref == 0 {
		a.forget(e)
	}
}

// forget removes e, just returned by series and never appended, from the
// cache: refused new series must not grow it.
func (a *Translator) forget(e *seriesEntry) {
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
func (a *Translator) series(kind byte, extraName, extraValue string) *seriesEntry {
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

func sampleReason(err error) string {
	switch {
	case errors.Is(err, storage.ErrOutOfOrderSample):
		return ReasonOutOfOrder
	case errors.Is(err, storage.ErrOutOfBounds):
		return ReasonOutOfBounds
	case errors.Is(err, storage.ErrTooOldSample):
		return ReasonTooOld
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return ReasonDuplicate
	default:
		return ReasonOther
	}
}
