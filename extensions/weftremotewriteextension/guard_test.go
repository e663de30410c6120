package weftremotewriteextension

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFutureSamplesRefused: a sample or histogram stamped more than
// max_future_skew ahead is refused as out of bounds (the writer counts it
// and goes on), through both appender interfaces; the rest of the
// transaction arrives, and the progress mark never jumps ahead.
func TestFutureSamplesRefused(t *testing.T) {
	sk, url := newSink(t)
	cfg := testConfig(t.TempDir(), url)
	cfg.MaxFutureSkew = time.Minute
	cfg.Endpoints[0].SendNativeHistograms = true
	rw := startRW(t, cfg, 0)
	waitLive(t, rw)

	now := time.Now()
	ok, ahead := now.Add(30*time.Second).UnixMilli(), now.Add(2*time.Minute).UnixMilli()
	ls := labels.FromStrings("__name__", "guarded")
	app := rw.Appendable().Appender(context.Background())
	_, err := app.Append(0, ls, ok, 1)
	require.NoError(t, err)
	_, err = app.Append(0, ls, ahead, 2)
	require.ErrorIs(t, err, ErrTooFarInFuture)
	require.ErrorIs(t, err, storage.ErrOutOfBounds, "writers count it as out of bounds")
	_, err = app.AppendHistogram(0, labels.FromStrings("__name__", "guarded_hist"), ahead, tsdbutil.GenerateTestHistogram(1), nil)
	require.ErrorIs(t, err, ErrTooFarInFuture)
	require.NoError(t, app.Commit())

	app2 := rw.AppendableV2().AppenderV2(context.Background())
	_, err = app2.Append(0, ls, 0, ahead, 3, nil, nil, storage.AOptions{})
	require.True(t, errors.Is(err, ErrTooFarInFuture), "V2: %v", err)
	require.NoError(t, app2.Commit())

	assert.Equal(t, int64(3), rw.tooFar.Load())
	k := seriesKey(prompb.FromLabels(ls, nil))
	require.Eventually(t, func() bool { return len(sk.got(k)) == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, []prompb.Sample{{Value: 1, Timestamp: ok}}, sk.got(k))
	assert.Less(t, rw.prog.Mark("ep"), ahead)
}

// TestLateCommitsCounted: a commit counts as late when any sample it
// holds, a start-time zero included, is stamped at or before the latest
// switch; an on-time commit does not count, and a reused guard starts
// afresh after its commit.
func TestLateCommitsCounted(t *testing.T) {
	_, url := newSink(t)
	rw := startRW(t, testConfig(t.TempDir(), url), 0)
	waitLive(t, rw)
	until := rw.late.until.Load()
	require.Greater(t, until, int64(0), "the switch raised until")
	ls := labels.FromStrings("__name__", "m")
	n := rw.late.n.Load()

	app := rw.Appendable().Appender(context.Background())
	_, err := app.Append(0, ls, until+1000, 1)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	assert.Equal(t, n, rw.late.n.Load(), "on time")

	app = rw.Appendable().Appender(context.Background())
	_, err = app.AppendSTZeroSample(0, labels.FromStrings("__name__", "z"), until+2000, until-1000)
	require.NoError(t, err)
	_, err = app.Append(0, labels.FromStrings("__name__", "z"), until+2000, 1)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	assert.Equal(t, n+1, rw.late.n.Load(), "a start-time zero before the switch")

	g := &futureGuard{Appender: nopAppender{}, maxt: math.MaxInt64, mint: math.MaxInt64, late: rw.late}
	_, _ = g.Append(0, ls, until, 1)
	require.NoError(t, g.Commit())
	_, _ = g.Append(0, ls, until+1, 1)
	require.NoError(t, g.Commit())
	assert.Equal(t, n+2, rw.late.n.Load(), "the second commit of a reused guard is on time")
}

type nopAppender struct{ storage.Appender }

func (nopAppender) Append(storage.SeriesRef, labels.Labels, int64, float64) (storage.SeriesRef, error) {
	return 0, nil
}
func (nopAppender) Commit() error { return nil }
