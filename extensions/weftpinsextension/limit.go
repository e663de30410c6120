package weftpinsextension

import (
	"math"
	"sync"
	"time"
)

// limiter is a token bucket per origin node: rate pins a second, up to
// burst saved.
type limiter struct {
	rate, burst float64
	mu          sync.Mutex
	buckets     map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate, burst float64) *limiter {
	return &limiter{rate: rate, burst: burst, buckets: make(map[string]*bucket)}
}

// overflowOrigin shares one bucket among origins beyond maxOrigins.
const overflowOrigin = "\x00other"

func (l *limiter) allow(origin string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[origin]
	if !ok {
		if len(l.buckets) >= maxOrigins {
			origin = overflowOrigin
			b = l.buckets[origin]
		}
		if b == nil {
			b = &bucket{tokens: l.burst, last: now}
			l.buckets[origin] = b
		}
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(l.burst, b.tokens+dt*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
