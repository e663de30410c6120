package main

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSetGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	none := func(string) (string, bool) { return "", false }
	require.True(t, setGCPercent(none))
	require.Equal(t, defaultGCPercent, debug.SetGCPercent(100), "GOGC unset: weft's default")

	set := func(k string) (string, bool) { return "200", k == "GOGC" }
	require.False(t, setGCPercent(set))
	require.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: left to the runtime")
}
