// Package promappend finds the extensions that take Prometheus samples
// directly (weft_store, weft_remote_write): a component that writes series
// through storage.Appender, such as pod_scrape's native path, names them by
// component ID and looks them up on the host at Start.
package promappend

import (
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/component"
)

// Provider is an extension that accepts Prometheus samples: one
// storage.Appender per transaction.
type Provider interface {
	Appendable() storage.Appendable
}

// Splittable is an Appendable whose transactions need not be atomic: a
// writer that appends many new series at once (a target's first scrape)
// may commit them in several transactions of at most NewSeriesPerCommit
// new series each. A commit encodes its new series into one WAL record,
// built in one growing buffer and read back whole by the WAL's readers:
// 50,000 new series in one commit make a ~10 MB record. weft_remote_write
// is splittable (its WAL only feeds the queues); weft_store as configured
// (new_series_per_commit: a query may see such a scrape's new series in
// parts between its commits).
type Splittable interface {
	NewSeriesPerCommit() int
}

// SampleSplittable is a Splittable whose writers may commit a large
// transaction's samples in parts too, of at most SamplesPerCommit each:
// nothing reads it that needs a scrape whole (weft_remote_write: its WAL
// feeds queues that send by sample). Smaller commits keep the appender's
// per-transaction buffers and WAL records small.
type SampleSplittable interface {
	SamplesPerCommit() int
}

// SamplesPerCommit returns how many samples a transaction of a may hold
// before the writer commits it and opens another: 0 when a's transactions
// must not be split by samples.
func SamplesPerCommit(a storage.Appendable) int {
	if s, ok := a.(SampleSplittable); ok {
		return max(s.SamplesPerCommit(), 0)
	}
	return 0
}

// NewSeriesPerCommit returns how many new series a transaction of a may
// hold before the writer commits it and opens another: 0 when a's
// transactions must not be split.
func NewSeriesPerCommit(a storage.Appendable) int {
	if s, ok := a.(Splittable); ok {
		return max(s.NewSeriesPerCommit(), 0)
	}
	return 0
}

// FromHost returns the Appendable of the extension id on host. The error
// names the extension and says what is wrong: not configured, or an
// extension of a type that takes no samples.
func FromHost(host component.Host, id component.ID) (storage.Appendable, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("extension %s is not configured; add it under extensions: and service.extensions", id)
	}
	p, ok := ext.(Provider)
	if !ok {
		return nil, fmt.Errorf("extension %s does not accept samples (a %T; weft_store and weft_remote_write do)", id, ext)
	}
	a := p.Appendable()
	if a == nil {
		return nil, fmt.Errorf("extension %s does not accept samples (it has no appendable)", id)
	}
	return a, nil
}

// AllFromHost returns the Appendables of ids, in order. An error names the
// entry of key ("appendables[1]: extension ... is not configured"); every
// bad entry is reported.
func AllFromHost(host component.Host, key string, ids []component.ID) ([]storage.Appendable, error) {
	out := make([]storage.Appendable, 0, len(ids))
	var errs []error
	for i, id := range ids {
		a, err := FromHost(host, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", key, i, err))
			continue
		}
		out = append(out, a)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
