package storeapi

import (
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/thanos/pkg/store/storepb"
)

// order sends series responses sorted by the labels they are served with,
// while the TSDB yields them sorted by their stored labels.
//
// Adding the same external labels to every series keeps the order except
// between a series P and the series that extend it (P's labels and then
// more): P, stored first, is served after an extension X when X's first
// label past P sorts before the greatest external label name (E). The
// stored order puts P's extensions right after P, sorted by that label;
// so once a series arrives that does not extend P, or whose next label
// sorts after E, no later series is served before P. A series waits only
// while the next series extends it, and the common case holds one series
// (sent before the next one's chunks are read).
//
// This holds when no selected series carries a label named like an
// external label or a without_replica_labels entry (clashes): then labels
// are replaced or removed and any order may change, and the responses are
// buffered and sorted at the end, bounded by the request's series and
// sample limits (Thanos's own TSDB store buffers every Series answer).
type order struct {
	maxExt   string // the greatest served external label name ("": none)
	buffered bool
	send     func(*storepb.SeriesResponse) error

	pending []pendingSeries // sorted by out
}

type pendingSeries struct {
	src  []labels.Label // stored labels
	out  labels.Labels  // served labels
	resp *storepb.SeriesResponse
}

func newOrder(ext labels.Labels, buffered bool, send func(*storepb.SeriesResponse) error) *order {
	o := &order{buffered: buffered, send: send}
	ext.Range(func(l labels.Label) { o.maxExt = l.Name })
	return o
}

// next sends the pending series that no series from src (stored labels)
// on can precede.
func (o *order) next(src []labels.Label) error {
	if o.buffered {
		return nil
	}
	for len(o.pending) > 0 && o.closedBy(o.pending[0].src, src) {
		if err := o.pop(); err != nil {
			return err
		}
	}
	return nil
}

// push adds the response of the series stored as src and served as out;
// it is sent at once when nothing can precede it.
func (o *order) push(src []labels.Label, out labels.Labels, resp *storepb.SeriesResponse) error {
	p := pendingSeries{src: src, out: out, resp: resp}
	if o.buffered {
		o.pending = append(o.pending, p)
		return nil
	}
	i, _ := slices.BinarySearchFunc(o.pending, p, func(a, b pendingSeries) int { return labels.Compare(a.out, b.out) })
	o.pending = slices.Insert(o.pending, i, p)
	if i == 0 && (len(src) == 0 || src[len(src)-1].Name > o.maxExt) {
		return o.pop()
	}
	return nil
}

func (o *order) pop() error {
	p := o.pending[0]
	o.pending[0] = pendingSeries{}
	o.pending = o.pending[1:]
	return o.send(p.resp)
}

// flush sends what is left, sorted.
func (o *order) flush() error {
	if o.buffered {
		slices.SortStableFunc(o.pending, func(a, b pendingSeries) int { return labels.Compare(a.out, b.out) })
	}
	for len(o.pending) > 0 {
		if err := o.pop(); err != nil {
			return err
		}
	}
	return nil
}

// closedBy reports whether no series from x on (in stored order) is
// served before p.
func (o *order) closedBy(p, x []labels.Label) bool {
	if len(p) == 0 {
		return true
	}
	if len(x) <= len(p) || !slices.Equal(p, x[:len(p)]) {
		return true // x does not extend p, nor will any later series
	}
	return x[len(p)].Name > o.maxExt
}

// sendNow sends a response that is not a series (a warning) right away.
func (o *order) sendNow(resp *storepb.SeriesResponse) error { return o.send(resp) }
