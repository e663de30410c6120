// Package backoff is weft's one retry wait: a jittered exponential
// backoff for the loops that retry on their own (Kubernetes list/watch,
// a receiver waiting on a refusing pipeline). Exporters retry through
// exporterhelper's retry_on_failure instead.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Default bounds of a zero Backoff.
const (
	defaultMin = 500 * time.Millisecond
	defaultMax = 30 * time.Second
)

// Backoff is a jittered exponential backoff: the n-th wait since the last
// Reset is drawn uniformly from [d/2, d], where d is Min doubled n-1 times
// and capped at Max. The jitter spreads the retries of many agents that
// failed together (an API server restart). The zero value waits from
// 0.5 s up to 30 s. It is not safe for concurrent use.
type Backoff struct {
	// Min is the first wait's upper bound (0: 0.5 s).
	Min time.Duration
	// Max caps the upper bound (0: 30 s; less than Min: Min).
	Max time.Duration

	// cur is the next wait's upper bound (0: Min).
	cur time.Duration
}

// Next returns the next wait and doubles the bound for the one after.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = defaultMin
	}
	if hi <= 0 {
		hi = defaultMax
	}
	hi = max(hi, lo)
	d := b.cur
	if d <= 0 {
		d = lo
	}
	d = min(d, hi)
	b.cur = min(2*d, hi)
	return d/2 + rand.N(d/2+1)
}

// Reset makes the next wait the shortest again (after a success).
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d, or until ctx is done (false).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
