package weftstoreextension

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/weftobs/weft/internal/promappend"
)

func TestExternalLabelsAndTimeRange(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.ExternalLabels = map[string]string{"node": "n1", "cluster": "c1"}
	st, err := newStore(componenttest.NewNopTelemetrySettings(), cfg)
	require.NoError(t, err)
	require.Equal(t, labels.FromStrings("cluster", "c1", "node", "n1"), st.ExternalLabels())

	// Not started: the range and the queriers say so.
	_, _, err = st.TimeRange()
	require.ErrorIs(t, err, errNotStarted)
	_, err = st.ChunkQueryable().ChunkQuerier(0, 1)
	require.ErrorIs(t, err, errNotStarted)

	require.NoError(t, st.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, st.Shutdown(context.Background())) })
	mint, maxt, err := st.TimeRange()
	require.NoError(t, err)
	require.Equal(t, int64(math.MaxInt64), mint)
	require.Equal(t, int64(math.MinInt64), maxt)

	// A writer may split a scrape of many new series as configured.
	require.Equal(t, st.cfg.NewSeriesPerCommit, promappend.NewSeriesPerCommit(st.Appendable()))
	now := time.Now().UnixMilli()
	app := st.Appendable().Appender(t.Context())
	ls := labels.FromStrings("__name__", "up", "job", "a")
	for _, ts := range []int64{now - 60_000, now - 30_000} {
		_, err := app.Append(0, ls, ts, 1)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	mint, maxt, err = st.TimeRange()
	require.NoError(t, err)
	require.LessOrEqual(t, mint, now-60_000)
	require.Equal(t, now-30_000, maxt)

	// The store keeps series as written: no external labels inside.
	q, err := st.ChunkQueryable().ChunkQuerier(mint, maxt)
	require.NoError(t, err)
	defer q.Close()
	set := q.Select(t.Context(), true, nil, labels.MustNewMatcher(labels.MatchEqual, "job", "a"))
	require.True(t, set.Next())
	require.Equal(t, ls, set.At().Labels())
	require.False(t, set.Next())
}
