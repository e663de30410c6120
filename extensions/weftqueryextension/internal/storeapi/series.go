package storeapi

import (
	"context"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type storeServer struct{ s *Server }

// Series streams the selected series, one response per series, sorted by
// their labels as served (external labels added), each with its chunks
// in their stored encoding. See order.go for how the order is kept
// without collecting the result.
func (ss storeServer) Series(r *storepb.SeriesRequest, srv storepb.Store_SeriesServer) error {
	s, ctx := ss.s, srv.Context()
	if r.MinTime > r.MaxTime {
		return status.Errorf(codes.InvalidArgument, "min_time %d is after max_time %d", r.MinTime, r.MaxTime)
	}
	ms, err := convertMatchers(r.Matchers, s.limits)
	if err != nil {
		return err
	}
	ms, ok := s.ext.splitExternal(ms)
	if !ok {
		return nil // an external label does not match: no series here
	}
	if len(ms) == 0 {
		ms = []*labels.Matcher{matchAll}
	}
	q, err := s.opts.Store.ChunkQueryable().ChunkQuerier(r.MinTime, r.MaxTime)
	if err != nil {
		return status.Errorf(codes.Unavailable, "open the store: %v", err)
	}
	defer q.Close()
	ext := s.ext.without(r.WithoutReplicaLabels)
	buffered, err := clashes(ctx, q, ms, ext, r.WithoutReplicaLabels)
	if err != nil {
		return status.Errorf(codes.Internal, "label names: %v", err)
	}
	hints := &storage.SelectHints{Start: r.MinTime, End: r.MaxTime, Limit: int(r.Limit), DisableTrimming: true}
	if r.SkipChunks {
		hints.Func = "series"
	}
	st := &seriesStream{
		s: s, r: r, ext: ext, b: labels.NewBuilder(labels.EmptyLabels()),
		order: newOrder(ext, buffered, func(resp *storepb.SeriesResponse) error {
			if err := srv.Send(resp); err != nil {
				return status.Errorf(codes.Aborted, "send series: %v", err)
			}
			return nil
		}),
	}
	if err := st.run(ctx, q.Select(ctx, true, hints, ms...)); err != nil {
		return err
	}
	return st.order.flush()
}

// seriesStream is the state of one Series call.
type seriesStream struct {
	s     *Server
	r     *storepb.SeriesRequest
	ext   labels.Labels // external labels minus without_replica_labels
	b     *labels.Builder
	order *order

	it      chunks.Iterator // reused across series
	series  int
	samples int
}

func (st *seriesStream) run(ctx context.Context, set storage.ChunkSeriesSet) error {
	for set.Next() {
		if ctx.Err() != nil {
			return ctxErr(ctx)
		}
		if st.r.Limit > 0 && int64(st.series) >= st.r.Limit {
			break // the client asked for at most limit series
		}
		if st.series++; st.series > st.s.limits.MaxSeries {
			return status.Errorf(codes.ResourceExhausted, "more than %d series selected: over the series limit of one Series request; narrow the matchers or the time range", st.s.limits.MaxSeries)
		}
		cs := set.At()
		src := cs.Labels()
		srcs := make([]labels.Label, 0, src.Len())
		src.Range(func(l labels.Label) { srcs = append(srcs, l) })
		// Send what the order allows before reading this series' chunks,
		// so that at most one series' chunks are held in the usual case.
		if err := st.order.next(srcs); err != nil {
			return err
		}
		out, resp, err := st.build(cs, src)
		if err != nil {
			return err
		}
		if err := st.order.push(srcs, out, resp); err != nil {
			return err
		}
	}
	if err := set.Err(); err != nil {
		if ctx.Err() != nil {
			return ctxErr(ctx)
		}
		return status.Errorf(codes.Internal, "select series: %v", err)
	}
	for _, w := range set.Warnings().AsErrors() {
		if err := st.order.sendNow(storepb.NewWarnSeriesResponse(w)); err != nil {
			return err
		}
	}
	return nil
}

// build is the response of one series: its labels as served and, unless
// skip_chunks, its chunks (copied: head chunks are only valid while the
// querier is open and may be appended to).
func (st *seriesStream) build(cs storage.ChunkSeries, src labels.Labels) (labels.Labels, *storepb.SeriesResponse, error) {
	out := apply(st.b, src, st.r.WithoutReplicaLabels, st.ext)
	ser := &storepb.Series{Labels: zlabels(out)}
	if !st.r.SkipChunks {
		st.it = cs.Iterator(st.it)
		for st.it.Next() {
			meta := st.it.At()
			if meta.Chunk == nil {
				return out, nil, status.Errorf(codes.Internal, "series %s: chunk %d not loaded", src, meta.Ref)
			}
			if st.samples += meta.Chunk.NumSamples(); st.samples > st.s.limits.MaxSamples {
				return out, nil, status.Errorf(codes.ResourceExhausted, "more than %d samples selected: over the sample limit of one Series request; narrow the matchers or the time range", st.s.limits.MaxSamples)
			}
			var err error
			if ser.Chunks, err = appendChunks(ser.Chunks, meta); err != nil {
				return out, nil, status.Errorf(codes.Internal, "series %s: %v", src, err)
			}
		}
		if err := st.it.Err(); err != nil {
			return out, nil, status.Errorf(codes.Internal, "series %s: read chunks: %v", src, err)
		}
	}
	if st.s.onBuild != nil {
		st.s.onBuild()
	}
	return out, storepb.NewSeriesResponse(ser), nil
}

// clashes reports whether a selected series may carry a label named like
// an external label or a without_replica_labels entry: then the labels as
// served no longer sort like the stored ones (order.go). It asks the
// index for every label name first (cheap) and only then for the names of
// the selected series.
func clashes(ctx context.Context, q storage.ChunkQuerier, ms []*labels.Matcher, ext labels.Labels, drop []string) (bool, error) {
	names := slices.Clone(drop)
	ext.Range(func(l labels.Label) { names = append(names, l.Name) })
	if len(names) == 0 {
		return false, nil
	}
	hit := func(have []string) bool {
		for _, n := range names {
			if _, ok := slices.BinarySearch(have, n); ok {
				return true
			}
		}
		return false
	}
	all, _, err := q.LabelNames(ctx, nil)
	if err != nil || !hit(all) {
		return false, err
	}
	sel, _, err := q.LabelNames(ctx, nil, ms...)
	if err != nil {
		return false, fmt.Errorf("of the selected series: %w", err)
	}
	return hit(sel), nil
}
