package weftstoreextension

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
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

// TestAppenderV2Exemplars: the exemplars of an AppendableV2 sample are
// stored after the commit; refusals come back as the head's appender gives
// them (a storage.AppendPartialError, duplicates left out); a rollback
// drops them.
func TestAppenderV2Exemplars(t *testing.T) {
	st := newTestStore(t, nil)
	ctx := context.Background()
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	l := heldLabels(1)

	app := st.AppendableV2().AppenderV2(ctx)
	first, second := heldExemplarOf(1, at), heldExemplarOf(2, at.Add(time.Millisecond))
	_, err := app.Append(0, l, 0, at.UnixMilli(), 1, nil, nil, storage.AOptions{Exemplars: []exemplar.Exemplar{first, second}})
	require.NoError(t, err)
	require.Empty(t, exemplarTraces(t, st, at, at.Add(time.Second)), "before the commit")
	require.NoError(t, app.Commit())
	require.Equal(t, map[string]bool{first.Labels.Get("trace_id"): true, second.Labels.Get("trace_id"): true},
		exemplarTraces(t, st, at, at.Add(time.Second)))

	app = st.AppendableV2().AppenderV2(ctx)
	older := heldExemplarOf(3, at.Add(-time.Second))
	long := heldExemplarOf(4, at.Add(time.Second))
	long.Labels = labels.FromStrings("trace_id", strings.Repeat("a", 32), "note", strings.Repeat("x", 120))
	_, err = app.Append(0, l, 0, at.Add(time.Second).UnixMilli(), 2, nil, nil, storage.AOptions{Exemplars: []exemplar.Exemplar{older, second, long}})
	var partial *storage.AppendPartialError
	require.ErrorAs(t, err, &partial)
	require.Len(t, partial.ExemplarErrors, 2, "the duplicate is not an error")
	require.ErrorIs(t, partial.ExemplarErrors[0], storage.ErrOutOfOrderExemplar)
	require.ErrorIs(t, partial.ExemplarErrors[1], storage.ErrExemplarLabelLength)

	later := heldExemplarOf(5, at.Add(2*time.Second))
	_, err = app.Append(0, l, 0, at.Add(2*time.Second).UnixMilli(), 3, nil, nil, storage.AOptions{Exemplars: []exemplar.Exemplar{later}})
	require.NoError(t, err)
	require.NoError(t, app.Rollback())
	require.Len(t, exemplarTraces(t, st, at, at.Add(time.Hour)), 2, "the rolled back exemplar is not stored")
}

// TestExemplarWALDamage: a damaged exemplar WAL does not stop the store:
// the exemplars before the damage come back, and the loss is reported with
// the metrics WAL's.
func TestExemplarWALDamage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	st := startStore(t, dir)
	ctx := context.Background()
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for round := range 2 {
		app := st.Appendable().Appender(ctx)
		for i := range exemplarsPerCommit {
			ref, err := app.Append(0, heldLabels(i), at.UnixMilli()+int64(round), 1)
			require.NoError(t, err)
			_, err = app.AppendExemplar(ref, heldLabels(i), heldExemplarOf(round*exemplarsPerCommit+i, at.Add(time.Duration(round)*time.Millisecond)))
			require.NoError(t, err)
		}
		require.NoError(t, app.Commit())
	}
	require.NoError(t, st.Shutdown(ctx))

	// Damage the second record: the last quarter of the first segment.
	seg := filepath.Join(dir, exemplarWALDir, "00000000")
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	b[len(b)*3/4] ^= 0xff
	require.NoError(t, os.WriteFile(seg, b, 0o600))

	st = startStore(t, dir)
	t.Cleanup(func() { _ = st.Shutdown(ctx) })
	require.Len(t, exemplarTraces(t, st, at, at.Add(time.Second)), exemplarsPerCommit, "the first record's")
	losses := st.OpenLosses()
	require.Len(t, losses, 1)
	require.Equal(t, "segment_corrupt", losses[0].Reason)
	require.Equal(t, filepath.Join(exemplarWALDir, "00000000"), losses[0].File)
	require.Positive(t, losses[0].Bytes)
	require.Equal(t, losses[0].Bytes, st.Stats().LostBytes["segment_corrupt"])
}

// TestUpgradeKeepsHeadWALExemplars: a store directory written by the TSDB
// with its own exemplar storage (as weft before its exemplar WAL) keeps its
// exemplars: the first start moves them from the head's WAL to the
// exemplar WAL, and later starts read them from there, once.
func TestUpgradeKeepsHeadWALExemplars(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	ctx := context.Background()
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	opts := tsdb.DefaultOptions()
	opts.EnableExemplarStorage = true
	opts.MaxExemplars = 1000
	db, err := tsdb.Open(dir, nil, nil, opts, nil)
	require.NoError(t, err)
	app := db.Appender(ctx)
	const n = 100
	for i := range n {
		ref, err := app.Append(0, heldLabels(i), at.UnixMilli(), 1)
		require.NoError(t, err)
		_, err = app.AppendExemplar(ref, heldLabels(i), heldExemplarOf(i, at))
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	require.NoError(t, db.Close())

	for range 2 {
		st := startStore(t, dir)
		got := exemplarTraces(t, st, at, at)
		require.Len(t, got, n)
		for i := range n {
			require.True(t, got[fmt.Sprintf("%032x", i+1)], "exemplar of series %d", i)
		}
		held, _ := st.exStore.Len()
		require.Equal(t, n, held, "each once")
		require.NoError(t, st.Shutdown(ctx))
	}
}
