package backoff

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBackoffBounds: every wait is within [d/2, d], d doubling from Min
// and capped at Max; Reset starts over; the zero value has the defaults.
func TestBackoffBounds(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for range 100 {
		b.Reset()
		for _, d := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
			d *= time.Millisecond
			got := b.Next()
			require.GreaterOrEqual(t, got, d/2)
			require.LessOrEqual(t, got, d)
		}
	}
	// The waits are spread, not all equal.
	seen := map[time.Duration]bool{}
	for range 20 {
		b.Reset()
		seen[b.Next()] = true
	}
	assert.Greater(t, len(seen), 1)

	var zero Backoff
	for range 20 {
		zero.Next()
	}
	got := zero.Next()
	assert.GreaterOrEqual(t, got, defaultMax/2)
	assert.LessOrEqual(t, got, defaultMax)
	zero.Reset()
	assert.LessOrEqual(t, zero.Next(), defaultMin)

	inverted := Backoff{Min: time.Second, Max: time.Millisecond}
	assert.LessOrEqual(t, inverted.Next(), time.Second, "a Max below Min is Min")
}
