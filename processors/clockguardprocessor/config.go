package clockguardprocessor

import (
	"fmt"
	"time"
)

// maxFutureSkewLimit is the largest allowed max_future_skew, the same as
// weft_store's: a sample that far ahead blocks its own series (out of
// order) until the clock catches up.
const maxFutureSkewLimit = 24 * time.Hour

// Config is the clock_guard processor's configuration.
type Config struct {
	// MaxFutureSkew is how far ahead of the node's clock a data point (or
	// exemplar) may be stamped; later ones are dropped and counted as
	// too_far_in_future by source (default 10m, as weft_store).
	MaxFutureSkew time.Duration `mapstructure:"max_future_skew"`
}

// Validate checks the configuration and names the offending key.
func (c *Config) Validate() error {
	if c.MaxFutureSkew < time.Second || c.MaxFutureSkew > maxFutureSkewLimit {
		return fmt.Errorf("max_future_skew: must be between 1s and %s, got %s", maxFutureSkewLimit, c.MaxFutureSkew)
	}
	return nil
}
