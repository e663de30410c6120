package storeapi

import (
	"fmt"
	"slices"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/thanos/pkg/store/labelpb"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// extLabels are the external labels, sorted by name.
type extLabels struct {
	lset  labels.Labels
	names []string // sorted
}

func newExtLabels(lset labels.Labels) extLabels {
	e := extLabels{lset: lset}
	lset.Range(func(l labels.Label) { e.names = append(e.names, l.Name) })
	return e
}

// without returns the external labels minus the names in drop (a
// request's without_replica_labels).
func (e extLabels) without(drop []string) labels.Labels {
	if len(drop) == 0 {
		return e.lset
	}
	b := labels.NewBuilder(e.lset)
	for _, n := range drop {
		b.Del(n)
	}
	return b.Labels()
}

// apply returns series labels ls with the names in drop removed and ext
// set, overriding a series label of the same name, as Thanos's TSDB store
// serves its series. b is reused.
func apply(b *labels.Builder, ls labels.Labels, drop []string, ext labels.Labels) labels.Labels {
	b.Reset(ls)
	for _, n := range drop {
		b.Del(n)
	}
	ext.Range(func(l labels.Label) { b.Set(l.Name, l.Value) })
	return b.Labels()
}

// zlabels converts labels into the wire type, copying nothing: the
// strings are ls's (labelpb's own converters assume a different memory
// layout of labels.Labels).
func zlabels(ls labels.Labels) []labelpb.ZLabel {
	out := make([]labelpb.ZLabel, 0, ls.Len())
	ls.Range(func(l labels.Label) { out = append(out, labelpb.ZLabel{Name: l.Name, Value: l.Value}) })
	return out
}

func zlabelSet(ls labels.Labels) labelpb.ZLabelSet { return labelpb.ZLabelSet{Labels: zlabels(ls)} }

// matcherTypes maps the wire matcher types to Prometheus's.
var matcherTypes = map[storepb.LabelMatcher_Type]labels.MatchType{
	storepb.LabelMatcher_EQ:  labels.MatchEqual,
	storepb.LabelMatcher_NEQ: labels.MatchNotEqual,
	storepb.LabelMatcher_RE:  labels.MatchRegexp,
	storepb.LabelMatcher_NRE: labels.MatchNotRegexp,
}

// convertMatchers turns request matchers into Prometheus matchers within
// the limits; errors are InvalidArgument statuses that name the limit or
// the matcher.
func convertMatchers(ms []storepb.LabelMatcher, lim Limits) ([]*labels.Matcher, error) {
	if len(ms) > lim.MaxMatchers {
		return nil, status.Errorf(codes.InvalidArgument, "%d matchers: more than the limit of %d matchers per request", len(ms), lim.MaxMatchers)
	}
	out := make([]*labels.Matcher, 0, len(ms))
	for _, m := range ms {
		t, ok := matcherTypes[m.Type]
		if !ok {
			return nil, status.Errorf(codes.InvalidArgument, "matcher on %q: unknown type %d", m.Name, m.Type)
		}
		pm, err := newMatcher(t, m.Name, m.Value, lim)
		if err != nil {
			return nil, err
		}
		out = append(out, pm)
	}
	return out, nil
}

// newMatcher builds one matcher, refusing a regular expression longer
// than the limit before compiling it.
func newMatcher(t labels.MatchType, name, value string, lim Limits) (*labels.Matcher, error) {
	if (t == labels.MatchRegexp || t == labels.MatchNotRegexp) && len(value) > lim.MaxRegexLength {
		return nil, status.Errorf(codes.InvalidArgument, "matcher on %q: regular expression of %d bytes is longer than the limit of %d bytes", name, len(value), lim.MaxRegexLength)
	}
	m, err := labels.NewMatcher(t, name, value)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "matcher %s: %v", fmt.Sprintf("%s%s%q", name, t, value), err)
	}
	return m, nil
}

// checkLimits refuses already-built matchers beyond the limits (the
// exemplars query's selectors, parsed by PromQL's parser).
func checkLimits(ms []*labels.Matcher, lim Limits) error {
	if len(ms) > lim.MaxMatchers {
		return status.Errorf(codes.InvalidArgument, "selector with %d matchers: more than the limit of %d matchers per selector", len(ms), lim.MaxMatchers)
	}
	for _, m := range ms {
		if (m.Type == labels.MatchRegexp || m.Type == labels.MatchNotRegexp) && len(m.Value) > lim.MaxRegexLength {
			return status.Errorf(codes.InvalidArgument, "matcher on %q: regular expression of %d bytes is longer than the limit of %d bytes", m.Name, len(m.Value), lim.MaxRegexLength)
		}
	}
	return nil
}

// matchAll selects every series: what is left of a selector whose only
// matchers were on external labels.
var matchAll = labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".*")

// splitExternal checks the matchers on external label names against the
// external values and drops them. ok is false when one does not match:
// this node has none of the selected series.
func (e extLabels) splitExternal(ms []*labels.Matcher) (rest []*labels.Matcher, ok bool) {
	rest = make([]*labels.Matcher, 0, len(ms))
	for _, m := range ms {
		if !slices.Contains(e.names, m.Name) {
			rest = append(rest, m)
			continue
		}
		if !m.Matches(e.lset.Get(m.Name)) {
			return nil, false
		}
	}
	return rest, true
}
