package weftstoreextension

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
)

// TestAppendableWindow: a new series may start behind the newest sample of
// the store by less than appendable_window, not by more.
func TestAppendableWindow(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	tests := []struct {
		name   string
		window time.Duration
		behind time.Duration
		ok     bool
	}{
		{"default window, 50m behind", time.Hour, 50 * time.Minute, true},
		{"default window, 70m behind", time.Hour, 70 * time.Minute, false},
		{"3h window, 70m behind", 3 * time.Hour, 70 * time.Minute, true},
		{"3h window, 170m behind", 3 * time.Hour, 170 * time.Minute, true},
		{"3h window, 190m behind", 3 * time.Hour, 190 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newTestStore(t, func(c *Config) {
				c.AppendableWindow = tt.window
				c.MetricsRetention = 24 * time.Hour
			})
			app := st.AppendableV2().AppenderV2(context.Background())
			_, err := app.Append(0, labels.FromStrings("__name__", "newest"), 0, now.UnixMilli(), 1, nil, nil, storage.AOptions{})
			require.NoError(t, err)
			require.NoError(t, app.Commit())

			app = st.AppendableV2().AppenderV2(context.Background())
			_, err = app.Append(0, labels.FromStrings("__name__", "late"), 0, now.Add(-tt.behind).UnixMilli(), 2, nil, nil, storage.AOptions{})
			if !tt.ok {
				require.ErrorIs(t, err, storage.ErrOutOfBounds)
				require.NoError(t, app.Rollback())
				return
			}
			require.NoError(t, err)
			require.NoError(t, app.Commit())
			v := instant(t, st.Queryable(), "late", now.Add(-tt.behind))
			require.Len(t, v, 1)
			require.Equal(t, 2.0, v[0].F)
		})
	}
}

// TestStartTimestamps: with start_timestamps on, the start timestamp given
// to AppenderV2 comes back from the querier with its sample, also after a
// WAL replay; off, it is not kept.
func TestStartTimestamps(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(map[bool]string{true: "on", false: "off"}[on], func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			mod := func(c *Config) { c.StartTimestamps, c.Directory = on, dir }
			st := newTestStore(t, mod)
			base := time.Now().Add(-5 * time.Minute).Truncate(time.Millisecond).UnixMilli()
			ls := labels.FromStrings("__name__", "requests_total")
			app := st.AppendableV2().AppenderV2(context.Background())
			// A counter that restarts between the 2nd and 3rd sample: the
			// third sample's start time is after the second sample.
			samples := []struct{ st, t int64 }{
				{base - 1000, base}, {base - 1000, base + 15_000}, {base + 20_000, base + 30_000},
			}
			for i, s := range samples {
				_, err := app.Append(0, ls, s.st, s.t, float64(i+1), nil, nil, storage.AOptions{})
				require.NoError(t, err)
			}
			require.NoError(t, app.Commit())

			want := []int64{0, 0, 0}
			if on {
				want = []int64{samples[0].st, samples[1].st, samples[2].st}
			}
			require.Equal(t, want, startTimestamps(t, st, "requests_total"))

			require.NoError(t, st.Shutdown(context.Background()))
			reopened := newTestStore(t, mod)
			require.Equal(t, want, startTimestamps(t, reopened, "requests_total"), "after the WAL replay")
		})
	}
}

// startTimestamps returns the start timestamps of the float samples of the
// one series called name.
func startTimestamps(t *testing.T, st *Store, name string) []int64 {
	t.Helper()
	q, err := st.Queryable().Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	defer q.Close()
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", name))
	require.True(t, ss.Next())
	it := ss.At().Iterator(nil)
	var got []int64
	for it.Next() == chunkenc.ValFloat {
		got = append(got, it.AtST())
	}
	require.NoError(t, it.Err())
	require.False(t, ss.Next())
	require.NoError(t, ss.Err())
	return got
}

// TestAppendableV2BeforeStart: the AppenderV2 of a store that is not open
// refuses every call.
func TestAppendableV2BeforeStart(t *testing.T) {
	st, err := newStore(componenttest.NewNopTelemetrySettings(), createDefaultConfig().(*Config))
	require.NoError(t, err)
	app := st.AppendableV2().AppenderV2(context.Background())
	_, err = app.Append(0, labels.FromStrings("__name__", "x"), 0, 1, 1, nil, nil, storage.AOptions{})
	require.ErrorIs(t, err, errNotStarted)
	require.ErrorIs(t, app.Commit(), errNotStarted)
	require.NoError(t, app.Rollback())
	require.NoError(t, st.Shutdown(context.Background()))
}
