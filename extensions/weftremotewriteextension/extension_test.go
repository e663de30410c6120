package weftremotewriteextension

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
)

// batch describes samples to append: series s of metric, sample j at
// base + j*step ms with value s*1000 + j. Series 0 gets a staleness marker
// after its last sample when stale is set; every sample of series with
// s%3 == 0 carries an exemplar with trace_id t<s>-<j>.
type batch struct {
	metric          string
	series, samples int
	base, step      int64
	stale           bool
	extra           labels.Labels // added to every series
}

func (b batch) labels(s int) labels.Labels {
	lb := labels.NewBuilder(b.extra)
	lb.Set("__name__", b.metric)
	lb.Set("series", strconv.Itoa(s))
	return lb.Labels()
}

func (b batch) value(s, j int) float64 { return float64(s*1000 + j) }

func (b batch) ts(j int) int64 { return b.base + int64(j)*b.step }

func (b batch) lastTS() int64 {
	if b.stale {
		return b.ts(b.samples)
	}
	return b.ts(b.samples - 1)
}

// appendTo appends the batch through a, one commit per sample round.
func (b batch) appendTo(t testing.TB, a storage.Appendable) {
	t.Helper()
	require.NoError(t, b.append(a))
}

func (b batch) append(a storage.Appendable) error {
	refs := make([]storage.SeriesRef, b.series)
	for j := 0; j < b.samples; j++ {
		app := a.Appender(context.Background())
		for s := 0; s < b.series; s++ {
			ref, err := app.Append(refs[s], b.labels(s), b.ts(j), b.value(s, j))
			if err != nil {
				return err
			}
			refs[s] = ref
			if s%3 == 0 {
				_, err = app.AppendExemplar(ref, b.labels(s), exemplar.Exemplar{
					Labels: labels.FromStrings("trace_id", fmt.Sprintf("t%d-%d", s, j)),
					Value:  b.value(s, j), Ts: b.ts(j), HasTs: true,
				})
				if err != nil {
					return err
				}
			}
		}
		if err := app.Commit(); err != nil {
			return err
		}
	}
	if b.stale {
		app := a.Appender(context.Background())
		if _, err := app.Append(refs[0], b.labels(0), b.ts(b.samples), math.Float64frombits(value.StaleNaN)); err != nil {
			return err
		}
		return app.Commit()
	}
	return nil
}

// fenceKey is the series fenceAt appends.
const fenceKey = `{__name__="fence"}`

// fenceAt appends one sample of series fence stamped at the start of the
// second after the one after ts, so that its whole second is later than
// ts; it returns its timestamp.
func fenceAt(a storage.Appendable, ts int64) (int64, error) {
	f := (ts/1000 + 2) * 1000
	app := a.Appender(context.Background())
	if _, err := app.Append(0, labels.FromStrings("__name__", "fence"), f, 1); err != nil {
		return 0, err
	}
	return f, app.Commit()
}

func fenceAfter(t testing.TB, a storage.Appendable, ts int64) int64 {
	t.Helper()
	f, err := fenceAt(a, ts)
	require.NoError(t, err)
	return f
}

// waitPast waits until the wall clock is a second past ts.
func waitPast(ts int64) { time.Sleep(time.Until(time.UnixMilli(ts + 1100))) }

func nopSettings() component.TelemetrySettings { return componenttest.NewNopTelemetrySettings() }

// want returns the samples series s should arrive with, ext added.
func (b batch) want(s int) []prompb.Sample {
	var out []prompb.Sample
	for j := 0; j < b.samples; j++ {
		out = append(out, prompb.Sample{Value: b.value(s, j), Timestamp: b.ts(j)})
	}
	if b.stale && s == 0 {
		out = append(out, prompb.Sample{Value: math.Float64frombits(value.StaleNaN), Timestamp: b.ts(b.samples)})
	}
	return out
}

// key is series s's key at the sink with ext added.
func (b batch) key(s int, ext labels.Labels) string {
	lb := labels.NewBuilder(b.labels(s))
	ext.Range(func(l labels.Label) { lb.Set(l.Name, l.Value) })
	return seriesKey(prompb.FromLabels(lb.Labels(), nil))
}

// requireReceived checks that the sink got exactly b's samples of every
// series, once each, in order, values bit for bit.
func requireReceived(t testing.TB, sk *sink, b batch, ext labels.Labels) {
	t.Helper()
	for s := 0; s < b.series; s++ {
		got, want := sk.got(b.key(s, ext)), b.want(s)
		require.Len(t, got, len(want), "series %d", s)
		for i := range want {
			require.Equal(t, want[i].Timestamp, got[i].Timestamp, "series %d sample %d", s, i)
			require.True(t, sameFloat(want[i].Value, got[i].Value), "series %d sample %d: want %v, got %v", s, i, want[i].Value, got[i].Value)
		}
	}
}

// received reports whether the sink holds at least every sample of b.
func received(sk *sink, b batch, ext labels.Labels) bool {
	for s := 0; s < b.series; s++ {
		if len(sk.got(b.key(s, ext))) < len(b.want(s)) {
			return false
		}
	}
	return true
}

// futureBase is a base timestamp after the queues' watchers started: a
// queue sends only samples stamped after its start (what is older is the
// catch-up's).
func futureBase() int64 { return time.Now().Add(2 * time.Second).UnixMilli() }

func TestSentEqualsReceived(t *testing.T) {
	sk, url := newSink(t)
	cfg := testConfig(t.TempDir(), url)
	cfg.ExternalLabels = map[string]string{"node": "n1", "series": "overridden-never"}
	cfg.Endpoints[0].WriteRelabelConfigs = []RelabelConfig{{SourceLabels: []string{"drop"}, Regex: ptr("yes"), Action: "drop"}}
	rw := startRW(t, cfg, 0)
	waitLive(t, rw)

	b := batch{metric: "rw_test", series: 20, samples: 10, base: futureBase(), step: 100, stale: true}
	b.appendTo(t, rw.Appendable())
	dropped := batch{metric: "rw_dropped", series: 2, samples: 3, base: b.base, step: 100, extra: labels.FromStrings("drop", "yes")}
	dropped.appendTo(t, rw.Appendable())

	// The series' own "series" label wins over the external label of that
	// name, as in Prometheus.
	ext := labels.FromStrings("node", "n1")
	require.Eventually(t, func() bool { return received(sk, b, ext) }, 30*time.Second, 10*time.Millisecond)
	requireReceived(t, sk, b, ext)
	for s := 0; s < b.series; s++ {
		ex := sk.gotExemplars(b.key(s, ext))
		if s%3 != 0 {
			assert.Empty(t, ex, "series %d", s)
			continue
		}
		require.Len(t, ex, b.samples, "series %d", s)
		for j, e := range ex {
			assert.Equal(t, fmt.Sprintf("t%d-%d", s, j), e.Labels[0].Value)
			assert.Equal(t, b.ts(j), e.Timestamp)
			assert.Equal(t, b.value(s, j), e.Value)
		}
	}
	for _, k := range sk.keys() {
		assert.NotContains(t, k, "rw_dropped", "write_relabel_configs drop")
	}
	assert.Equal(t, b.series*b.samples+1, sk.total(), "no sample twice")
}

func TestTwoInstances(t *testing.T) {
	sk1, url1 := newSink(t)
	sk2, url2 := newSink(t)
	cfg1, cfg2 := testConfig(t.TempDir(), url1), testConfig(t.TempDir(), url2)
	cfg1.ExternalLabels = map[string]string{"instance_of": "one"}
	cfg2.ExternalLabels = map[string]string{"instance_of": "two"}
	rw1, rw2 := startRW(t, cfg1, 0), startRW(t, cfg2, 0)
	waitLive(t, rw1)
	waitLive(t, rw2)
	b1 := batch{metric: "one", series: 5, samples: 4, base: futureBase(), step: 50}
	b2 := batch{metric: "two", series: 7, samples: 3, base: b1.base, step: 50}
	b1.appendTo(t, rw1.Appendable())
	b2.appendTo(t, rw2.Appendable())
	e1, e2 := labels.FromStrings("instance_of", "one"), labels.FromStrings("instance_of", "two")
	require.Eventually(t, func() bool { return received(sk1, b1, e1) && received(sk2, b2, e2) }, 30*time.Second, 10*time.Millisecond)
	requireReceived(t, sk1, b1, e1)
	requireReceived(t, sk2, b2, e2)
	assert.Equal(t, b1.series*b1.samples, sk1.total(), "instance one sends only its own")
	assert.Equal(t, b2.series*b2.samples, sk2.total(), "instance two sends only its own")
	// Each instance's registry holds only its own queue.
	assert.Equal(t, float64(b1.series*b1.samples), gather(rw1.reg).sum(mAgentAppended, "type", "float"))
	assert.Equal(t, float64(b2.series*b2.samples), gather(rw2.reg).sum(mAgentAppended, "type", "float"))
}

// TestCatchUpAfterOutageAndRestart: samples appended while the endpoint is
// down and not sent before a clean shutdown (flush deadline too short) are
// sent by the next start's catch-up, before the queue starts, and the
// samples sent before the outage are not sent again.
func TestCatchUpAfterOutageAndRestart(t *testing.T) {
	sk, url := newSink(t)
	dir := t.TempDir()
	cfg := testConfig(dir, url)
	cfg.FlushDeadline = 100 * time.Millisecond
	cfg.Endpoints[0].SendNativeHistograms = true
	rw, err := newRemoteWrite(nopSettings(), cfg)
	require.NoError(t, err)
	rw.grace = 0
	require.NoError(t, rw.Start(context.Background(), nil))
	waitLive(t, rw)

	b1 := batch{metric: "before", series: 4, samples: 5, base: futureBase(), step: 100}
	b1.appendTo(t, rw.Appendable())
	require.Eventually(t, func() bool { return received(sk, b1, labels.EmptyLabels()) }, 30*time.Second, 10*time.Millisecond)
	fence := fenceAfter(t, rw.Appendable(), b1.lastTS())
	require.Eventually(t, func() bool { return len(sk.got(fenceKey)) == 1 }, 30*time.Second, 10*time.Millisecond)
	// The mark passes b1 once the queue is empty.
	require.Eventually(t, func() bool { return rw.prog.Mark(rw.pcfg.RemoteWriteConfigs[0].Name) >= b1.lastTS() }, 10*time.Second, 10*time.Millisecond)

	sk.setDown(true)
	b2 := batch{metric: "during", series: 4, samples: 5, base: fence + 1000, step: 400, stale: true} // over 3 seconds
	b2.appendTo(t, rw.Appendable())
	hls, h := labels.FromStrings("__name__", "during_hist"), tsdbutil.GenerateTestFloatHistogram(2)
	app := rw.Appendable().Appender(context.Background())
	_, err = app.AppendHistogram(0, hls, b2.base, nil, h)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	// The queue holds b2 when it stops: the stop drops it (counted as
	// failed, no longer pending), and the mark must not move past it.
	require.Eventually(t, func() bool {
		g := gather(rw.reg)
		return g.sum(mHighest, "remote_name", "ep") >= float64(b2.lastTS()/1000) && g.pending("ep") > 0
	}, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, rw.Shutdown(context.Background()))
	assert.Positive(t, gather(rw.reg).failed("ep"), "the stop dropped what it could not flush")
	assert.Less(t, rw.prog.Mark("ep"), b2.base)
	sk.setDown(false)
	// The samples must be in the past for the next start: a queue sends
	// what is stamped after its start, the catch-up the rest.
	waitPast(b2.lastTS())

	rw2 := startRW(t, cfg, 0)
	require.Eventually(t, func() bool { return received(sk, b2, labels.EmptyLabels()) }, 30*time.Second, 10*time.Millisecond)
	waitLive(t, rw2)
	requireReceived(t, sk, b1, labels.EmptyLabels())
	requireReceived(t, sk, b2, labels.EmptyLabels())
	hk := seriesKey(prompb.FromLabels(hls, nil))
	require.Eventually(t, func() bool { return len(sk.gotHistograms(hk)) == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, h.String(), sk.gotHistograms(hk)[0].ToFloatHistogram().String(), "float histogram sent by the catch-up")
	assert.Equal(t, int64(1), rw2.catchups[0].sent.Histograms.Load())
	t.Logf("fence sample received %d times (the mark has whole-second resolution)", len(sk.got(fenceKey)))
	assert.LessOrEqual(t, len(sk.got(fenceKey)), 2)
	assert.Equal(t, int64(b2.series*b2.samples+1+len(sk.got(fenceKey))-1), rw2.catchups[0].sent.Samples.Load(), "the catch-up sent b2 (and the fence again at most), nothing of b1")
}

// TestAppendableV2: the newer appender interface reaches the endpoint
// too, exemplars passed in the options; a native histogram with it when
// send_native_histograms is on.
func TestAppendableV2(t *testing.T) {
	sk, url := newSink(t)
	cfg := testConfig(t.TempDir(), url)
	cfg.Endpoints[0].SendNativeHistograms = true
	rw := startRW(t, cfg, 0)
	waitLive(t, rw)
	base := futureBase()
	ls := labels.FromStrings("__name__", "v2_metric", "a", "b")
	hls := labels.FromStrings("__name__", "v2_hist")
	h := tsdbutil.GenerateTestHistogram(3)
	app := rw.AppendableV2().AppenderV2(context.Background())
	ref, err := app.Append(0, ls, 0, base, 7, nil, nil, storage.AOptions{
		Exemplars: []exemplar.Exemplar{{Labels: labels.FromStrings("trace_id", "abc"), Value: 7, Ts: base, HasTs: true}},
	})
	require.NoError(t, err)
	_, err = app.Append(ref, ls, 0, base+10, 8, nil, nil, storage.AOptions{})
	require.NoError(t, err)
	_, err = app.Append(0, hls, 0, base, 0, h, nil, storage.AOptions{})
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	hk := seriesKey(prompb.FromLabels(hls, nil))
	require.Eventually(t, func() bool { return len(sk.gotHistograms(hk)) == 1 }, 30*time.Second, 10*time.Millisecond)
	got := sk.gotHistograms(hk)[0]
	assert.Equal(t, base, got.Timestamp)
	assert.Equal(t, h.String(), got.ToIntHistogram().String(), "native histogram as appended")
	k := seriesKey(prompb.FromLabels(ls, nil))
	require.Eventually(t, func() bool { return len(sk.got(k)) == 2 }, 30*time.Second, 10*time.Millisecond)
	assert.Equal(t, []prompb.Sample{{Value: 7, Timestamp: base}, {Value: 8, Timestamp: base + 10}}, sk.got(k))
	ex := sk.gotExemplars(k)
	require.Len(t, ex, 1)
	assert.Equal(t, "abc", ex[0].Labels[0].Value)

	require.NoError(t, rw.Shutdown(context.Background()))
	_, err = rw.AppendableV2().AppenderV2(context.Background()).Append(0, ls, 0, base+20, 9, nil, nil, storage.AOptions{})
	require.ErrorIs(t, err, errNotStarted, "after shutdown")
}

// TestCatchUpAcrossSegmentsAndCheckpoint: with small WAL segments and a
// truncation every second, what the outage left unsent spans several
// segments and a checkpoint when the next start's catch-up reads it.
func TestCatchUpAcrossSegmentsAndCheckpoint(t *testing.T) {
	sk, url := newSink(t)
	dir := t.TempDir()
	cfg := testConfig(dir, url)
	cfg.FlushDeadline = 100 * time.Millisecond
	cfg.WAL.TruncateFrequency, cfg.WAL.MinWALTime, cfg.WAL.MaxWALTime = time.Second, time.Second, time.Hour
	rw, err := newRemoteWrite(nopSettings(), cfg)
	require.NoError(t, err)
	rw.grace, rw.segmentSize = 0, 64<<10
	require.NoError(t, rw.Start(context.Background(), nil))
	waitLive(t, rw)

	none := labels.EmptyLabels()
	b1 := batch{metric: "before", series: 3, samples: 2, base: futureBase(), step: 100}
	b1.appendTo(t, rw.Appendable())
	require.Eventually(t, func() bool { return received(sk, b1, none) }, 30*time.Second, 10*time.Millisecond)
	fence := fenceAfter(t, rw.Appendable(), b1.lastTS())
	require.Eventually(t, func() bool { return len(sk.got(fenceKey)) == 1 }, 30*time.Second, 10*time.Millisecond)

	sk.setDown(true)
	b2 := batch{metric: "during", series: 300, samples: 30, base: fence + 1000, step: 10, stale: true}
	b2.appendTo(t, rw.Appendable())
	walDir := filepath.Join(dir, "wal")
	require.Eventually(t, func() bool {
		cps, _ := filepath.Glob(filepath.Join(walDir, "checkpoint.*"))
		return len(cps) > 0
	}, 30*time.Second, 50*time.Millisecond, "the agent checkpoints the WAL")
	segs, _ := walFiles(walDir)
	t.Logf("WAL at shutdown: %d segments and a checkpoint", segs)
	require.NoError(t, rw.Shutdown(context.Background()))
	sk.setDown(false)
	waitPast(b2.lastTS())

	rw2 := startRW(t, cfg, 0)
	require.Eventually(t, func() bool { return received(sk, b2, none) }, 30*time.Second, 10*time.Millisecond)
	waitLive(t, rw2)
	requireReceived(t, sk, b1, none)
	requireReceived(t, sk, b2, none)
}

// TestEndpointsCatchUpIndependently: after a restart with a backlog for
// two endpoints, one of them down, the other catches up and its queue
// sends new samples at once; the one that was down gets the backlog and
// then the new samples when it is back.
func TestEndpointsCatchUpIndependently(t *testing.T) {
	skA, urlA := newSink(t)
	skB, urlB := newSink(t)
	dir := t.TempDir()
	cfg := testConfig(dir, urlA)
	cfg.FlushDeadline = 100 * time.Millisecond
	cfg.Endpoints = append(cfg.Endpoints, cfg.Endpoints[0])
	cfg.Endpoints[1].Name, cfg.Endpoints[1].URL = "b", urlB
	rw, err := newRemoteWrite(nopSettings(), cfg)
	require.NoError(t, err)
	rw.grace = 0
	require.NoError(t, rw.Start(context.Background(), nil))
	waitLive(t, rw)

	none := labels.EmptyLabels()
	skA.setDown(true)
	skB.setDown(true)
	backlog := batch{metric: "backlog", series: 5, samples: 4, base: futureBase(), step: 100}
	backlog.appendTo(t, rw.Appendable())
	require.NoError(t, rw.Shutdown(context.Background()))
	waitPast(backlog.lastTS())

	skA.setDown(false) // b stays down
	rw2 := startRW(t, cfg, 0)
	require.Eventually(t, func() bool { return rw2.catchups[0].done.Load() }, 30*time.Second, 10*time.Millisecond)
	assert.False(t, rw2.catchups[1].live.Load(), "b's queue waits for its catch-up")
	fresh := batch{metric: "fresh", series: 5, samples: 4, base: futureBase(), step: 100}
	fresh.appendTo(t, rw2.Appendable())
	require.Eventually(t, func() bool { return received(skA, fresh, none) }, 30*time.Second, 10*time.Millisecond)
	requireReceived(t, skA, backlog, none)
	requireReceived(t, skA, fresh, none)
	assert.Zero(t, skB.total())

	skB.setDown(false)
	require.Eventually(t, func() bool { return rw2.catchups[1].done.Load() }, 30*time.Second, 10*time.Millisecond)
	// Appends go on (a queue reads the WAL when an append notifies it, or
	// after 15 s).
	after := batch{metric: "after", series: 5, samples: 1, base: futureBase(), step: 100}
	after.appendTo(t, rw2.Appendable())
	require.Eventually(t, func() bool { return received(skB, after, none) && received(skB, fresh, none) }, 30*time.Second, 10*time.Millisecond)
	requireReceived(t, skB, backlog, none)
	requireReceived(t, skB, after, none)
	// fresh is stamped in the future (so that a's queue sends it): samples
	// of it stamped within a second after b's switch are sent by both b's
	// catch-up and b's queue (the overlap that leaves no gap).
	dups := requireReceivedDistinct(t, skB, fresh, none)
	t.Logf("fresh at b: %d samples twice (stamped in the switch's overlap)", dups)
}

// requireReceivedDistinct checks that the sink got every sample of b and
// nothing else, allowing a sample twice; it returns how many came twice.
func requireReceivedDistinct(t testing.TB, sk *sink, b batch, ext labels.Labels) int {
	t.Helper()
	dups := 0
	for s := 0; s < b.series; s++ {
		got := map[int64]float64{}
		for _, smp := range sk.got(b.key(s, ext)) {
			if v, ok := got[smp.Timestamp]; ok {
				require.True(t, sameFloat(v, smp.Value), "series %d at %d: two values", s, smp.Timestamp)
				dups++
			}
			got[smp.Timestamp] = smp.Value
		}
		want := b.want(s)
		require.Len(t, got, len(want), "series %d", s)
		for _, w := range want {
			v, ok := got[w.Timestamp]
			require.True(t, ok, "series %d: missing %d", s, w.Timestamp)
			require.True(t, sameFloat(w.Value, v), "series %d at %d", s, w.Timestamp)
		}
	}
	return dups
}
