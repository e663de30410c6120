package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// A point is written as a short array, rounded to the sampler's
// resolution, and read back from that and from the older object form.
func TestPointJSON(t *testing.T) {
	p := point{T: 0.250756339, CPU: 0.04000000000000001, RSSMiB: 100, AnonMiB: 9.96484375}
	b, err := json.Marshal([]point{p, {}})
	require.NoError(t, err)
	require.Equal(t, `[[0.251,0.04,100,9.96],[0,0,0,0]]`, string(b))

	var got []point
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, []point{{T: 0.251, CPU: 0.04, RSSMiB: 100, AnonMiB: 9.96}, {}}, got)

	old := `[{"t_s":0.5,"cpu_s":1.25,"rss_mib":48.66796875,"rss_anon_mib":7.84375}]`
	require.NoError(t, json.Unmarshal([]byte(old), &got))
	require.Equal(t, []point{{T: 0.5, CPU: 1.25, RSSMiB: 48.66796875, AnonMiB: 7.84375}}, got)

	require.ErrorContains(t, json.Unmarshal([]byte(`[[1,2]]`), &got), "want [t_s, cpu_s, rss_mib, rss_anon_mib]")
}
