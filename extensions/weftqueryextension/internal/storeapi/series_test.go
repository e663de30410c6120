package storeapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/thanos/pkg/info/infopb"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftobs/weft/extensions/weftstoreextension"
)

// point is a sample read back, of any kind.
type point struct {
	T  int64
	F  float64
	H  *histogram.Histogram
	FH *histogram.FloatHistogram
}

// collect reads a Series stream to its end.
func collect(t *testing.T, c storepb.StoreClient, req *storepb.SeriesRequest) ([]*storepb.Series, []string, error) {
	t.Helper()
	stream, err := c.Series(t.Context(), req)
	require.NoError(t, err)
	var (
		series []*storepb.Series
		warns  []string
	)
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return series, warns, nil
		}
		if err != nil {
			return series, warns, err
		}
		if s := r.GetSeries(); s != nil {
			series = append(series, s)
		} else if w := r.GetWarning(); w != "" {
			warns = append(warns, w)
		}
	}
}

// seriesLabels is the labels of a wire series (built by hand: labelpb's
// converters assume another labels layout).
func seriesLabels(s *storepb.Series) labels.Labels {
	b := labels.NewScratchBuilder(len(s.Labels))
	for _, l := range s.Labels {
		b.Add(l.Name, l.Value)
	}
	return b.Labels()
}

// decode reads a wire series' chunks with the TSDB's chunk decoders.
func decode(t *testing.T, s *storepb.Series) []point {
	t.Helper()
	var out []point
	for _, c := range s.Chunks {
		chk, err := chunkenc.FromData(chunkenc.Encoding(c.Raw.Type+1), c.Raw.Data)
		require.NoError(t, err)
		out = append(out, points(t, chk.Iterator(nil))...)
	}
	return out
}

func points(t *testing.T, it chunkenc.Iterator) []point {
	t.Helper()
	var out []point
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		switch vt {
		case chunkenc.ValFloat:
			ts, v := it.At()
			out = append(out, point{T: ts, F: v})
		case chunkenc.ValHistogram:
			ts, h := it.AtHistogram(nil)
			h.CounterResetHint = histogram.UnknownCounterReset
			out = append(out, point{T: ts, H: h})
		case chunkenc.ValFloatHistogram:
			ts, h := it.AtFloatHistogram(nil)
			h.CounterResetHint = histogram.UnknownCounterReset
			out = append(out, point{T: ts, FH: h})
		}
	}
	require.NoError(t, it.Err())
	return out
}

// local is what a PromQL selector selects from the store itself, with
// the external labels added, sorted as served.
func local(t *testing.T, st *weftstoreextension.Store, mint, maxt int64, ms ...*labels.Matcher) (map[string][]point, []labels.Labels) {
	t.Helper()
	q, err := st.Queryable().Querier(mint, maxt)
	require.NoError(t, err)
	defer q.Close()
	set := q.Select(t.Context(), true, &storage.SelectHints{Start: mint, End: maxt}, ms...)
	got := map[string][]point{}
	var order []labels.Labels
	b := labels.NewBuilder(labels.EmptyLabels())
	for set.Next() {
		s := set.At()
		ls := apply(b, s.Labels(), nil, st.ExternalLabels())
		got[ls.String()] = points(t, s.Iterator(nil))
		order = append(order, ls)
	}
	require.NoError(t, set.Err())
	slices.SortFunc(order, labels.Compare)
	return got, order
}

// testSeries are float, histogram and float-histogram series, some whose
// labels are a prefix of others' (the case where adding external labels
// changes the order).
func testSeries(t0 int64) map[string][]sample {
	return map[string][]sample{
		`{__name__="up", job="a"}`:                       floats(t0, 300, 1),
		`{__name__="up", job="a", instance="i1"}`:        floats(t0, 10, 2),
		`{__name__="up", job="a", mode="idle"}`:          floats(t0, 10, 3),
		`{__name__="up", job="a", zone="z"}`:             floats(t0, 10, 4),
		`{__name__="up", job="b"}`:                       floats(t0, 5, 5),
		`{__name__="req", job="a", le="1"}`:              floats(t0, 130, 6),
		`{__name__="lat", job="a"}`:                      hists(t0, 20, false),
		`{__name__="lat_f", job="a"}`:                    hists(t0, 20, true),
		`{__name__="up", job="a", instance="i1", x="y"}`: floats(t0, 3, 7),
		`{__name__="aaa"}`:                               floats(t0, 3, 8),
		`{__name__="aaa", b="1"}`:                        floats(t0, 3, 9),
		`{__name__="aaa", b="1", cluster_x="1", z="1"}`:  floats(t0, 3, 10),
	}
}

func TestSeriesEqualsLocalSelect(t *testing.T) {
	for _, st0 := range []bool{false, true} {
		t.Run(map[bool]string{false: "stored", true: "start_timestamps"}[st0], func(t *testing.T) {
			st := startStore(t, func(c *weftstoreextension.Config) { c.StartTimestamps = st0 })
			t0 := time.Now().Add(-26 * time.Minute).UnixMilli()
			write(t, st, testSeries(t0), nil)
			_, conn := serve(t, st, nil)
			c := storepb.NewStoreClient(conn)

			all := labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".+")
			series, warns, err := collect(t, c, &storepb.SeriesRequest{
				MinTime: math.MinInt64, MaxTime: math.MaxInt64,
				Matchers: []storepb.LabelMatcher{{Type: storepb.LabelMatcher_RE, Name: "__name__", Value: ".+"}},
			})
			require.NoError(t, err)
			require.Empty(t, warns)
			want, order := local(t, st, math.MinInt64, math.MaxInt64, all)
			got := map[string][]point{}
			var gotOrder []labels.Labels
			for _, s := range series {
				ls := seriesLabels(s)
				gotOrder = append(gotOrder, ls)
				got[ls.String()] = decode(t, s)
			}
			require.Equal(t, order, gotOrder, "served sorted by labels with external labels, one response per series")
			require.Equal(t, want, got)
		})
	}
}

func TestSeriesChunkEncodings(t *testing.T) {
	st := startStore(t, nil)
	t0 := time.Now().Add(-26 * time.Minute).UnixMilli()
	write(t, st, testSeries(t0), nil)
	_, conn := serve(t, st, nil)
	seen := map[storepb.Chunk_Encoding]bool{}
	series, _, err := collect(t, storepb.NewStoreClient(conn), &storepb.SeriesRequest{
		MinTime: math.MinInt64, MaxTime: math.MaxInt64,
		Matchers: []storepb.LabelMatcher{{Type: storepb.LabelMatcher_RE, Name: "__name__", Value: "lat.*|req"}},
	})
	require.NoError(t, err)
	for _, s := range series {
		for _, c := range s.Chunks {
			seen[c.Raw.Type] = true
		}
	}
	require.Equal(t, map[storepb.Chunk_Encoding]bool{storepb.Chunk_XOR: true, storepb.Chunk_HISTOGRAM: true, storepb.Chunk_FLOAT_HISTOGRAM: true}, seen)
}

func TestSeriesExternalLabels(t *testing.T) {
	st := startStore(t, nil)
	t0 := time.Now().Add(-26 * time.Minute).UnixMilli()
	write(t, st, testSeries(t0), nil)
	_, conn := serve(t, st, nil)
	c := storepb.NewStoreClient(conn)
	eq := func(n, v string) storepb.LabelMatcher {
		return storepb.LabelMatcher{Type: storepb.LabelMatcher_EQ, Name: n, Value: v}
	}
	up := eq("__name__", "up")
	for _, tc := range []struct {
		name     string
		ms       []storepb.LabelMatcher
		without  []string
		want     int
		wantNode string
	}{
		{"external matches", []storepb.LabelMatcher{up, eq("node", "n1")}, nil, 6, "n1"},
		{"external regex matches", []storepb.LabelMatcher{up, {Type: storepb.LabelMatcher_RE, Name: "cluster", Value: "c.*"}}, nil, 6, "n1"},
		{"external differs", []storepb.LabelMatcher{up, eq("node", "n2")}, nil, 0, ""},
		{"external negated", []storepb.LabelMatcher{up, {Type: storepb.LabelMatcher_NEQ, Name: "node", Value: "n1"}}, nil, 0, ""},
		{"only external: every series", []storepb.LabelMatcher{eq("node", "n1")}, nil, 12, "n1"},
		{"without replica label", []storepb.LabelMatcher{up}, []string{"node"}, 6, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			series, _, err := collect(t, c, &storepb.SeriesRequest{MinTime: math.MinInt64, MaxTime: math.MaxInt64, Matchers: tc.ms, WithoutReplicaLabels: tc.without})
			require.NoError(t, err)
			require.Len(t, series, tc.want)
			var prev labels.Labels
			for i, s := range series {
				ls := seriesLabels(s)
				require.Equal(t, tc.wantNode, ls.Get("node"), ls.String())
				require.Equal(t, "c1", ls.Get("cluster"))
				if i > 0 {
					require.Negative(t, labels.Compare(prev, ls), "sorted: %s before %s", prev, ls)
				}
				prev = ls
			}
		})
	}
}

// TestSeriesLabelClash: a stored series with a label named like an
// external label is served with the external value (as Thanos's TSDB
// store does) and the answer stays sorted.
func TestSeriesLabelClash(t *testing.T) {
	st := startStore(t, nil)
	t0 := time.Now().Add(-26 * time.Minute).UnixMilli()
	in := testSeries(t0)
	in[`{__name__="up", job="a", node="other", a="1"}`] = floats(t0, 3, 1)
	in[`{__name__="up", job="c", node="zzz"}`] = floats(t0, 3, 1)
	write(t, st, in, nil)
	_, conn := serve(t, st, nil)
	series, _, err := collect(t, storepb.NewStoreClient(conn), &storepb.SeriesRequest{
		MinTime: math.MinInt64, MaxTime: math.MaxInt64,
		Matchers: []storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "__name__", Value: "up"}},
	})
	require.NoError(t, err)
	require.Len(t, series, 8)
	for i, s := range series {
		require.Equal(t, "n1", seriesLabels(s).Get("node"))
		if i > 0 {
			require.Negative(t, labels.Compare(seriesLabels(series[i-1]), seriesLabels(s)))
		}
	}
}

func TestSeriesOptions(t *testing.T) {
	st := startStore(t, nil)
	now := time.Now()
	t0 := now.Add(-26 * time.Minute).UnixMilli()
	write(t, st, testSeries(t0), nil)
	_, conn := serve(t, st, nil)
	c := storepb.NewStoreClient(conn)
	up := []storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "__name__", Value: "up"}}

	series, _, err := collect(t, c, &storepb.SeriesRequest{MinTime: math.MinInt64, MaxTime: math.MaxInt64, Matchers: up, SkipChunks: true})
	require.NoError(t, err)
	require.Len(t, series, 6)
	for _, s := range series {
		require.Empty(t, s.Chunks)
	}

	series, _, err = collect(t, c, &storepb.SeriesRequest{MinTime: math.MinInt64, MaxTime: math.MaxInt64, Matchers: up, Limit: 2})
	require.NoError(t, err)
	require.Len(t, series, 2)

	// Only {job="a"} has samples past t0 + 10 samples; chunks may reach
	// outside the range, the series are those with samples in it.
	series, _, err = collect(t, c, &storepb.SeriesRequest{MinTime: t0 + 200*5_000, MaxTime: now.UnixMilli(), Matchers: up})
	require.NoError(t, err)
	require.Len(t, series, 1)
	require.Equal(t, "a", seriesLabels(series[0]).Get("job"))
}

func TestSeriesLimits(t *testing.T) {
	st := startStore(t, nil)
	write(t, st, testSeries(time.Now().Add(-26*time.Minute).UnixMilli()), nil)
	_, conn := serve(t, st, func(o *Options) {
		o.Limits = Limits{MaxMatchers: 3, MaxRegexLength: 10, MaxSeries: 4, MaxSamples: 200, MaxRecvMsgSize: 1024}
	})
	c := storepb.NewStoreClient(conn)
	re := func(v string) storepb.LabelMatcher {
		return storepb.LabelMatcher{Type: storepb.LabelMatcher_RE, Name: "__name__", Value: v}
	}
	for _, tc := range []struct {
		name string
		ms   []storepb.LabelMatcher
		code codes.Code
		msg  string
	}{
		{"too many matchers", []storepb.LabelMatcher{re("a"), re("b"), re("c"), re("d")}, codes.InvalidArgument, "limit of 3 matchers"},
		{"regex too long", []storepb.LabelMatcher{re("aaaaaaaaaaa")}, codes.InvalidArgument, "limit of 10 bytes"},
		{"bad regex", []storepb.LabelMatcher{re("(")}, codes.InvalidArgument, "matcher"},
		{"unknown type", []storepb.LabelMatcher{{Type: 9, Name: "a", Value: "b"}}, codes.InvalidArgument, "unknown type"},
		{"series limit", []storepb.LabelMatcher{re(".+")}, codes.ResourceExhausted, "series limit"},
		{"sample limit", []storepb.LabelMatcher{re("up")}, codes.ResourceExhausted, "sample limit"},
		{"message size", []storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "a", Value: string(make([]byte, 2000))}}, codes.ResourceExhausted, "larger than max"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := collect(t, c, &storepb.SeriesRequest{MinTime: 0, MaxTime: math.MaxInt64, Matchers: tc.ms})
			require.Equal(t, tc.code, status.Code(err), "%v", err)
			require.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestSlotsAndAuth(t *testing.T) {
	st := startStore(t, nil)
	full := errors.New("queue full")
	_, conn := serve(t, st, func(o *Options) {
		o.Acquire = func(context.Context) (func(), error) { return nil, full }
	})
	_, _, err := collect(t, storepb.NewStoreClient(conn), &storepb.SeriesRequest{MaxTime: 1, Matchers: []storepb.LabelMatcher{{Name: "a", Value: "b"}}})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Contains(t, err.Error(), "queue full")

	// The call's deadline bounds the wait for a slot.
	_, conn = serve(t, st, func(o *Options) {
		o.Timeout = 50 * time.Millisecond
		o.Acquire = func(ctx context.Context) (func(), error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
	})
	_, err = storepb.NewStoreClient(conn).LabelNames(t.Context(), &storepb.LabelNamesRequest{End: 1})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)

	_, conn = serve(t, st, func(o *Options) {
		o.Authorize = func(context.Context) error { return status.Error(codes.Unauthenticated, "no credential") }
	})
	_, err = infopb.NewInfoClient(conn).Info(t.Context(), &infopb.InfoRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

// countingStream is a Series stream that records, at each send, how many
// series' chunks the server had read by then.
type countingStream struct {
	grpc.ServerStream
	ctx        context.Context
	built      *int
	sent       int
	maxHeld    int
	lastLabels labels.Labels
	t          *testing.T
}

func (c *countingStream) Context() context.Context { return c.ctx }

func (c *countingStream) Send(r *storepb.SeriesResponse) error {
	if s := r.GetSeries(); s != nil {
		c.maxHeld = max(c.maxHeld, *c.built-c.sent)
		c.sent++
		ls := seriesLabels(s)
		if c.sent > 1 {
			require.Negative(c.t, labels.Compare(c.lastLabels, ls))
		}
		c.lastLabels = ls
	}
	return nil
}

// TestSeriesStreams: an all-series request is streamed; the server never
// holds the chunks of more than one series that it has not sent.
func TestSeriesStreams(t *testing.T) {
	st := startStore(t, nil)
	t0 := time.Now().Add(-26 * time.Minute).UnixMilli()
	in := map[string][]sample{}
	for i := range 2000 {
		in[fmt.Sprintf(`{__name__="m%d", job="j", instance="i%d"}`, i%7, i)] = floats(t0, 20, 1)
	}
	write(t, st, in, nil)
	built := 0
	srv := New(Options{Store: st, ExternalLabels: st.ExternalLabels()})
	srv.onBuild = func() { built++ }
	cs := &countingStream{ctx: t.Context(), built: &built, t: t}
	err := storeServer{srv}.Series(&storepb.SeriesRequest{
		MinTime: math.MinInt64, MaxTime: math.MaxInt64,
		Matchers: []storepb.LabelMatcher{{Type: storepb.LabelMatcher_RE, Name: "__name__", Value: ".+"}},
	}, cs)
	require.NoError(t, err)
	require.Equal(t, 2000, cs.sent)
	require.Equal(t, 1, cs.maxHeld, "series read but not sent at any send")
}

// TestSeriesWhileAppending: chunks read while the head appends to them are
// consistent copies (run with -race).
func TestSeriesWhileAppending(t *testing.T) {
	st := startStore(t, nil)
	t0 := time.Now().Add(-26 * time.Minute).UnixMilli()
	write(t, st, testSeries(t0), nil)
	_, conn := serve(t, st, nil)
	c := storepb.NewStoreClient(conn)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ls := mustLabels(t, `{__name__="up", job="b"}`)
		for i := range 200 {
			app := st.Appendable().Appender(context.Background())
			if _, err := app.Append(0, ls, t0+int64(10+i)*5_000, float64(i)); err != nil {
				_ = app.Rollback()
				return
			}
			_ = app.Commit()
		}
	}()
	for range 20 {
		series, _, err := collect(t, c, &storepb.SeriesRequest{MinTime: math.MinInt64, MaxTime: math.MaxInt64,
			Matchers: []storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "job", Value: "b"}}})
		require.NoError(t, err)
		require.Len(t, series, 1)
		pts := decode(t, series[0])
		for i := 1; i < len(pts); i++ {
			require.Greater(t, pts[i].T, pts[i-1].T)
		}
	}
	<-done
}
