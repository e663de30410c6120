package weftstoreextension

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/weftobs/weft/extensions/weftpinsextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/internal/index"
	"github.com/weftobs/weft/extensions/weftstoreextension/internal/translate"
	"github.com/weftobs/weft/extensions/weftstoreextension/internal/walsalvage"
)

// IndexStats describes the span or the log index.
type IndexStats struct {
	Records      int64 // stored now
	Bytes        int64 // charged now (see README: how sizes are estimated)
	MaxBytes     int64
	Evicted      int64 // records dropped since creation, exactly (pinned ones included)
	EvictedBytes int64
	Unencodable  int64 // records that failed to serialize (not expected)
	// OffHeapBytes are the blocks the index holds outside the Go heap:
	// its records' and resources' serialized bytes (most of Bytes). They
	// are in the process's RSS but in none of the Go runtime's memory
	// figures.
	OffHeapBytes int64

	// The pinned budget: records of pinned traces that the budget above
	// evicted, kept until their pin ends (pinned_*_max_bytes).
	PinnedRecords        int64 // held now (not in Records)
	PinnedBytes          int64 // charged now (not in Bytes)
	PinnedMaxBytes       int64 // 0: no exemption
	Pinned               int64 // records moved into the pinned budget since creation
	EvictedPinnedFull    int64 // pinned records evicted because the pinned budget was full (soonest pin end first)
	EvictedPinnedExpired int64 // pinned records evicted because their pin ended

	// PinsAfterEviction counts pins (new or extended, set here or received
	// from a peer) of traces whose records this index had already dropped:
	// from the budget above while the trace was not pinned, or from the
	// pinned budget when an earlier pin ended. Those records are lost;
	// each eviction is counted once. See README: "Pins after eviction".
	PinsAfterEviction int64
}

// Stats is a snapshot of the store's counters.
type Stats struct {
	Spans             IndexStats
	Logs              IndexStats
	SamplesAppended   int64
	ExemplarsAppended int64
	// The exemplar storage: exemplars and series with exemplars held now,
	// its capacity (max_exemplars) and its WAL writes that failed (their
	// exemplars were kept in memory only). Zero before Start.
	Exemplars, ExemplarSeries int
	ExemplarCapacity          int64
	ExemplarWALFailures       int64
	SeriesCreated             int64            // cache misses: series whose labels were built
	CachedSeries              int              // series refs in the appender cache (0 before Start)
	RejectedSamples           map[string]int64 // by reason
	RejectedExemplars         map[string]int64 // by reason
	// RejectedSamplesBySource splits the store's own refusals
	// (too_far_in_future, series_limit) by source: reason → source →
	// samples. See README: where samples come from.
	RejectedSamplesBySource map[string]map[string]int64
	// LostBytes are the metrics WAL bytes the start could not read, by
	// reason (OpenLosses has each file).
	LostBytes map[string]int64
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{Spans: IndexStats(s.spans.Stats()), Logs: IndexStats(s.logs.Stats())}
	s.mu.RLock()
	metrics, exs := s.metrics, s.exStore
	st.LostBytes = make(map[string]int64, len(walsalvage.Reasons))
	for _, r := range walsalvage.Reasons {
		st.LostBytes[r] = 0
	}
	for _, l := range s.losses {
		st.LostBytes[l.Reason] += l.Bytes
	}
	s.mu.RUnlock()
	if exs != nil {
		st.Exemplars, st.ExemplarSeries = exs.Len()
		st.ExemplarCapacity = s.cfg.MaxExemplars
		st.ExemplarWALFailures = exs.WALFailures()
	}
	st.RejectedSamples = map[string]int64{translate.ReasonTooFarInFuture: 0, translate.ReasonSeriesLimit: 0}
	st.RejectedExemplars = make(map[string]int64)
	st.RejectedSamplesBySource = s.refused.Snapshot()
	for r, bySource := range st.RejectedSamplesBySource {
		for _, n := range bySource {
			st.RejectedSamples[r] += n
		}
	}
	if metrics == nil {
		return st
	}
	ts := metrics.tr.Stats()
	st.SamplesAppended = ts.Samples
	st.ExemplarsAppended = ts.Exemplars
	st.SeriesCreated = ts.NewSeries
	st.CachedSeries = metrics.cachedSeries()
	for r, n := range ts.RejectedSamples {
		st.RejectedSamples[r] = n
	}
	st.RejectedExemplars = ts.RejectedExemplars
	return st
}

// PinsStats returns the counters of the weft_pins extension whose pinned
// traces the store exempts from eviction (pins held, received, ...), for
// a status page; false when there is none.
func (s *Store) PinsStats() (weftpinsextension.Stats, bool) {
	s.mu.RLock()
	pins := s.pins
	s.mu.RUnlock()
	if pins == nil {
		return weftpinsextension.Stats{}, false
	}
	return pins.Stats(), true
}

// StorageLoss is metrics data the last start could not read.
type StorageLoss struct {
	Reason  string // checkpoint_corrupt, segment_corrupt, wal_unreadable
	File    string // relative to the store directory
	Bytes   int64  // bytes left out of the replay
	MovedTo string // where the damaged original was moved, relative to the store directory
	Err     string // what was wrong with it
}

// OpenLosses returns what the last start could not read of the metrics
// WAL (nil when nothing was lost), for a status page. Files the store set
// aside are in a damaged-<time>-<n> folder of the store directory
// (MovedTo); what the TSDB's own repair cut has no MovedTo.
func (s *Store) OpenLosses() []StorageLoss {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]StorageLoss(nil), s.losses...)
}

// registerTelemetry publishes the counters as self-metrics through the
// collector's meter provider. Called with s.mu held.
func (s *Store) registerTelemetry() error {
	if s.tel.MeterProvider == nil {
		return nil
	}
	m := s.tel.MeterProvider.Meter("github.com/weftobs/weft/extensions/weftstoreextension")
	evicted, err1 := m.Int64ObservableCounter("weft_store.evicted_records",
		metric.WithDescription("Spans or log records evicted from the store's bounded indexes (oldest first)."), metric.WithUnit("{record}"))
	stored, err2 := m.Int64ObservableGauge("weft_store.stored_records",
		metric.WithDescription("Spans or log records held in the store's indexes."), metric.WithUnit("{record}"))
	bytes, err3 := m.Int64ObservableGauge("weft_store.stored_bytes",
		metric.WithDescription("Bytes charged to the store's span or log index."), metric.WithUnit("By"))
	samples, err4 := m.Int64ObservableCounter("weft_store.appended_samples",
		metric.WithDescription("Metric samples appended to the TSDB."), metric.WithUnit("{sample}"))
	rejSamples, err5 := m.Int64ObservableCounter("weft_store.rejected_samples",
		metric.WithDescription("Metric samples not stored, by reason."), metric.WithUnit("{sample}"))
	rejExemplars, err6 := m.Int64ObservableCounter("weft_store.rejected_exemplars",
		metric.WithDescription("Exemplars not stored, by reason."), metric.WithUnit("{exemplar}"))
	lost, err7 := m.Int64ObservableCounter("weft_store.lost_bytes",
		metric.WithDescription("Bytes of the metrics WAL the start could not read (damaged checkpoint or segment), by reason."), metric.WithUnit("By"))
	pinnedRecs, err8 := m.Int64ObservableGauge("weft_store.pinned_records",
		metric.WithDescription("Spans or log records of pinned traces held in the pinned budget after the normal budget evicted them."), metric.WithUnit("{record}"))
	pinnedBytes, err9 := m.Int64ObservableGauge("weft_store.pinned_bytes",
		metric.WithDescription("Bytes charged to the pinned budget of the span or log index."), metric.WithUnit("By"))
	moved, err10 := m.Int64ObservableCounter("weft_store.moved_pinned_records",
		metric.WithDescription("Spans or log records the normal budget evicted while their trace was pinned, moved into the pinned budget."), metric.WithUnit("{record}"))
	evPinned, err11 := m.Int64ObservableCounter("weft_store.evicted_pinned_records",
		metric.WithDescription("Spans or log records evicted from the pinned budget, by reason (budget_full, expired); also counted in evicted_records."), metric.WithUnit("{record}"))
	late, err12 := m.Int64ObservableCounter("weft_store.pins_after_eviction",
		metric.WithDescription("Pins of traces whose spans or log records the store had already evicted (those records are lost), by signal."), metric.WithUnit("{pin}"))
	offHeap, err13 := m.Int64ObservableGauge("weft_store.offheap_bytes",
		metric.WithDescription("Bytes the span or log index holds outside the Go heap (its records' serialized bytes, in blocks from the operating system): in the process's RSS, in none of the Go runtime's memory metrics."), metric.WithUnit("By"))
	exStored, err14 := m.Int64ObservableGauge("weft_store.stored_exemplars",
		metric.WithDescription("Exemplars held in the exemplar storage (at most max_exemplars, the newest)."), metric.WithUnit("{exemplar}"))
	exWALFailed, err15 := m.Int64ObservableCounter("weft_store.exemplar_wal_failures",
		metric.WithDescription("Writes to the exemplar WAL that failed; their exemplars were kept in memory only and are lost at a restart."), metric.WithUnit("{write}"))
	for _, err := range []error{err1, err2, err3, err4, err5, err6, err7, err8, err9, err10, err11, err12, err13, err14, err15} {
		if err != nil {
			return err
		}
	}
	spansAttr := metric.WithAttributes(attribute.String("signal", "spans"))
	logsAttr := metric.WithAttributes(attribute.String("signal", "logs"))
	pinnedAttr := func(signal, reason string) metric.ObserveOption {
		return metric.WithAttributes(attribute.String("signal", signal), attribute.String("reason", reason))
	}
	spansFull, spansExpired := pinnedAttr("spans", index.PinnedBudgetFull), pinnedAttr("spans", index.PinnedExpired)
	logsFull, logsExpired := pinnedAttr("logs", index.PinnedBudgetFull), pinnedAttr("logs", index.PinnedExpired)
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := s.Stats()
		o.ObserveInt64(evicted, st.Spans.Evicted, spansAttr)
		o.ObserveInt64(evicted, st.Logs.Evicted, logsAttr)
		o.ObserveInt64(stored, st.Spans.Records, spansAttr)
		o.ObserveInt64(stored, st.Logs.Records, logsAttr)
		o.ObserveInt64(bytes, st.Spans.Bytes, spansAttr)
		o.ObserveInt64(bytes, st.Logs.Bytes, logsAttr)
		o.ObserveInt64(pinnedRecs, st.Spans.PinnedRecords, spansAttr)
		o.ObserveInt64(pinnedRecs, st.Logs.PinnedRecords, logsAttr)
		o.ObserveInt64(pinnedBytes, st.Spans.PinnedBytes, spansAttr)
		o.ObserveInt64(pinnedBytes, st.Logs.PinnedBytes, logsAttr)
		o.ObserveInt64(moved, st.Spans.Pinned, spansAttr)
		o.ObserveInt64(moved, st.Logs.Pinned, logsAttr)
		o.ObserveInt64(evPinned, st.Spans.EvictedPinnedFull, spansFull)
		o.ObserveInt64(evPinned, st.Spans.EvictedPinnedExpired, spansExpired)
		o.ObserveInt64(evPinned, st.Logs.EvictedPinnedFull, logsFull)
		o.ObserveInt64(evPinned, st.Logs.EvictedPinnedExpired, logsExpired)
		o.ObserveInt64(late, st.Spans.PinsAfterEviction, spansAttr)
		o.ObserveInt64(late, st.Logs.PinsAfterEviction, logsAttr)
		o.ObserveInt64(offHeap, st.Spans.OffHeapBytes, spansAttr)
		o.ObserveInt64(offHeap, st.Logs.OffHeapBytes, logsAttr)
		o.ObserveInt64(exStored, int64(st.Exemplars))
		o.ObserveInt64(exWALFailed, st.ExemplarWALFailures)
		o.ObserveInt64(samples, st.SamplesAppended)
		for r, n := range st.RejectedSamples {
			if r == translate.ReasonTooFarInFuture || r == translate.ReasonSeriesLimit {
				continue // by source below
			}
			o.ObserveInt64(rejSamples, n, metric.WithAttributes(attribute.String("reason", r)))
		}
		for r, bySource := range st.RejectedSamplesBySource {
			for src, n := range bySource {
				o.ObserveInt64(rejSamples, n, metric.WithAttributes(attribute.String("reason", r), attribute.String("source", src)))
			}
		}
		for r, n := range st.LostBytes {
			o.ObserveInt64(lost, n, metric.WithAttributes(attribute.String("reason", r)))
		}
		for r, n := range st.RejectedExemplars {
			o.ObserveInt64(rejExemplars, n, metric.WithAttributes(attribute.String("reason", r)))
		}
		return nil
	}, evicted, stored, bytes, samples, rejSamples, rejExemplars, lost, pinnedRecs, pinnedBytes, moved, evPinned, late, offHeap, exStored, exWALFailed)
	if err != nil {
		return err
	}
	s.telReg = reg
	return nil
}
