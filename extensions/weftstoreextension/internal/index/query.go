package index

import (
	"cmp"
	"slices"
	"time"
)

// candidate is an entry that passed the cheap filters of a query (in the
// ring or in the pinned budget), with the time it is ordered by.
type candidate[V any] struct {
	t   int64
	seq uint64
	v   V
}

// sortNewestFirst orders candidates by time, newest first; ties by arrival,
// latest first.
func sortNewestFirst[V any](cs []candidate[V]) {
	slices.SortFunc(cs, func(a, b candidate[V]) int {
		if a.t != b.t {
			return cmp.Compare(b.t, a.t)
		}
		return cmp.Compare(b.seq, a.seq)
	})
}

func inWindow(ns int64, start, end time.Time) bool {
	if !start.IsZero() && ns < start.UnixNano() {
		return false
	}
	if !end.IsZero() && ns > end.UnixNano() {
		return false
	}
	return true
}

// limitOr returns limit, or def when limit is not positive.
func limitOr(limit, def int) int {
	if limit <= 0 {
		return def
	}
	return limit
}
