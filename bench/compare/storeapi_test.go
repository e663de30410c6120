package main

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// count by (node) in the query phase expects upstreamCounters(n) series
// per agent: the number of upstream counters in envoyPayload(n).
func TestStoreAPIUpstreamCounters(t *testing.T) {
	for _, n := range []int{100, 2000, 5000, 50000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			var b bytes.Buffer
			envoyPayload(&b, n, 3)
			upstream := 0
			for line := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
				if strings.HasPrefix(line, "envoy_cluster_upstream_rq_total{") {
					upstream++
				}
			}
			assert.Equal(t, upstreamCounters(n), upstream)
		})
	}
}

// The envoy target records when each scrape arrived, in order.
func TestStoreAPITargetServedAt(t *testing.T) {
	tgt, err := startEnvoyTarget(100)
	require.NoError(t, err)
	defer tgt.close()
	_, ok := tgt.servedAt(1)
	assert.False(t, ok)
	for range 2 {
		resp, err := http.Get("http://" + tgt.Addr + "/stats/prometheus")
		require.NoError(t, err)
		resp.Body.Close()
	}
	t1, ok1 := tgt.servedAt(1)
	t2, ok2 := tgt.servedAt(2)
	require.True(t, ok1)
	require.True(t, ok2)
	assert.False(t, t2.Before(t1))
	assert.Equal(t, int64(2), tgt.served.Load())
}

func TestStoreAPIPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	assert.Equal(t, 5.0, percentile(xs, 50))
	assert.Equal(t, 10.0, percentile(xs, 99))
	assert.Equal(t, 1.0, percentile(xs, 1))
	assert.Equal(t, 0.0, percentile(nil, 50))
	assert.Equal(t, 5.5, median(xs))
}

func TestStoreAPIFlags(t *testing.T) {
	o, err := parseStoreFlags([]string{"-series", "2000", "-agents", "1,3"})
	require.NoError(t, err)
	assert.Equal(t, 200, o.AgentSeries)
	assert.Equal(t, []int{1, 3}, o.Agents)
	_, err = parseStoreFlags([]string{"-agents", "0", "-phases", "x", "-only", "y"})
	require.Error(t, err)
	for _, key := range []string{"-agents", "-phases", "-only"} {
		assert.Contains(t, err.Error(), key)
	}
}

// TestSmoke runs the smallest configuration end to end: it builds weft
// from the repository, starts weft, Prometheus 2.42 + thanos sidecar, then
// 3 weft agents under Thanos Query, and checks sent = received (not
// timing). Needs Prometheus 2.42 and a Thanos v0.42.4 built with
// -tags slicelabels ($WEFT_THANOS). Skipped with -short.
func TestStoreAPISmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes; run without -short")
	}
	o, err := parseStoreFlags([]string{"-series", "2000", "-scrapes", "3", "-interval", "1s", "-rounds", "2",
		"-agents", "1,3", "-reps", "3", "-query-over", "weft", "-out", "", "-workdir", t.TempDir()})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	rep, err := runStoreAPI(ctx, o)
	require.NoError(t, err)
	md := rep.markdown()
	t.Log(md)

	s := rep.Stream
	require.NotNil(t, s)
	assert.True(t, s.Verified, "stream not verified: %v", s.Problems)
	for _, side := range []string{sideWeft, sideSidecar} {
		chk := s.Sides[side]
		require.NotNil(t, chk, side)
		for _, ct := range []*content{chk.Before, chk.After} {
			require.NotNil(t, ct, side)
			assert.EqualValues(t, 2000, ct.PayloadSeries, side)
			assert.EqualValues(t, 2000*3, ct.PayloadSamples, side)
			assert.Zero(t, ct.Duplicates, side)
			assert.Empty(t, ct.BadChunks, side)
		}
	}
	assert.Len(t, s.Runs, 2*2*len(o.Batches), "2 rounds × 2 sides per batch size")
	for _, r := range s.Runs {
		assert.Empty(t, r.Err, "run %d %s", r.Order, r.Side)
		assert.Equal(t, s.Sides[r.Side].Before.Series, r.Series, "run %d %s", r.Order, r.Side)
		assert.Positive(t, r.Bytes)
		assert.Positive(t, r.PeakRSS)
	}

	require.Len(t, rep.Latency, 1)
	l := rep.Latency[0]
	assert.True(t, l.Verified, "query not verified: %v", l.Problems)
	assert.Len(t, l.Rows, 2*len(latencyQueries))
	for _, r := range l.Rows {
		assert.Len(t, r.Millis, 3, "%d agents %s", r.Agents, r.Query)
		assert.Positive(t, r.Results, "%d agents %s", r.Agents, r.Query)
	}
	assert.Contains(t, md, "weft / sidecar")
}
