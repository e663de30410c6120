package storeapi

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/thanos/pkg/store/storepb"
)

// TestOrderRandom feeds random label sets in stored order (with external
// label names between and around theirs) and checks that they come out
// sorted as served, and that only prefixes of the current series wait.
func TestOrderRandom(t *testing.T) {
	names := []string{"__name__", "a", "b", "c", "cluster_x", "d", "mode", "nod", "zone"}
	for _, ext := range []labels.Labels{
		labels.EmptyLabels(),
		labels.FromStrings("node", "n1"),
		labels.FromStrings("cluster", "c1", "node", "n1"),
		labels.FromStrings("b0", "x"),
		labels.FromStrings("zzz", "x"),
		labels.FromStrings("A", "x"),
	} {
		rng := rand.New(rand.NewPCG(1, uint64(ext.Len())))
		for range 200 {
			seen := map[string]bool{}
			var in []labels.Labels
			for range 1 + rng.IntN(60) {
				b := labels.NewScratchBuilder(0)
				b.Add("__name__", []string{"m", "n"}[rng.IntN(2)])
				for _, n := range names[1:] {
					if rng.IntN(3) == 0 {
						b.Add(n, []string{"1", "2"}[rng.IntN(2)])
					}
				}
				b.Sort()
				ls := b.Labels()
				if !seen[ls.String()] {
					seen[ls.String()] = true
					in = append(in, ls)
				}
			}
			slices.SortFunc(in, labels.Compare)
			checkOrder(t, in, ext)
		}
	}
}

func checkOrder(t *testing.T, in []labels.Labels, ext labels.Labels) {
	t.Helper()
	var got []labels.Labels
	o := newOrder(ext, false, func(r *storepb.SeriesResponse) error {
		got = append(got, seriesLabels(r.GetSeries()))
		return nil
	})
	b := labels.NewBuilder(labels.EmptyLabels())
	for _, ls := range in {
		var src []labels.Label
		ls.Range(func(l labels.Label) { src = append(src, l) })
		require.NoError(t, o.next(src))
		for _, p := range o.pending {
			require.True(t, len(p.src) < len(src) && slices.Equal(p.src, src[:len(p.src)]), "only prefixes of the next series wait")
		}
		out := apply(b, ls, nil, ext)
		require.NoError(t, o.push(src, out, &storepb.SeriesResponse{Result: &storepb.SeriesResponse_Series{Series: &storepb.Series{Labels: zlabels(out)}}}))
	}
	require.NoError(t, o.flush())
	want := make([]labels.Labels, 0, len(in))
	for _, ls := range in {
		want = append(want, apply(b, ls, nil, ext))
	}
	slices.SortFunc(want, labels.Compare)
	require.Equal(t, want, got, "ext %s", ext)
}
