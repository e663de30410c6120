package podscrapereceiver

import (
	"context"
	"errors"
	"math"
	"strconv"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"

	"github.com/weftobs/weft/internal/promappend"
)

// The native output: with appendables set, each scrape appends its samples
// straight to every listed storage.Appendable (weft_store,
// weft_remote_write), one transaction per appendable per target per
// scrape, as Prometheus's scrape loop does: no pdata in between. A
// successful scrape commits its samples, the stale markers of the series
// that went away and the scrape's own series; a failed one rolls back what
// it appended and commits, in a new transaction, stale markers for every
// series of the last successful scrape and up=0.
//
// A scrape's samples are staged while the body is parsed and reach the
// appendables only once it parsed whole within every per-target limit
// (sample_limit, label limits, body_size_limit): an appendable's Rollback
// drops samples but not the series an Append created (the TSDB head and
// the agent keep them until their next garbage collection), so a target
// over its limits would otherwise fill the node's series budget with
// series whose samples never count. The pdata output holds the same
// guarantee: nothing leaves the receiver from a failed scrape.
//
// Each series keeps one SeriesRef per appendable, from its first Append:
// later scrapes append by ref, so the appendable neither hashes nor
// compares the labels (Prometheus's scrape cache). The labels are kept
// beside the refs: an appendable whose head dropped the series recreates
// it from them.

// Reasons a sample (or a whole transaction) did not reach an appendable;
// the reason label of pod_scrape_append_failures_total.
const (
	appendReasonCommit     = "commit"
	appendReasonOutOfOrder = "out_of_order"
	appendReasonOutOfBound = "out_of_bounds"
	appendReasonTooOld     = "too_old"
	appendReasonDuplicate  = "duplicate"
	appendReasonRefused    = "refused" // the appendable's own refusal (window, series limit, closed)
	appendFailuresName     = "pod_scrape_append_failures_total"
)

// staleNaN is Prometheus's stale marker.
var staleNaN = math.Float64frombits(value.StaleNaN)

// nativeSeries is one series as appended to the appendables.
type nativeSeries struct {
	lset labels.Labels
	refs []storage.SeriesRef // one per appendable; 0 until the first Append
	seen uint64              // the last scrape that exposed it (native only)
}

// nativeOut is a target's native output: its appendables and the current
// scrape's transactions on them.
type nativeOut struct {
	names []string // component IDs, for counters and logs
	apps  []storage.Appendable
	cur   []storage.Appender // the open transactions; nil entries: none
	// pending counts the samples appended in the open transactions, per
	// appendable: all lost if its Commit fails.
	pending []int
	// split is how many new series a transaction of each appendable may
	// take before flush commits it and opens another (0: never; see
	// promappend.Splittable), created how many the open one holds.
	split, created []int
	// splitN is how many samples a transaction of each appendable may
	// take before flush commits it (0: never; see
	// promappend.SampleSplittable).
	splitN []int
	ctx    context.Context // of the open transactions
	// failures counts samples that did not reach an appendable, by
	// appendable and reason (kept for the target's life).
	failures map[appendFailure]float64
	// commitErr is the last failed commit of the scrape, for the status
	// page.
	commitErr error
	// staged are the scraped samples of the body being parsed, in
	// exposition order, and stagedEx their exemplars (a sample's are
	// stagedEx[prev.ex:ex]); flush hands them to the transactions.
	staged   []stagedSample
	stagedEx []exemplar.Exemplar
	// oversized counts the scrapes in a row that needed far less than
	// staged (0) and stagedEx (1) hold.
	oversized [2]int
}

// stagedSample is a scraped sample waiting for the scrape to succeed.
type stagedSample struct {
	s  *nativeSeries
	t  int64
	v  float64
	ex int // end of its exemplars in stagedEx
}

// appendFailure is a key of nativeOut.failures.
type appendFailure struct {
	app    int
	reason string
}

func newNativeOut(names []string, apps []storage.Appendable) *nativeOut {
	o := &nativeOut{
		names:    names,
		apps:     apps,
		cur:      make([]storage.Appender, len(apps)),
		pending:  make([]int, len(apps)),
		split:    make([]int, len(apps)),
		splitN:   make([]int, len(apps)),
		created:  make([]int, len(apps)),
		failures: map[appendFailure]float64{},
	}
	for i, a := range apps {
		o.split[i] = promappend.NewSeriesPerCommit(a)
		o.splitN[i] = promappend.SamplesPerCommit(a)
	}
	return o
}

// newSeries returns the native state of a new series.
func (o *nativeOut) newSeries(lset labels.Labels) *nativeSeries {
	return &nativeSeries{lset: lset, refs: make([]storage.SeriesRef, len(o.apps))}
}

// begin opens one transaction per appendable.
func (o *nativeOut) begin(ctx context.Context) {
	for i, a := range o.apps {
		o.cur[i] = a.Appender(ctx)
		o.pending[i], o.created[i] = 0, 0
	}
	o.ctx = ctx
	o.commitErr = nil
}

// rollback drops the open transactions and the staged samples.
func (o *nativeOut) rollback() {
	o.unstage()
	for i, app := range o.cur {
		if app != nil {
			_ = app.Rollback()
			o.cur[i] = nil
		}
	}
}

// commit commits every open transaction. A failed commit loses that
// appendable's samples only; it is counted (reason commit) and returned
// (the last one) for the status page and the log.
func (o *nativeOut) commit() error {
	for i, app := range o.cur {
		if app != nil {
			o.commitOne(i)
		}
	}
	return o.commitErr
}

// commitOne commits the open transaction of appendable i, counting its
// samples as lost (reason commit) if that fails.
func (o *nativeOut) commitOne(i int) {
	if err := o.cur[i].Commit(); err != nil {
		o.failures[appendFailure{i, appendReasonCommit}] += float64(o.pending[i])
		o.commitErr = &appendError{app: o.names[i], err: err}
	}
	o.cur[i] = nil
	o.pending[i], o.created[i] = 0, 0
}

// splitFull commits each splittable appendable's open transaction that
// holds its share of new series, and opens the next.
func (o *nativeOut) splitFull() {
	for i, n := range o.split {
		if o.cur[i] != nil && (n > 0 && o.created[i] >= n || o.splitN[i] > 0 && o.pending[i] >= o.splitN[i]) {
			o.commitOne(i)
			o.cur[i] = o.apps[i].Appender(o.ctx)
		}
	}
}

// appendError is a failed commit to one appendable.
type appendError struct {
	app string
	err error
}

func (e *appendError) Error() string { return "commit to " + e.app + ": " + e.err.Error() }
func (e *appendError) Unwrap() error { return e.err }

// append appends one float sample of s to every open transaction. A
// sample an appendable refuses is counted by reason; the others still get
// it.
func (o *nativeOut) append(s *nativeSeries, t int64, v float64) {
	for i, app := range o.cur {
		if app == nil {
			continue
		}
		ref, err := app.Append(s.refs[i], s.lset, t, v)
		if err != nil {
			o.failures[appendFailure{i, appendReason(err)}]++
			continue
		}
		if s.refs[i] == 0 {
			o.created[i]++
		}
		s.refs[i] = ref
		o.pending[i]++
	}
}

// stage keeps a scraped sample and its exemplars (copied: exs is reused)
// until the scrape is known to succeed.
func (o *nativeOut) stage(s *nativeSeries, t int64, v float64, exs []exemplar.Exemplar) {
	o.stagedEx = appendDoubling(o.stagedEx, exs...)
	o.staged = appendDoubling(o.staged, stagedSample{s: s, t: t, v: v, ex: len(o.stagedEx)})
}

// appendDoubling appends vs to buf, doubling buf's capacity when it is
// full. append grows a large slice by a quarter at a time, which for the
// staging buffers of a first scrape of 100k series allocates ~5 times
// their final size in all (~17 MB of garbage when its exemplars come);
// doubling allocates twice it.
func appendDoubling[T any](buf []T, vs ...T) []T {
	if n := len(buf) + len(vs); n > cap(buf) {
		nb := make([]T, len(buf), max(2*cap(buf), n, 64))
		copy(nb, buf)
		buf = nb
	}
	return append(buf, vs...)
}

// flush appends the staged samples, in order, to the open transactions,
// committing a splittable appendable's each time it holds its share of
// new series (a sample and its exemplars stay in one transaction).
func (o *nativeOut) flush() {
	ex := 0
	for _, st := range o.staged {
		o.appendSample(st.s, st.t, st.v, o.stagedEx[ex:st.ex])
		ex = st.ex
		o.splitFull()
	}
	o.unstage()
}

// unstage empties the staging buffers, keeping their memory for the next
// scrape unless they held far more than needed for shrinkAfter scrapes in
// a row (a target that shrank, or one failed scrape of a huge body). One
// small scrape does not drop them: a target whose exemplars come every
// other scrape would grow the exemplar buffer again each time.
func (o *nativeOut) unstage() {
	n := len(o.staged)
	if n == 0 {
		return // already emptied (a rollback after the flush)
	}
	o.staged = reuse(o.staged, n, &o.oversized[0])
	o.stagedEx = reuse(o.stagedEx, len(o.stagedEx), &o.oversized[1])
}

// shrinkAfter is how many scrapes in a row a staging buffer may hold over
// four times what they needed before it is dropped.
const shrinkAfter = 8

// reuse empties buf (clearing what it referenced) and returns it for the
// next scrape, or nil once it has been oversized (over 4096 entries and
// over 4×used) for shrinkAfter calls in a row, which runs counts.
func reuse[T any](buf []T, used int, runs *int) []T {
	clear(buf)
	buf = buf[:0]
	if cap(buf) <= 4096 || cap(buf) <= 4*used {
		*runs = 0
		return buf
	}
	if *runs++; *runs < shrinkAfter {
		return buf
	}
	*runs = 0
	return nil
}

// appendSample appends a scraped sample and its exemplars.
func (o *nativeOut) appendSample(s *nativeSeries, t int64, v float64, exs []exemplar.Exemplar) {
	o.append(s, t, v)
	if len(exs) == 0 {
		return
	}
	for i, app := range o.cur {
		if app == nil || s.refs[i] == 0 {
			continue
		}
		for _, e := range exs {
			// Out-of-order and duplicate exemplars are normal (the same
			// exemplar exposed scrape after scrape); Prometheus ignores
			// them too.
			_, _ = app.AppendExemplar(s.refs[i], s.lset, e)
		}
	}
}

// appendStale appends the stale marker of s at t.
func (o *nativeOut) appendStale(s *nativeSeries, t int64) { o.append(s, t, staleNaN) }

func appendReason(err error) string {
	switch {
	case errors.Is(err, storage.ErrOutOfOrderSample):
		return appendReasonOutOfOrder
	case errors.Is(err, storage.ErrOutOfBounds):
		return appendReasonOutOfBound
	case errors.Is(err, storage.ErrTooOldSample):
		return appendReasonTooOld
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return appendReasonDuplicate
	}
	return appendReasonRefused
}

// nativeLabels returns the labels of a new series, from a.lb (the exposed
// labels with the target's, after metric relabeling): the labels the pdata
// output's series get in weft_store, and Prometheus stores. A bucket's le
// (a quantile's quantile) is written as exposed: the parser hands it out
// normalised ("1.0" for an exposed "1").
func (a *appender) nativeLabels(role sampleRole, bound float64, met []byte) labels.Labels {
	name := ""
	switch role {
	case roleBucket:
		name = model.BucketLabel
	case roleQuantile:
		name = model.QuantileLabel
	default:
		return a.lb.Labels()
	}
	switch {
	case math.IsInf(bound, 1):
		a.lb.Set(name, "+Inf")
	case math.IsInf(bound, -1), math.IsNaN(bound):
	default:
		text := strconv.FormatFloat(bound, 'g', -1, 64)
		if raw, ok := rawLabelValue(met, name); ok {
			text = raw
		}
		a.lb.Set(name, text)
	}
	return a.lb.Labels()
}

// selfSeries returns the native series of a per-target self metric: the
// target's labels, name and extra label pairs.
func (t *target) selfSeries(name string, extra ...string) *nativeSeries {
	b := labels.NewBuilder(t.app.targetLabels)
	b.Set(model.MetricNameLabel, name)
	for i := 0; i+1 < len(extra); i += 2 {
		b.Set(extra[i], extra[i+1])
	}
	return t.out.newSeries(b.Labels())
}

// appendSelfNative appends the scrape's own series at tms (values in
// selfGauges' order) and the failure counters, with the target's labels
// as Prometheus gives them.
func (t *target) appendSelfNative(tms int64, values []float64) {
	for i, name := range selfGauges {
		if t.self[i] == nil {
			t.self[i] = t.selfSeries(name)
		}
		t.out.append(t.self[i], tms, values[i])
	}
	for reason, n := range t.failures {
		s := t.failed[reason]
		if s == nil {
			if t.failed == nil {
				t.failed = map[string]*nativeSeries{}
			}
			s = t.selfSeries(failuresMetricName, "reason", reason)
			t.failed[reason] = s
		}
		t.out.append(s, tms, n)
	}
	for k, n := range t.out.failures {
		s := t.appendFailed[k]
		if s == nil {
			if t.appendFailed == nil {
				t.appendFailed = map[appendFailure]*nativeSeries{}
			}
			s = t.selfSeries(appendFailuresName, "appendable", t.out.names[k.app], "reason", k.reason)
			t.appendFailed[k] = s
		}
		t.out.append(s, tms, n)
	}
}
