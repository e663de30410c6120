package promapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// Defaults of Federation.
const (
	// DefaultLookback is Prometheus's default lookback delta.
	DefaultLookback = 5 * time.Minute
	// DefaultFederationMaxSeries is weft_store's default max_series: a
	// full head fits in one answer.
	DefaultFederationMaxSeries = 100_000
)

// Federation configures /federate, the Prometheus federation endpoint: a
// Prometheus that scrapes it (honor_labels: true) gets each matched
// series' newest sample.
type Federation struct {
	// ExternalLabels are added to every series that does not carry the
	// label itself (weft_store's external_labels), as Prometheus adds its
	// own global external labels to what it federates.
	ExternalLabels labels.Labels
	// Lookback is how far before now a series' newest sample may be for
	// the series to be answered (0: DefaultLookback).
	Lookback time.Duration
	// MaxSeries bounds the series of one answer; a request that matches
	// more fails with 422 "execution" before anything is encoded (0:
	// DefaultFederationMaxSeries).
	MaxSeries int
}

// federated is one series of a federation answer: its labels (external
// labels added) and newest sample.
type federated struct {
	lset labels.Labels
	t    int64
	v    float64
}

// federate answers GET /federate?match[]=...: for every series that any
// selector matches (once, however many match it), its newest float
// sample in (now-lookback, now], unless that sample is a staleness marker,
// in the exposition format the Accept header asks for (text 0.0.4 by
// default, protobuf delimited), one untyped family per metric name.
// Native histogram samples are not federated: a series whose newest
// sample is a histogram is left out.
func (a *API) federate(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		a.federateFail(w, a.FormError(err))
		return
	}
	sets, aerr := a.federationSelectors(r.Form["match[]"])
	if aerr != nil {
		a.federateFail(w, aerr)
		return
	}
	series, aerr := a.federatedSeries(r.Context(), sets)
	if aerr != nil {
		a.federateFail(w, aerr)
		return
	}
	// Written straight to w: behind the query gate w is the buffer that
	// is sent once the slot is released, and the families built here are
	// valid, so encoding fails only with a writer whose client is gone.
	format := expfmt.NegotiateAccept(r.Header, expfmt.FmtProtoDelim, expfmt.FmtText) // the two formats federation scrapers ask for
	w.Header().Set("Content-Type", string(format))
	if err := encodeFamilies(expfmt.NewEncoder(w, format), series); err != nil {
		a.Observe(&Error{ErrorInternal, http.StatusInternalServerError, err})
	}
}

func (a *API) federateFail(w http.ResponseWriter, aerr *Error) {
	a.Observe(aerr)
	Fail(w, aerr)
}

// federationSelectors parses each match[] as a series selector; the error
// of a bad one quotes it.
func (a *API) federationSelectors(ms []string) ([][]*labels.Matcher, *Error) {
	if len(ms) == 0 {
		return nil, BadData(errors.New("no match[] parameter provided"))
	}
	sets := make([][]*labels.Matcher, 0, len(ms))
	for _, m := range ms {
		set, err := a.Parser.ParseMetricSelector(m)
		if err == nil && !slices.ContainsFunc(set, func(m *labels.Matcher) bool { return !m.Matches("") }) {
			// It would select every series, as /api/v1/series refuses to.
			err = errors.New("a selector must contain at least one matcher that does not match the empty string")
		}
		if err != nil {
			return nil, InvalidParam(fmt.Errorf("selector %q: %w", m, err), "match[]")
		}
		sets = append(sets, set)
	}
	return sets, nil
}

// federatedSeries selects the series of sets over the lookback window
// (merged: a series matched by several sets is read once) and returns
// those with a federated sample, sorted by metric name and labels.
func (a *API) federatedSeries(ctx context.Context, sets [][]*labels.Matcher) ([]federated, *Error) {
	lookback, maxSeries := a.Federation.Lookback, a.Federation.MaxSeries
	if lookback <= 0 {
		lookback = DefaultLookback
	}
	if maxSeries <= 0 {
		maxSeries = DefaultFederationMaxSeries
	}
	// The window is left-open, as the PromQL engine's lookback is: a
	// sample exactly lookback old is out.
	maxt := a.Now().UnixMilli()
	mint := maxt - lookback.Milliseconds() + 1
	q, err := a.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, QueryError(err)
	}
	defer q.Close()
	hints := &storage.SelectHints{Start: mint, End: maxt}
	selected := make([]storage.SeriesSet, 0, len(sets))
	for _, set := range sets {
		selected = append(selected, q.Select(ctx, true, hints, set...))
	}
	ss := storage.NewMergeSeriesSet(selected, 0, storage.ChainedSeriesMerge)

	var (
		out []federated
		it  chunkenc.Iterator
		b   = labels.NewBuilder(labels.EmptyLabels())
	)
	for i := 0; ss.Next(); i++ {
		// The series set does not watch ctx; timeout and a client that
		// goes away end the walk here.
		if i%1024 == 0 && ctx.Err() != nil {
			return nil, QueryError(ctx.Err())
		}
		s := ss.At()
		it = s.Iterator(it)
		t, v, ok := newestFloat(it, mint, maxt)
		if err := it.Err(); err != nil {
			return nil, QueryError(err)
		}
		// A series without a name has no place in the exposition format;
		// the store's writers never make one.
		if !ok || s.Labels().Get(model.MetricNameLabel) == "" {
			continue
		}
		if len(out) == maxSeries {
			return nil, &Error{ErrorExec, http.StatusUnprocessableEntity, fmt.Errorf(
				"match[] selects more than %d series with a sample in the last %s, the most one /federate answer holds: narrow the selectors", maxSeries, lookback)}
		}
		b.Reset(s.Labels())
		a.Federation.ExternalLabels.Range(func(l labels.Label) {
			if b.Get(l.Name) == "" {
				b.Set(l.Name, l.Value)
			}
		})
		out = append(out, federated{lset: b.Labels(), t: t, v: v})
	}
	if err := ss.Err(); err != nil {
		return nil, QueryError(err)
	}
	// External labels can change the order of series within a name.
	slices.SortFunc(out, func(x, y federated) int {
		if c := strings.Compare(x.lset.Get(model.MetricNameLabel), y.lset.Get(model.MetricNameLabel)); c != 0 {
			return c
		}
		return labels.Compare(x.lset, y.lset)
	})
	return out, nil
}

// newestFloat returns the newest sample of it in [mint, maxt]; ok is false
// when there is none, or when it is a staleness marker or a histogram.
func newestFloat(it chunkenc.Iterator, mint, maxt int64) (t int64, v float64, ok bool) {
	last := chunkenc.ValNone
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		st := it.AtT()
		if st < mint {
			continue
		}
		if st > maxt {
			break
		}
		last, t = vt, st
		if vt == chunkenc.ValFloat {
			_, v = it.At()
		}
	}
	if last != chunkenc.ValFloat || value.IsStaleNaN(v) {
		return 0, 0, false
	}
	return t, v, true
}

// encodeFamilies encodes sorted series as one untyped family per metric
// name, as Prometheus federates series it has no metadata for. Families
// are built one at a time into messages reused across families (the
// encoder keeps none): the answer's memory is its encoded bytes.
func encodeFamilies(enc expfmt.Encoder, series []federated) error {
	var (
		metrics []dto.Metric
		untyped []dto.Untyped
		pairs   []dto.LabelPair
		mptrs   []*dto.Metric
		pptrs   []*dto.LabelPair
		strs    []string // names and values the pairs point to
	)
	for len(series) > 0 {
		name := series[0].lset.Get(model.MetricNameLabel)
		n := 1
		for n < len(series) && series[n].lset.Get(model.MetricNameLabel) == name {
			n++
		}
		nLabels := 0
		for _, s := range series[:n] {
			nLabels += s.lset.Len() - 1
		}
		metrics, untyped, mptrs = grow(metrics, n), grow(untyped, n), mptrs[:0]
		pairs, pptrs, strs = grow(pairs, nLabels), grow(pptrs, nLabels), grow(strs, 2*nLabels)
		li := 0
		for i, s := range series[:n] {
			m, u := &metrics[i], &untyped[i]
			u.Value = &series[i].v
			m.Untyped, m.TimestampMs = u, &series[i].t
			first := li
			s.lset.Range(func(l labels.Label) {
				if l.Name == model.MetricNameLabel {
					return
				}
				strs[2*li], strs[2*li+1] = l.Name, l.Value
				pairs[li].Name, pairs[li].Value = &strs[2*li], &strs[2*li+1]
				pptrs[li] = &pairs[li]
				li++
			})
			m.Label = pptrs[first:li:li]
			mptrs = append(mptrs, m)
		}
		mf := &dto.MetricFamily{Name: &name, Type: dto.MetricType_UNTYPED.Enum(), Metric: mptrs}
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("encode family %q: %w", name, err)
		}
		series = series[n:]
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			return fmt.Errorf("encode: %w", err)
		}
	}
	return nil
}

// grow returns s with length n, reusing its array when it is large
// enough; the elements keep whatever they held.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}
