package translate

import (
	"cmp"
	"errors"
	"slices"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

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
func (a *Translator) addExemplar(ref storage.SeriesRef, ex pmetric.Exemplar, t int64) {
	tid := ex.TraceID()
	if tid.IsEmpty() && !a.asExposed {
		a.rejectedExemplars[ReasonNoTraceID].Add(1)
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
	if ts > a.maxt {
		// Exemplars must be in order per series: one from the future
		// would hide every later one of its series.
		a.rejectedExemplars[ReasonTooFarInFuture].Add(1)
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
func (a *Translator) appendExemplars() {
	pending := a.pendingEx
	a.pendingEx = a.pendingEx[:0]
	slices.SortStableFunc(pending, func(x, y pendingExemplar) int {
		return cmp.Or(cmp.Compare(x.ref, y.ref), cmp.Compare(x.e.Ts, y.e.Ts), cmp.Compare(x.e.Value, y.e.Value), cmp.Compare(x.hash, y.hash))
	})
	for i, p := range pending {
		if i > 0 && pending[i-1].ref == p.ref && pending[i-1].e.Equals(p.e) {
			a.rejectedExemplars[ReasonDuplicate].Add(1)
			continue
		}
		if err := a.app.AppendExemplar(p.ref, p.e); err != nil {
			a.rejectedExemplars[exemplarReason(err)].Add(1)
			continue
		}
		a.exemplars.Add(1)
	}
}

func exemplarReason(err error) string {
	switch {
	case errors.Is(err, storage.ErrOutOfOrderExemplar):
		return ReasonOutOfOrder
	case errors.Is(err, storage.ErrDuplicateExemplar):
		return ReasonDuplicate
	case errors.Is(err, storage.ErrExemplarLabelLength):
		return ReasonLabelLength
	case errors.Is(err, storage.ErrExemplarsDisabled):
		return ReasonExemplarDisabled
	default:
		return ReasonOther
	}
}
