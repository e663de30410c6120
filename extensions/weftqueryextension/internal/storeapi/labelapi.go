package storeapi

import (
	"context"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// labelQuery is what LabelNames and LabelValues share: matchers checked
// against the external labels, a querier over [start, end].
func (s *Server) labelQuery(start, end int64, wire []storepb.LabelMatcher) (storage.ChunkQuerier, []*labels.Matcher, bool, error) {
	if start > end {
		return nil, nil, false, status.Errorf(codes.InvalidArgument, "start %d is after end %d", start, end)
	}
	ms, err := convertMatchers(wire, s.limits)
	if err != nil {
		return nil, nil, false, err
	}
	ms, ok := s.ext.splitExternal(ms)
	if !ok {
		return nil, nil, false, nil
	}
	q, err := s.opts.Store.ChunkQueryable().ChunkQuerier(start, end)
	if err != nil {
		return nil, nil, false, status.Errorf(codes.Unavailable, "open the store: %v", err)
	}
	return q, ms, true, nil
}

// LabelNames answers the label names of the selected series with the
// external label names (minus without_replica_labels) when any series is
// selected.
func (ss storeServer) LabelNames(ctx context.Context, r *storepb.LabelNamesRequest) (*storepb.LabelNamesResponse, error) {
	q, ms, ok, err := ss.s.labelQuery(r.Start, r.End, r.Matchers)
	if err != nil || !ok {
		return &storepb.LabelNamesResponse{}, err
	}
	defer q.Close()
	names, warns, err := q.LabelNames(ctx, &storage.LabelHints{Limit: int(r.Limit)}, ms...)
	if err != nil {
		return nil, queryErr(ctx, "label names", err)
	}
	names = slices.DeleteFunc(names, func(n string) bool { return slices.Contains(r.WithoutReplicaLabels, n) })
	if len(names) > 0 {
		ss.s.ext.lset.Range(func(l labels.Label) {
			if !slices.Contains(r.WithoutReplicaLabels, l.Name) {
				names = append(names, l.Name)
			}
		})
		slices.Sort(names)
		names = slices.Compact(names)
	}
	if r.Limit > 0 && int64(len(names)) > r.Limit {
		names = names[:r.Limit]
	}
	return &storepb.LabelNamesResponse{Names: cloneAll(names), Warnings: warnings(warns)}, nil
}

// LabelValues answers the values of one label over the selected series;
// for an external label, its value when any series is selected.
func (ss storeServer) LabelValues(ctx context.Context, r *storepb.LabelValuesRequest) (*storepb.LabelValuesResponse, error) {
	if r.Label == "" {
		return nil, status.Error(codes.InvalidArgument, "label: must name a label, got empty")
	}
	if slices.Contains(r.WithoutReplicaLabels, r.Label) {
		return &storepb.LabelValuesResponse{}, nil
	}
	q, ms, ok, err := ss.s.labelQuery(r.Start, r.End, r.Matchers)
	if err != nil || !ok {
		return &storepb.LabelValuesResponse{}, err
	}
	defer q.Close()
	if v := ss.s.ext.lset.Get(r.Label); v != "" {
		if len(ms) == 0 {
			ms = []*labels.Matcher{matchAll}
		}
		set := q.Select(ctx, false, &storage.SelectHints{Start: r.Start, End: r.End, Func: "series", Limit: 1}, ms...)
		if set.Next() {
			return &storepb.LabelValuesResponse{Values: []string{v}}, nil
		}
		if err := set.Err(); err != nil {
			return nil, queryErr(ctx, "select series", err)
		}
		return &storepb.LabelValuesResponse{}, nil
	}
	vals, warns, err := q.LabelValues(ctx, r.Label, &storage.LabelHints{Limit: int(r.Limit)}, ms...)
	if err != nil {
		return nil, queryErr(ctx, "label values", err)
	}
	return &storepb.LabelValuesResponse{Values: cloneAll(vals), Warnings: warnings(warns)}, nil
}

// cloneAll copies strings that may point into the TSDB's memory, which
// the querier's Close lets go.
func cloneAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.Clone(s)
	}
	return out
}

func warnings(a annotations.Annotations) []string {
	var out []string
	for _, w := range a.AsErrors() {
		out = append(out, w.Error())
	}
	return out
}

// queryErr is the status of a failed store read: the context's when it
// ended, else Internal.
func queryErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return ctxErr(ctx)
	}
	return status.Errorf(codes.Internal, "%s: %v", what, err)
}
