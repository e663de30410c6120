package weftstoreextension

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
)

func TestCorrelate(t *testing.T) {
	st := newTestStore(t, nil)
	ctx := context.Background()
	start := time.Now().Add(-2 * time.Minute)
	reqs, td, ld, md := simtest.Simulate(simtest.NewRand(5), 300, start)
	require.NoError(t, st.AppendTraces(ctx, td))
	require.NoError(t, st.AppendLogs(ctx, ld))
	require.NoError(t, st.AppendMetrics(ctx, md))
	for _, r := range reqs {
		c, err := st.Correlate(ctx, r.TraceID)
		require.NoError(t, err)
		require.Len(t, c.Spans, 2, r.TraceID.String())
		pods := map[Pod]bool{}
		for _, sp := range c.Spans {
			pods[sp.Pod] = true
		}
		assert.Equal(t, map[Pod]bool{key(r.Client): true, key(r.Server): true}, pods)
		require.Len(t, c.Logs, r.LogsWritten)
		for _, l := range c.Logs {
			assert.Equal(t, key(r.Server), l.Pod)
			assert.False(t, l.Time.IsZero())
		}
		assert.False(t, c.Logs[1].Time.Before(c.Logs[0].Time), "logs oldest first")
		require.Len(t, c.Exemplars, 2, "counter and histogram exemplar")
		for _, ex := range c.Exemplars {
			assert.Equal(t, key(r.Server), ex.Pod)
			assert.Equal(t, r.ServerSpan, ex.SpanID)
			assert.Equal(t, r.Scraped.UnixMilli(), ex.Time.UnixMilli())
		}
	}
	// An unknown trace: nothing, no error.
	c, err := st.Correlate(ctx, pcommon.TraceID{1})
	require.NoError(t, err)
	assert.Empty(t, c.Spans)
	assert.Empty(t, c.Logs)
	assert.Empty(t, c.Exemplars)
}
