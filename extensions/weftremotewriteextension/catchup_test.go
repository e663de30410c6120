package weftremotewriteextension

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/weftobs/weft/extensions/weftremotewriteextension/internal/catchup"
)

// TestCatchUpLabels: the catch-up sends series with the endpoint's
// external labels (the series' own label of the same name wins) and
// write relabelling applied after them, as the queue does; samples outside
// (from, until] and series relabelled away are not sent.
func TestCatchUpLabels(t *testing.T) {
	sk, url := newSink(t)
	cfg := testConfig(t.TempDir(), url)
	cfg.ExternalLabels = map[string]string{"node": "n1", "cluster": "c1"}
	cfg.Endpoints[0].WriteRelabelConfigs = []RelabelConfig{
		{SourceLabels: []string{"node"}, TargetLabel: "node_copy"},
		{SourceLabels: []string{"__name__"}, Regex: ptr("secret_.*"), Action: "drop"},
	}
	pc, err := cfg.prometheusConfig()
	require.NoError(t, err)
	prog, err := catchup.LoadProgress(cfg.WAL.Directory, []string{"ep"}, time.Now())
	require.NoError(t, err)
	s, err := catchup.NewSender(pc.RemoteWriteConfigs[0], pc.GlobalConfig.ExternalLabels, func(t int64) { prog.Advance("ep", t) }, &catchup.Stats{}, zap.NewNop())
	require.NoError(t, err)
	defer s.Close()

	var enc record.Encoder
	ctx := context.Background()
	series := enc.Series([]record.RefSeries{
		{Ref: 1, Labels: labels.FromStrings("__name__", "up", "job", "j")},
		{Ref: 2, Labels: labels.FromStrings("__name__", "up", "node", "own")},
		{Ref: 3, Labels: labels.FromStrings("__name__", "secret_x")},
	}, nil)
	require.NoError(t, s.Record(ctx, series, catchup.Window{From: 0, Until: 100, Exemplars: true}))
	samples := enc.Samples([]record.RefSample{
		{Ref: 1, T: 10, V: 1}, {Ref: 2, T: 20, V: 2}, {Ref: 3, T: 30, V: 3},
		{Ref: 1, T: 5, V: 9},   // not after from
		{Ref: 1, T: 101, V: 9}, // after until
		{Ref: 99, T: 50, V: 9}, // no series record
	}, nil)
	require.NoError(t, s.Record(ctx, samples, catchup.Window{From: 5, Until: 100, Exemplars: true}))
	require.NoError(t, s.Flush(ctx))

	assert.Equal(t, []prompb.Sample{{Value: 1, Timestamp: 10}},
		sk.got(`{__name__="up", cluster="c1", job="j", node="n1", node_copy="n1"}`))
	assert.Equal(t, []prompb.Sample{{Value: 2, Timestamp: 20}},
		sk.got(`{__name__="up", cluster="c1", node="own", node_copy="own"}`))
	assert.Equal(t, 2, sk.total(), "secret_x relabelled away; samples outside (5, 100] and of unknown series left out")
	assert.Equal(t, int64(20), prog.Mark("ep"), "the mark moves to the newest timestamp sent")
}

// TestCatchUpSplitsRefusedBatches: a request the endpoint refuses for one
// sample is split until that sample is alone; the others arrive, the
// refused ones are counted.
func TestCatchUpSplitsRefusedBatches(t *testing.T) {
	sk, url := newSink(t)
	sk.refuse = func(s prompb.Sample) bool { return s.Value < 0 }
	cfg := testConfig(t.TempDir(), url)
	cfg.Endpoints[0].QueueConfig.MaxSamplesPerSend = 16
	pc, err := cfg.prometheusConfig()
	require.NoError(t, err)
	prog, err := catchup.LoadProgress(cfg.WAL.Directory, []string{"ep"}, time.Now())
	require.NoError(t, err)
	st := &catchup.Stats{}
	s, err := catchup.NewSender(pc.RemoteWriteConfigs[0], labels.EmptyLabels(), func(t int64) { prog.Advance("ep", t) }, st, zap.NewNop())
	require.NoError(t, err)
	defer s.Close()

	var enc record.Encoder
	ctx := context.Background()
	require.NoError(t, s.Record(ctx, enc.Series([]record.RefSeries{{Ref: 1, Labels: labels.FromStrings("__name__", "m")}}, nil), catchup.Window{From: catchup.NothingSent, Until: 1000}))
	var smps []record.RefSample
	var want []prompb.Sample
	for i := range 40 {
		v := float64(i)
		if i%13 == 5 {
			v = -1 // refused: 5, 18, 31
		} else {
			want = append(want, prompb.Sample{Value: v, Timestamp: int64(i)})
		}
		smps = append(smps, record.RefSample{Ref: 1, T: int64(i), V: v})
	}
	require.NoError(t, s.Record(ctx, enc.Samples(smps, nil), catchup.Window{From: catchup.NothingSent, Until: 1000}))
	require.NoError(t, s.Flush(ctx))
	assert.Equal(t, want, sk.got(`{__name__="m"}`))
	assert.Equal(t, int64(3), st.Refused.Load())
	assert.Equal(t, int64(37), st.Samples.Load(), "refused samples are not counted as sent")
	assert.Equal(t, int64(39), prog.Mark("ep"))
}

// TestGraceReadsOnlyLateCommits: in its grace period the catch-up reads
// this run's WAL again only when a commit held a sample stamped at or
// before the switch. On-time commits every 20 ms through a 3 s grace cost
// no pass (read at every poll it made 3); a late sample committed after
// the switch costs one and arrives once; on-time samples arrive once.
func TestGraceReadsOnlyLateCommits(t *testing.T) {
	sk, url := newSink(t)
	cfg := testConfig(t.TempDir(), url)
	before := time.Now().UnixMilli() // before the switch
	rw := startRW(t, cfg, 3*time.Second)
	require.Eventually(t, func() bool { return rw.late.until.Load() > before }, 10*time.Second, time.Millisecond, "switch")
	for time.Now().UnixMilli() <= rw.late.until.Load() {
		time.Sleep(time.Millisecond) // on-time samples: stamped after the switch
	}

	onTime, late := labels.FromStrings("__name__", "on_time"), labels.FromStrings("__name__", "late")
	appendOne := func(ls labels.Labels, ts int64) {
		app := rw.Appendable().Appender(context.Background())
		_, err := app.Append(0, ls, ts, float64(ts))
		require.NoError(t, err)
		require.NoError(t, app.Commit())
	}
	var want []prompb.Sample
	last := int64(0)
	for i := 0; !rw.catchups[0].done.Load(); i++ {
		if ts := time.Now().UnixMilli(); ts > last {
			appendOne(onTime, ts)
			want = append(want, prompb.Sample{Value: float64(ts), Timestamp: ts})
			last = ts
		}
		if i == 10 {
			appendOne(late, before) // a scrape in flight at the switch
		}
		time.Sleep(20 * time.Millisecond)
	}
	assert.Equal(t, int64(1), rw.late.n.Load(), "late commits")
	passes := rw.catchups[0].passes.Load()
	assert.True(t, passes == 1 || passes == 2, "passes after the switch: %d (the first, and one for the late commit unless the first read it)", passes)
	require.Eventually(t, func() bool { return len(sk.got(`{__name__="on_time"}`)) >= len(want) }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, []prompb.Sample{{Value: float64(before), Timestamp: before}}, sk.got(`{__name__="late"}`), "the late sample, once")
	got := sk.got(`{__name__="on_time"}`)
	assert.True(t, slices.EqualFunc(want, got, func(a, b prompb.Sample) bool { return a.Timestamp == b.Timestamp && a.Value == b.Value }), "on-time samples: appended %d, received %d (each once, in order)", len(want), len(got))
}
