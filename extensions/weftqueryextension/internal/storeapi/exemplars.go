package storeapi

import (
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/thanos-io/thanos/pkg/exemplars/exemplarspb"
	"github.com/thanos-io/thanos/pkg/store/labelpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type exemplarsServer struct{ s *Server }

// Exemplars answers the exemplars of the series the query's selectors
// select over [start, end], as Prometheus's /api/v1/query_exemplars
// does, one response per series, its labels with the external labels.
// Selectors whose external-label matchers do not match are left out.
func (es exemplarsServer) Exemplars(r *exemplarspb.ExemplarsRequest, srv exemplarspb.Exemplars_ExemplarsServer) error {
	s, ctx := es.s, srv.Context()
	if r.Start > r.End {
		return status.Errorf(codes.InvalidArgument, "start %d is after end %d", r.Start, r.End)
	}
	sets, err := s.exemplarSelectors(r.Query)
	if err != nil || len(sets) == 0 {
		return err
	}
	q, err := s.opts.Store.ExemplarQueryable().ExemplarQuerier(ctx)
	if err != nil {
		return status.Errorf(codes.Unavailable, "open the exemplar store: %v", err)
	}
	res, err := q.Select(r.Start, r.End, sets...)
	if err != nil {
		return queryErr(ctx, "select exemplars", err)
	}
	b := labels.NewBuilder(labels.EmptyLabels())
	for _, qr := range res {
		if ctx.Err() != nil {
			return ctxErr(ctx)
		}
		d := &exemplarspb.ExemplarData{SeriesLabels: zlabelSet(apply(b, qr.SeriesLabels, nil, s.ext.lset))}
		for _, e := range qr.Exemplars {
			d.Exemplars = append(d.Exemplars, &exemplarspb.Exemplar{
				Labels: labelpb.ZLabelSet{Labels: zlabels(e.Labels)}, Value: e.Value, Ts: e.Ts,
			})
		}
		if err := srv.Send(&exemplarspb.ExemplarsResponse{Result: &exemplarspb.ExemplarsResponse_Data{Data: d}}); err != nil {
			return status.Errorf(codes.Aborted, "send exemplars: %v", err)
		}
	}
	return nil
}

// exemplarSelectors parses the query and returns its selectors with the
// external-label matchers checked and dropped; a selector left without
// matchers selects every series.
func (s *Server) exemplarSelectors(query string) ([][]*labels.Matcher, error) {
	if len(query) > s.limits.MaxRegexLength {
		return nil, status.Errorf(codes.InvalidArgument, "query of %d bytes is longer than the limit of %d bytes", len(query), s.limits.MaxRegexLength)
	}
	expr, err := s.opts.Parser.ParseExpr(query)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "query: %v", err)
	}
	var out [][]*labels.Matcher
	for _, ms := range parser.ExtractSelectors(expr) {
		if err := checkLimits(ms, s.limits); err != nil {
			return nil, err
		}
		rest, ok := s.ext.splitExternal(ms)
		if !ok {
			continue
		}
		if len(rest) == 0 {
			rest = []*labels.Matcher{matchAll}
		}
		out = append(out, rest)
	}
	return out, nil
}
