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
