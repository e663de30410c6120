package storeapi

import (
	"testing"

	"github.com/thanos-io/thanos/pkg/exemplars/exemplarspb"
	"github.com/thanos-io/thanos/pkg/info/infopb"
	"github.com/thanos-io/thanos/pkg/rules/rulespb"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"google.golang.org/grpc/mem"
)

// seedRequests are real requests as Thanos Query sends them.
func seedRequests() []gogoMessage {
	ms := []storepb.LabelMatcher{
		{Type: storepb.LabelMatcher_EQ, Name: "__name__", Value: "up"},
		{Type: storepb.LabelMatcher_RE, Name: "job", Value: "a|b.*"},
		{Type: storepb.LabelMatcher_NEQ, Name: "node", Value: "n2"},
		{Type: storepb.LabelMatcher_NRE, Name: "zone", Value: ""},
	}
	return []gogoMessage{
		&storepb.SeriesRequest{MinTime: 1, MaxTime: 1 << 40, Matchers: ms, Aggregates: []storepb.Aggr{storepb.Aggr_COUNT, storepb.Aggr_SUM},
			MaxResolutionWindow: 300000, SkipChunks: true, WithoutReplicaLabels: []string{"replica"}, Limit: 10,
			QueryHints: &storepb.QueryHints{StepMillis: 30000, Func: &storepb.Func{Name: "rate"}}},
		&storepb.LabelNamesRequest{Start: 1, End: 2, Matchers: ms, WithoutReplicaLabels: []string{"replica"}},
		&storepb.LabelValuesRequest{Label: "job", Start: 1, End: 2, Matchers: ms},
		&infopb.InfoRequest{},
		&rulespb.RulesRequest{Type: rulespb.RulesRequest_ALERT, MatcherString: []string{`{severity="page"}`}, RuleName: []string{"x"}},
		&exemplarspb.ExemplarsRequest{Query: `rate(req{job="a"}[5m])`, Start: 1, End: 2},
	}
}

// FuzzRequestDecoding decodes arbitrary bytes through the server's codec
// into every request type, and converts the matchers a Series,
// LabelNames or LabelValues request carries: nothing may panic, and the
// limits hold whatever the bytes say.
func FuzzRequestDecoding(f *testing.F) {
	for _, m := range seedRequests() {
		b, err := codec{}.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b.Materialize())
	}
	lim := Limits{MaxMatchers: 8, MaxRegexLength: 64}.withDefaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		in := mem.BufferSlice{mem.SliceBuffer(data)}
		var (
			sr storepb.SeriesRequest
			ln storepb.LabelNamesRequest
			lv storepb.LabelValuesRequest
		)
		for _, m := range []gogoMessage{&infopb.InfoRequest{}, &rulespb.RulesRequest{}, &exemplarspb.ExemplarsRequest{}} {
			_ = codec{}.Unmarshal(in, m)
		}
		for _, c := range []struct {
			m  gogoMessage
			ms func() []storepb.LabelMatcher
		}{{&sr, func() []storepb.LabelMatcher { return sr.Matchers }}, {&ln, func() []storepb.LabelMatcher { return ln.Matchers }}, {&lv, func() []storepb.LabelMatcher { return lv.Matchers }}} {
			if err := (codec{}).Unmarshal(in, c.m); err != nil {
				continue
			}
			out, err := convertMatchers(c.ms(), lim)
			if err != nil {
				continue
			}
			if len(out) > lim.MaxMatchers {
				t.Fatalf("%d matchers passed the limit of %d", len(out), lim.MaxMatchers)
			}
			// What was decoded encodes again.
			if _, err := (codec{}).Marshal(c.m); err != nil {
				t.Fatalf("re-encode %T: %v", c.m, err)
			}
		}
	})
}
