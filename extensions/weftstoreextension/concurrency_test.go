package weftstoreextension

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
)

// TestConcurrentUse appends all signals from several goroutines while
// others query, and the retention runs; run with -race.
func TestConcurrentUse(t *testing.T) {
	st := newTestStore(t, func(c *Config) { c.TracesMaxBytes, c.LogsMaxBytes = 1<<20, 1<<20 })
	ctx := context.Background()
	start := time.Now().Add(-time.Minute)
	const writers, rounds = 3, 20
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				_, td, ld, md := simtest.Simulate(simtest.NewRand(uint64(100*w+i)), 50, start.Add(time.Duration(w*rounds+i)*time.Second))
				errs <- st.AppendTraces(ctx, td)
				errs <- st.AppendLogs(ctx, ld)
				errs <- st.AppendMetrics(ctx, md)
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range rounds {
				for _, f := range st.FailingTraces(TraceSelector{Limit: 5}) {
					_, err := st.Correlate(ctx, f.TraceID)
					errs <- err
				}
				_, err := st.FindTraces(SpanQuery{Tags: map[string]string{"error": "true"}, Limit: 5})
				errs <- err
				_, err = st.SearchLogs(LogQuery{Namespace: "bookinfo", Limit: 5})
				errs <- err
				_ = st.Services()
				_ = st.Stats()
				q, err := st.Queryable().Querier(0, time.Now().UnixMilli())
				errs <- err
				if err == nil {
					errs <- q.Close()
				}
				errs <- st.retain(time.Now())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	s := st.Stats()
	assert.Equal(t, int64(writers*rounds*100), s.Spans.Records+s.Spans.Evicted)
	assert.Equal(t, int64(writers*rounds*100), s.Logs.Records+s.Logs.Evicted)
	assert.LessOrEqual(t, s.Spans.Bytes, int64(1<<20))
}
