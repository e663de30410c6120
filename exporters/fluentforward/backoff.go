package fluentforward

import (
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/config/configretry"
)

// backoff yields retry_on_failure's exponential, randomized delays.
type backoff struct {
	cfg  configretry.BackOffConfig
	next time.Duration
}

func newBackoff(cfg configretry.BackOffConfig) *backoff {
	return &backoff{cfg: cfg, next: cfg.InitialInterval}
}

// nextDelay returns the delay before the next attempt: the current interval,
// randomized by ±randomization_factor, then grows the interval by
// multiplier up to max_interval.
func (b *backoff) nextDelay() time.Duration {
	d := b.next
	if f := b.cfg.RandomizationFactor; f > 0 {
		delta := f * float64(d)
		d = time.Duration(float64(d) - delta + rand.Float64()*2*delta)
	}
	grown := time.Duration(float64(b.next) * b.cfg.Multiplier)
	if grown > b.cfg.MaxInterval || grown <= 0 {
		grown = b.cfg.MaxInterval
	}
	b.next = grown
	return max(d, 0)
}
