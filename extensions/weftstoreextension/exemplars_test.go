package weftstoreextension

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// heldSeries is the number of series (one exemplar each) the tests write
// in one transaction: more than two blocks of exemplarsPerCommit.
const heldSeries = 2*exemplarsPerCommit + 500

func heldLabels(i int) labels.Labels {
	return labels.FromStrings(model.MetricNameLabel, "held_requests_total", "i", strconv.Itoa(i))
}

func heldExemplarOf(i int, at time.Time) exemplar.Exemplar {
	return exemplar.Exemplar{
		Labels: labels.FromStrings("trace_id", fmt.Sprintf("%032x", i+1), "span_id", fmt.Sprintf("%016x", i+1)),
		Value:  float64(i), Ts: at.UnixMilli(), HasTs: true,
	}
}

// exemplarTraces returns the trace IDs of the exemplars of
// held_requests_total the store holds.
func exemplarTraces(t *testing.T, st *Store, from, to time.Time) map[string]bool {
	t.Helper()
	eq, err := st.ExemplarQueryable().ExemplarQuerier(context.Background())
	require.NoError(t, err)
	m := labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, "held_requests_total")
	res, err := eq.Select(from.UnixMilli(), to.UnixMilli(), []*labels.Matcher{m})
	require.NoError(t, err)
	got := map[string]bool{}
	for _, r := range res {
		for _, e := range r.Exemplars {
			got[e.Labels.Get("trace_id")] = true
		}
	}
	return got
}

// TestHeldExemplars: the exemplars of a transaction wait for its samples'
// commit, then all reach the TSDB, new series or not, in blocks whose
// memory the store keeps; a rollback drops them; after a restart the WAL
// gives every one back (each follows its series' record).
func TestHeldExemplars(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	st := startStore(t, dir)
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	ctx := context.Background()

	app := st.Appendable().Appender(ctx)
	for i := range heldSeries {
		ref, err := app.Append(0, heldLabels(i), at.UnixMilli(), 1)
		require.NoError(t, err)
		got, err := app.AppendExemplar(ref, heldLabels(i), heldExemplarOf(i, at))
		require.NoError(t, err)
		require.Equal(t, ref, got)
	}
	require.Empty(t, exemplarTraces(t, st, at, at), "before the commit")
	require.NoError(t, app.Commit())
	require.Len(t, exemplarTraces(t, st, at, at), heldSeries)
	require.Len(t, st.exemplars.free, 3, "the blocks are kept for the next transaction")

	// A rolled back transaction's exemplars go nowhere; its blocks are kept.
	later := at.Add(time.Second)
	app = st.Appendable().Appender(ctx)
	for i := range heldSeries {
		_, err := app.Append(0, heldLabels(i), later.UnixMilli(), 2)
		require.NoError(t, err)
		// No ref: the series is found by its labels.
		_, err = app.AppendExemplar(0, heldLabels(i), heldExemplarOf(heldSeries+i, later))
		require.NoError(t, err)
	}
	require.NoError(t, app.Rollback())
	require.Empty(t, exemplarTraces(t, st, later, later))
	require.Len(t, st.exemplars.free, 3)

	// An exemplar of a series nobody appended is refused at once.
	app = st.Appendable().Appender(ctx)
	_, err := app.AppendExemplar(0, labels.FromStrings(model.MetricNameLabel, "nobody"), heldExemplarOf(0, at))
	require.ErrorContains(t, err, `exemplar for unknown series {__name__="nobody"}`)
	require.NoError(t, app.Rollback())

	require.NoError(t, st.Shutdown(ctx))
	st = startStore(t, dir)
	t.Cleanup(func() { _ = st.Shutdown(ctx) })
	got := exemplarTraces(t, st, at, at)
	require.Len(t, got, heldSeries, "after the WAL's replay")
	for i := range heldSeries {
		require.True(t, got[fmt.Sprintf("%032x", i+1)], "exemplar of series %d", i)
	}
}
