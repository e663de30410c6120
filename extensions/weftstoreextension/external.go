package weftstoreextension

import (
	"math"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// ExternalLabels returns external_labels, sorted by name (empty when none
// are configured). The store never adds them to its own series: readers
// that serve the node's data beyond the node add them, as a Prometheus
// sidecar or remote write does.
func (s *Store) ExternalLabels() labels.Labels { return s.extLset }

// ChunkQueryable returns the TSDB as a storage.ChunkQueryable: series with
// their chunks in the encoding they are stored in (the StoreAPI streams
// them as they are). It may be taken before Start; its queriers fail while
// the store is not open.
func (s *Store) ChunkQueryable() storage.ChunkQueryable { return queryable{s} }

func (q queryable) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	q.s.mu.RLock()
	defer q.s.mu.RUnlock()
	if q.s.db == nil {
		return nil, errNotStarted
	}
	return q.s.db.ChunkQuerier(mint, maxt)
}

// TimeRange returns the time range of the TSDB's samples in milliseconds:
// from the head's min time (its oldest sample, or the retention cut once
// the head has been truncated, so never later than the oldest sample) or
// an older block's (the store writes none, but a directory may hold some)
// to the newest sample. A store
// without samples returns math.MaxInt64, math.MinInt64 (an empty range:
// mint > maxt), as the TSDB head does.
func (s *Store) TimeRange() (mint, maxt int64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return 0, 0, errNotStarted
	}
	mint, maxt = int64(math.MaxInt64), int64(math.MinInt64)
	if h := s.db.Head(); h.NumSeries() > 0 && h.MinTime() <= h.MaxTime() {
		mint, maxt = h.MinTime(), h.MaxTime()
	}
	for _, b := range s.db.Blocks() {
		m := b.Meta()
		mint = min(mint, m.MinTime)
		// A block's MaxTime is exclusive.
		maxt = max(maxt, m.MaxTime-1)
	}
	return mint, maxt, nil
}
