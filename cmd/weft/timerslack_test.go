package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTimerSlackFromEnvironment(t *testing.T) {
	env := func(v string) func(string) (string, bool) {
		return func(k string) (string, bool) { return v, k == timerSlackEnv }
	}
	unset := func(string) (string, bool) { return "", false }

	d, err := timerSlack(unset)
	require.NoError(t, err)
	require.Equal(t, defaultTimerSlack, d)
	for v, want := range map[string]time.Duration{"0": 0, "250us": 250 * time.Microsecond, "100ms": maxTimerSlack} {
		d, err := timerSlack(env(v))
		require.NoError(t, err, v)
		require.Equal(t, want, d, v)
	}
	for v, msg := range map[string]string{
		"":      `WEFT_TIMER_SLACK: not a duration (like 1ms, or 0 to keep the slack weft was started with): ""`,
		"1000":  `WEFT_TIMER_SLACK: not a duration (like 1ms, or 0 to keep the slack weft was started with): "1000"`,
		"-1ms":  "WEFT_TIMER_SLACK: must be between 0 and 100ms, got -1ms",
		"101ms": "WEFT_TIMER_SLACK: must be between 0 and 100ms, got 101ms",
	} {
		_, err := timerSlack(env(v))
		require.EqualError(t, err, msg, v)
	}
}
