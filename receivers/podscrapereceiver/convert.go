package podscrapereceiver

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/model/textparse"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// ExposedBoundsKey is the pdata metric metadata key under which pod_scrape
// puts the exposed text of bucket and quantile bounds that Go's shortest
// 'g' formatting would write differently: a map from the 'g' form to the
// exposed one.
const ExposedBoundsKey = "weft.prometheus.exposed_bounds"

// metricKind is the pdata shape a Prometheus metric family becomes.
type metricKind uint8

const (
	kindGauge metricKind = iota
	kindCounter
	kindHistogram
	kindSummary
)

// sampleRole is the part of a data point one exposed sample carries.
type sampleRole uint8

const (
	roleValue sampleRole = iota
	roleBucket
	roleSum
	roleCount
	roleQuantile
)

// Reasons a scrape fails; they are the reason attribute of
// pod_scrape_failures_total and the reason field of the log line.
const (
	reasonConnection   = "connection"
	reasonTimeout      = "timeout"
	reasonTLS          = "tls"
	reasonHTTPStatus   = "http_status"
	reasonBodySize     = "body_size_limit"
	reasonSampleLimit  = "sample_limit"
	reasonLabelLimit   = "label_limit"
	reasonNameLength   = "label_name_length_limit"
	reasonValueLength  = "label_value_length_limit"
	reasonParse        = "parse"
	reasonDuplicate    = "duplicate_series"
	reasonContentType  = "content_type"
	reasonDecompress   = "decompress"
	reasonLineTooLong  = "line_too_long"
	scopeName          = "github.com/weftobs/weft/receivers/podscrapereceiver"
	failuresMetricName = "pod_scrape_failures_total"
)

// scrapeError is a failed scrape with its reason.
type scrapeError struct {
	reason string
	err    error
}

func (e *scrapeError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *scrapeError) Unwrap() error { return e.err }

func failf(reason, format string, args ...any) error {
	return &scrapeError{reason: reason, err: fmt.Errorf(format, args...)}
}

// metricState is one pdata metric of a target, kept across scrapes.
type metricState struct {
	name string
	help string
	kind metricKind
	// boundTexts are the le (or quantile) values exposed in another form
	// than Go's shortest 'g' one (Envoy writes 1800000 where Go writes
	// 1.8e+06), by their 'g' form. They travel in the pdata metric's
	// metadata (ExposedBoundsKey), so that weft_store stores the label
	// Prometheus stores.
	boundTexts map[string]string
	// metaLen is how many boundTexts the current output metric carries.
	metaLen int
	// iter is the scrape in which m was appended to the output.
	iter uint64
	m    pmetric.Metric
}

// pointState is one pdata data point (a series, or a histogram/summary
// label set) of a target, kept across scrapes for start times and staleness.
type pointState struct {
	metric *metricState
	attrs  pcommon.Map
	// start is the start time in ms; last the previous counter value (or
	// histogram/summary count) for reset detection; lastTs its timestamp.
	start  int64
	last   float64
	lastTs int64
	// lastSeen is the last scrape that touched the point; okSeen the last
	// successful scrape that emitted it.
	lastSeen uint64
	okSeen   uint64

	// Current scrape.
	ts      int64
	created int64
	num     pmetric.NumberDataPoint
	hist    pmetric.HistogramDataPoint
	summ    pmetric.SummaryDataPoint
	bounds  []float64
	cum     []float64
	// okBounds are the histogram bounds (or summary quantiles) last
	// emitted: a stale marker repeats them so that every bucket (quantile)
	// series ends.
	okBounds  []float64
	infCount  float64
	hasInf    bool
	sum       float64
	count     float64
	hasCount  bool
	hasSample bool
}

// seriesEntry caches what one exposed series (by its raw text) maps to.
// It is kept small (64 bytes): a mesh sidecar exposes tens of thousands of
// series, and the native path keeps one entry per series and nothing else
// of the pdata output.
type seriesEntry struct {
	// native is the series as appended to the appendables (nil without
	// appendables, and for dropped and over-limit series).
	native   *nativeSeries
	lastSeen uint64
	// key identifies the series' raw text: a.series's key for it.
	key textKey
	// overLimit fails every scrape that exposes the series: its labels
	// break a label limit.
	overLimit error
	// pd is the series' place in the pdata output (nil without pdata, and
	// for dropped and over-limit series).
	pd      *pdataEntry
	role    sampleRole
	dropped bool
}

// pdataEntry is what a series needs to build its pdata point every scrape.
type pdataEntry struct {
	point *pointState
	bound float64
	// createdFor are the texts of the series whose start time this
	// _created series gives (a counter's _total or bare sample, a
	// histogram's or summary's _count), tried in order.
	createdFor []textKey
}

// textKey identifies a series by its raw text: two 64-bit hashes of it
// under seeds of the target's own (hash/maphash), so that a target keeps
// 16 bytes per series instead of its text (some hundred bytes for a
// mesh sidecar's series) and a target cannot craft texts that collide
// (the seeds are random per process and target). Two different texts
// share a key with a probability of about n²/2¹²⁹ for n series: nil for
// any target.
type textKey [2]uint64

// keyOf returns the key of a series' raw text.
func (a *appender) keyOf(text []byte) textKey {
	return textKey{maphash.Bytes(a.seeds[0], text), maphash.Bytes(a.seeds[1], text)}
}

// scrapeLimits are a job's per-scrape limits, with Prometheus's semantics:
// a scrape that breaks one fails whole (up=0, reason), 0 is no limit.
type scrapeLimits struct {
	honorTimestamps bool
	sample          int
	labels          int // series' labels, __name__ included
	nameLength      int // bytes of a label name
	valueLength     int // bytes of a label value
}

// check returns the first limit lset breaks, nil if none.
func (l scrapeLimits) check(lset labels.Labels) error {
	name := lset.Get(model.MetricNameLabel)
	if l.labels > 0 && lset.Len() > l.labels {
		return failf(reasonLabelLimit, "series %.80s has %d labels, label_limit is %d", name, lset.Len(), l.labels)
	}
	if l.nameLength <= 0 && l.valueLength <= 0 {
		return nil
	}
	var err error
	lset.Range(func(lb labels.Label) {
		switch {
		case err != nil:
		case l.nameLength > 0 && len(lb.Name) > l.nameLength:
			err = failf(reasonNameLength, "series %.80s has label name %.80q of %d bytes, label_name_length_limit is %d", name, lb.Name, len(lb.Name), l.nameLength)
		case l.valueLength > 0 && len(lb.Value) > l.valueLength:
			err = failf(reasonValueLength, "series %.80s has label %s with a value of %d bytes, label_value_length_limit is %d", name, lb.Name, len(lb.Value), l.valueLength)
		}
	})
	return err
}

// appender turns exposition bodies of one target into pdata, keeping the
// per-series state that start times and staleness need.
type appender struct {
	honorLabels   bool
	limits        scrapeLimits
	metricRelabel []*relabel.Config
	targetLabels  labels.Labels
	job, instance string

	series map[textKey]*seriesEntry
	// nativeIDs finds the native state of a label set (native only).
	nativeIDs map[uint64]*nativeSeries
	seeds     [2]maphash.Seed // of the series keys
	points    map[uint64]*pointState
	metrics   map[string]*metricState
	iter      uint64
	lastOK    uint64
	touched   []*pointState

	// Targets expose their series in the same order every scrape: the
	// previous successful scrape's entries (order) let the next one find
	// most entries by position, comparing each series' key with the
	// entry's instead of looking it up in the map. While a scrape
	// matches them, nothing is copied; from the first difference on, a new
	// order is built (nextOrder) and replaces it if the scrape succeeds.
	order, nextOrder []*seriesEntry

	// cur is the scrape being parsed.
	cur parseState
	// fmtCT and fmt cache the body format of the last content type.
	fmtCT  string
	fmt    bodyFormat
	hasFmt bool
	// typeLine is the TYPE line re-emitted at the start of a chunk.
	typeLine []byte

	symbols *labels.SymbolTable
	lbls    labels.Labels
	lb      *labels.Builder
	ex      exemplar.Exemplar
	// exLabels builds the labels of OpenMetrics exemplars (omExemplar).
	exLabels labels.ScratchBuilder
	// exs are the current sample's exemplars, read once for both outputs.
	exs []exemplar.Exemplar

	// pdata: build the pdata output (false only with appendables).
	pdata bool
	// out is the native output: the scrape's transactions on the
	// appendables (nil: none configured).
	out *nativeOut
}

func newAppender(targetLabels labels.Labels, honorLabels bool, limits scrapeLimits, metricRelabel []*relabel.Config) *appender {
	return &appender{
		honorLabels:   honorLabels,
		limits:        limits,
		metricRelabel: metricRelabel,
		targetLabels:  targetLabels,
		job:           targetLabels.Get(model.JobLabel),
		instance:      targetLabels.Get(model.InstanceLabel),
		series:        map[textKey]*seriesEntry{},
		nativeIDs:     map[uint64]*nativeSeries{},
		seeds:         [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		points:        map[uint64]*pointState{},
		metrics:       map[string]*metricState{},
		symbols:       labels.NewSymbolTable(),
		lb:            labels.NewBuilder(labels.EmptyLabels()),
		exLabels:      labels.NewScratchBuilder(4),
		pdata:         true,
	}
}

// parseStats are the counts of one scrape.
type parseStats struct {
	scraped      int
	postRelabel  int
	added        int // series seen for the first time (scrape_series_added)
	staleEmitted int
}

// parseState is one scrape's parse in progress, carried from chunk to chunk
// of a streamed body: the counts, whether the position data diverged, and
// the family the last TYPE/HELP lines declared.
type parseState struct {
	ms       pmetric.MetricSlice
	st       parseStats
	nowMs    int64
	useST    bool
	diverged bool
	typed    bool // a TYPE entry was seen
	family   []byte
	famType  model.MetricType
	help     []byte
	helpFor  []byte
	// sentinel is the first byte of the comment line that ends a
	// Prometheus text chunk; seen is set when the parser returned it (the
	// parser stops early, silently, at a NUL byte starting a line).
	sentinel *byte
	seen     bool
}

// appendBody parses a whole body and appends its data points to ms. On
// error the caller discards ms and calls fail. Scrapes stream their bodies
// through appendStream; appendBody is the same parse on one chunk.
func (a *appender) appendBody(body []byte, contentType string, now time.Time, ms pmetric.MetricSlice) (parseStats, error) {
	format, err := a.formatOf(contentType)
	if err != nil {
		a.iter++
		return parseStats{}, err
	}
	a.begin(contentType, now, ms)
	if err := a.parseChunk(body, format); err != nil {
		return a.cur.st, err
	}
	return a.commit(), nil
}

// begin starts a scrape.
func (a *appender) begin(contentType string, now time.Time, ms pmetric.MetricSlice) {
	a.iter++
	a.touched = a.touched[:0]
	a.nextOrder = nil
	c := &a.cur
	*c = parseState{
		ms:    ms,
		nowMs: now.UnixMilli(),
		// The OpenMetrics parser's StartTimestamp turns the skipping of
		// _created lines back on (prometheus v0.315.1); for OpenMetrics
		// the _created series themselves give the start times.
		useST:   contentType == "" || !strings.HasPrefix(contentType, "application/openmetrics-text"),
		family:  c.family[:0],
		help:    c.help[:0],
		helpFor: c.helpFor[:0],
	}
}

// parserOptions are the textparse options of every scrape.
func parserOptions() textparse.ParserOptions {
	return textparse.ParserOptions{
		IgnoreNativeHistograms: true,
		// _created series are samples of their own, as Prometheus 2.x
		// stores them (they also give the counters' start times).
		OpenMetricsSkipSTSeries: false,
		FallbackContentType:     "text/plain",
	}
}

// newParser returns the parser textparse.New returns for a content type
// of the format with parserOptions, without parsing the content type again
// for every chunk.
func (a *appender) newParser(b []byte, format bodyFormat) textparse.Parser {
	switch format {
	case formatOpenMetrics:
		return textparse.NewOpenMetricsParser(b, a.symbols)
	case formatProto:
		return textparse.NewProtobufParser(b, true, false, false, false, a.symbols)
	}
	return textparse.NewPromParser(b, a.symbols, false)
}

// parseChunk parses b, whole lines (protobuf: messages) of the scrape's
// body, and appends their samples to the scrape's metrics.
func (a *appender) parseChunk(b []byte, format bodyFormat) error {
	p := a.newParser(b, format)
	binary := format == formatProto
	c := &a.cur
	for {
		e, err := p.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return failf(reasonParse, "%w", err)
		}
		switch e {
		case textparse.EntryType:
			name, typ := p.Type()
			if !binary && bytes.IndexByte(name, '\n') >= 0 {
				return errRawLineFeed(name)
			}
			c.family = append(c.family[:0], name...)
			c.famType = typ
			c.typed = true
			continue
		case textparse.EntryHelp:
			name, text := p.Help()
			if !binary && bytes.IndexByte(name, '\n') >= 0 {
				return errRawLineFeed(name)
			}
			c.helpFor = append(c.helpFor[:0], name...)
			c.help = append(c.help[:0], text...)
			continue
		case textparse.EntrySeries:
		case textparse.EntryComment:
			if c.sentinel != nil {
				if cm := p.Comment(); len(cm) > 0 && &cm[0] == c.sentinel {
					c.seen = true
				}
			}
			continue
		default:
			// Units and native histograms (not requested).
			continue
		}
		met, tp, v := p.Series()
		idx := c.st.scraped
		c.st.scraped++
		var ent *seriesEntry
		key := a.keyOf(met)
		if idx < len(a.order) && a.order[idx].key == key {
			ent = a.order[idx]
		} else {
			if !c.diverged {
				c.diverged = true
				a.diverge(idx)
			}
			ent = a.series[key]
		}
		if ent == nil {
			if !binary && bytes.IndexByte(met, '\n') >= 0 {
				return errRawLineFeed(met)
			}
			var h []byte
			if string(c.helpFor) == string(c.family) {
				h = c.help
			}
			ent = a.newEntry(p, met, c.family, c.famType, h)
			if ent.pd != nil {
				for _, text := range createdSiblings(met, c.family, c.famType) {
					ent.pd.createdFor = append(ent.pd.createdFor, a.keyOf([]byte(text)))
				}
				noteBoundText(ent, met)
			}
			ent.key = key
			a.series[key] = ent
			if !ent.dropped {
				c.st.added++
			}
		}
		if c.diverged {
			a.nextOrder = append(a.nextOrder, ent)
		}
		if ent.lastSeen == a.iter {
			return failf(reasonDuplicate, "series %s exposed twice", met)
		}
		ent.lastSeen = a.iter
		if ent.dropped {
			continue
		}
		if ent.overLimit != nil {
			return ent.overLimit
		}
		c.st.postRelabel++
		if a.limits.sample > 0 && c.st.postRelabel > a.limits.sample {
			return failf(reasonSampleLimit, "more than %d samples after relabeling (sample_limit)", a.limits.sample)
		}
		ts := c.nowMs
		if tp != nil && a.limits.honorTimestamps {
			ts = *tp
		}
		if !a.pdata {
			if ent.native.seen == a.iter {
				return failf(reasonDuplicate, "series %s exposed twice", met)
			}
			ent.native.seen = a.iter
			a.readExemplars(p, b, met, format, ts)
			a.out.stage(ent.native, ts, v, a.exs)
			continue
		}
		pd := ent.pd
		ps := pd.point
		if ps.lastSeen != a.iter {
			a.touch(ps, c.ms, ts)
		} else if ent.role == roleValue {
			return failf(reasonDuplicate, "series %s exposed twice", met)
		}
		a.readExemplars(p, b, met, format, ts)
		if a.out != nil {
			a.out.stage(ent.native, ts, v, a.exs)
		}
		if c.useST {
			if stt := p.StartTimestamp(); stt != 0 {
				ps.created = stt
			}
		}
		if len(pd.createdFor) > 0 {
			a.applyCreated(pd.createdFor, v)
		}
		switch ent.role {
		case roleValue:
			ps.sum = v
			ps.hasSample = true
			a.appendExemplars(ps.num.Exemplars())
		case roleBucket:
			if math.IsInf(pd.bound, 1) {
				ps.infCount, ps.hasInf = v, true
			} else {
				ps.bounds = append(ps.bounds, pd.bound)
				ps.cum = append(ps.cum, v)
			}
			a.appendExemplars(ps.hist.Exemplars())
		case roleSum:
			ps.sum = v
		case roleCount:
			ps.count, ps.hasCount = v, true
		case roleQuantile:
			ps.bounds = append(ps.bounds, pd.bound)
			q := ps.summ.QuantileValues().AppendEmpty()
			q.SetQuantile(pd.bound)
			q.SetValue(v)
		}
	}
}

// errRawLineFeed fails a text body whose quoted name or label value holds
// a raw line feed. The formats require it escaped (\n); Prometheus's lexer
// lets it through, but a body parsed line by line cannot, so that a scrape's
// outcome does not depend on where its chunks are cut.
func errRawLineFeed(text []byte) error {
	return failf(reasonParse, "raw line feed in the quoted name or label value of %.80q (must be escaped as \\n)", text)
}

// commit completes a scrape that parsed without error: data points
// finished, vanished series ended, state of the scrape kept.
func (a *appender) commit() parseStats {
	c := &a.cur
	st := c.st
	if a.pdata {
		for _, ps := range a.touched {
			a.finish(ps)
		}
	}
	defer a.release()
	// Series seen in the last successful scrape and not in this one are
	// ended, as Prometheus's staleness markers do: in the native output
	// series by series (a.order still holds the last successful
	// scrape's), in pdata point by point.
	if a.out != nil {
		a.out.flush()
	}
	if a.lastOK != 0 && a.out != nil {
		for _, ent := range a.order {
			if ent.lastSeen != a.iter && ent.native != nil {
				a.out.appendStale(ent.native, c.nowMs)
			}
		}
	}
	if a.lastOK != 0 && a.pdata {
		for _, ps := range a.points {
			if ps.okSeen == a.lastOK && ps.lastSeen != a.iter {
				a.appendStale(ps, c.ms, c.nowMs)
				st.staleEmitted++
			}
		}
	}
	if !a.pdata && !c.diverged && st.scraped == len(a.order) && len(a.series) == len(a.order) {
		// The scrape matched the previous one series by series and no
		// failed scrape left entries behind: every entry, point and
		// metric was seen, nothing to forget (okSeen serves pdata only).
		a.lastOK = a.iter
		return st
	}
	for key, ent := range a.series {
		if ent.lastSeen != a.iter {
			delete(a.series, key)
			if ent.native != nil && !a.pdata {
				// (A text sharing the state that is still exposed
				// keeps it; only later new texts no longer find it.)
				if h := ent.native.lset.Hash(); a.nativeIDs[h] == ent.native {
					delete(a.nativeIDs, h)
				}
			}
		}
	}
	for key, ps := range a.points {
		if ps.lastSeen != a.iter {
			delete(a.points, key)
		} else {
			ps.okSeen = a.iter
		}
	}
	for key, m := range a.metrics {
		if m.iter != a.iter {
			delete(a.metrics, key)
		}
	}
	a.lastOK = a.iter
	switch {
	case c.diverged:
		a.order = a.nextOrder
	case st.scraped < len(a.order):
		// Series gone from the end: keep the matching prefix.
		clear(a.order[st.scraped:])
		a.order = a.order[:st.scraped]
	}
	a.nextOrder = nil
	return st
}

// diverge starts a new order at the first series (idx) that differs from
// the previous scrape, with the matching prefix copied.
func (a *appender) diverge(idx int) {
	n := idx + 1
	if len(a.order) > 0 {
		n = max(len(a.order)+len(a.order)/16, idx+1)
	}
	a.nextOrder = append(make([]*seriesEntry, 0, n), a.order[:idx]...)
}

// release drops the references into this scrape's pdata, so that the
// batch is garbage once the pipeline is done with it.
func (a *appender) release() {
	for _, ps := range a.touched {
		ps.num, ps.hist, ps.summ = pmetric.NumberDataPoint{}, pmetric.HistogramDataPoint{}, pmetric.SummaryDataPoint{}
	}
	for _, m := range a.metrics {
		m.m = pmetric.Metric{}
	}
	a.cur.ms = pmetric.MetricSlice{}
	clear(a.touched)
	a.touched = a.touched[:0]
}

// fail ends every series of the last successful scrape (a failed scrape
// makes them stale in Prometheus too) and returns how many it ended.
func (a *appender) fail(now time.Time, ms pmetric.MetricSlice) int {
	defer a.release()
	a.iter++
	if a.lastOK == 0 {
		return 0
	}
	n := 0
	nowMs := now.UnixMilli()
	if a.out != nil {
		for _, ent := range a.order {
			if ent.native != nil {
				a.out.appendStale(ent.native, nowMs)
			}
		}
	}
	if a.pdata {
		for _, ps := range a.points {
			if ps.okSeen == a.lastOK {
				a.appendStale(ps, ms, nowMs)
				n++
			}
		}
	}
	a.lastOK = 0
	return n
}

// newEntry resolves a series seen for the first time: its pdata metric and
// data point, after target labels and metric relabeling.
func (a *appender) newEntry(p textparse.Parser, met, family []byte, famType model.MetricType, help []byte) *seriesEntry {
	p.Labels(&a.lbls)
	name := a.lbls.Get(model.MetricNameLabel)
	ent := &seriesEntry{}
	var bound float64
	kind, metricName := kindGauge, name
	fam := string(family)
	switch famType {
	case model.MetricTypeCounter:
		if name == fam || name == fam+"_total" {
			kind = kindCounter
		}
	case model.MetricTypeHistogram:
		switch name {
		case fam + "_bucket":
			kind, metricName, ent.role = kindHistogram, fam, roleBucket
			bound = parseBound(a.lbls.Get(model.BucketLabel))
		case fam + "_sum":
			kind, metricName, ent.role = kindHistogram, fam, roleSum
		case fam + "_count":
			kind, metricName, ent.role = kindHistogram, fam, roleCount
		}
	case model.MetricTypeSummary:
		switch name {
		case fam:
			kind, metricName, ent.role = kindSummary, fam, roleQuantile
			bound = parseBound(a.lbls.Get(model.QuantileLabel))
		case fam + "_sum":
			kind, metricName, ent.role = kindSummary, fam, roleSum
		case fam + "_count":
			kind, metricName, ent.role = kindSummary, fam, roleCount
		}
	}
	if kind == kindHistogram && ent.role == roleBucket && math.IsNaN(bound) ||
		kind == kindSummary && ent.role == roleQuantile && math.IsNaN(bound) {
		// A bucket without a usable le (or quantile) is kept as a gauge.
		kind, metricName, ent.role = kindGauge, name, roleValue
	}

	// Target labels win over exposed ones unless honor_labels (Prometheus's
	// mutateSampleLabels).
	a.lb.Reset(a.lbls)
	a.targetLabels.Range(func(l labels.Label) {
		if ev := a.lbls.Get(l.Name); ev != "" {
			if a.honorLabels {
				return
			}
			a.lb.Set(model.ExportedLabelPrefix+l.Name, ev)
		}
		a.lb.Set(l.Name, l.Value)
	})
	if len(a.metricRelabel) > 0 && !relabel.ProcessBuilder(a.lb, a.metricRelabel...) {
		ent.dropped = true
		return ent
	}
	if n := a.lb.Get(model.MetricNameLabel); n == "" {
		ent.dropped = true
		return ent
	} else if n != name && kind != kindHistogram && kind != kindSummary {
		metricName = n
	}
	// Limits apply to the series as Prometheus would store it (le and
	// quantile included), after relabeling.
	if err := a.limits.check(a.lb.Labels()); err != nil {
		ent.overLimit = err
		return ent
	}
	if a.out != nil && !a.pdata {
		// Native only: no point state. Texts that name the same series
		// (labels in another order) share its native state, whose seen
		// mark finds the duplicate, as a shared point does with pdata.
		lset := a.nativeLabels(ent.role, bound, met)
		h := lset.Hash()
		if ns := a.nativeIDs[h]; ns != nil && labels.Equal(ns.lset, lset) {
			ent.native = ns
		} else {
			ent.native = a.out.newSeries(lset)
			a.nativeIDs[h] = ent.native
		}
		return ent
	}
	if a.out != nil {
		ent.native = a.out.newSeries(a.nativeLabels(ent.role, bound, met))
	}
	switch ent.role {
	case roleBucket:
		a.lb.Del(model.BucketLabel)
	case roleQuantile:
		a.lb.Del(model.QuantileLabel)
	}
	a.lb.Set(model.MetricNameLabel, metricName)
	lset := a.lb.Labels()
	key := lset.Hash() ^ uint64(kind)
	ps := a.points[key]
	if ps == nil {
		ps = &pointState{metric: a.metricFor(metricName, kind, help)}
		a.points[key] = ps
	}
	if ps.attrs == (pcommon.Map{}) && a.pdata {
		// The pdata attributes: the labels but the name, job and
		// instance (resource attributes); none without pdata.
		ps.attrs = pcommon.NewMap()
		ps.attrs.EnsureCapacity(lset.Len())
		lset.Range(func(l labels.Label) {
			switch {
			case l.Name == model.MetricNameLabel, l.Value == "":
				// An empty value is no label, in Prometheus.
			case l.Name == model.JobLabel && l.Value == a.job:
			case l.Name == model.InstanceLabel && l.Value == a.instance:
			default:
				ps.attrs.PutStr(l.Name, l.Value)
			}
		})
	}
	ent.pd = &pdataEntry{point: ps, bound: bound}
	return ent
}

// writeBoundTexts puts boundTexts into the output metric's metadata when it
// does not carry all of them yet.
func (m *metricState) writeBoundTexts() {
	if len(m.boundTexts) == m.metaLen {
		return
	}
	m.metaLen = len(m.boundTexts)
	texts := m.m.Metadata().PutEmptyMap(ExposedBoundsKey)
	texts.EnsureCapacity(len(m.boundTexts))
	for g, raw := range m.boundTexts {
		texts.PutStr(g, raw)
	}
}

// noteBoundText records the exposed text of a bucket's or quantile's bound
// when it is not Go's shortest 'g' form of the number. It reads the raw
// series text: the parser hands out normalized le and quantile values
// ("1.0" for an exposed "1"), Prometheus 2.x stores them as exposed.
func noteBoundText(ent *seriesEntry, met []byte) {
	if ent.pd == nil || math.IsInf(ent.pd.bound, 0) || math.IsNaN(ent.pd.bound) {
		return
	}
	name := "le"
	if ent.role == roleQuantile {
		name = "quantile"
	} else if ent.role != roleBucket {
		return
	}
	raw, ok := rawLabelValue(met, name)
	if !ok {
		return
	}
	if g := strconv.FormatFloat(ent.pd.bound, 'g', -1, 64); g != raw {
		m := ent.pd.point.metric
		if m.boundTexts == nil {
			m.boundTexts = map[string]string{}
		}
		m.boundTexts[g] = raw
	}
}

// rawLabelValue finds name="value" in a series' exposition text and
// returns the value as written (bound values need no unescaping).
func rawLabelValue(met []byte, name string) (string, bool) {
	i := bytes.IndexByte(met, '{')
	for i >= 0 && i < len(met) {
		j := i + 1
		for j < len(met) && (met[j] == ' ' || met[j] == ',') {
			j++
		}
		k := bytes.IndexByte(met[j:], '=')
		if k < 0 || j+k+1 >= len(met) || met[j+k+1] != '"' {
			return "", false
		}
		key := bytes.Trim(met[j:j+k], ` "`)
		start := j + k + 2
		end := start
		for end < len(met) && met[end] != '"' {
			if met[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(met) {
			return "", false
		}
		if string(key) == name {
			return string(met[start:end]), true
		}
		i = end + 1
	}
	return "", false
}

// createdSiblings returns, for a _created series of a counter, histogram
// or summary family, the texts of the series it dates: the same labels under
// the family's sample name.
func createdSiblings(met, family []byte, famType model.MetricType) []string {
	name := string(family) + "_created"
	if len(met) < len(name) || string(met[:len(name)]) != name || (len(met) > len(name) && met[len(name)] != '{') {
		return nil
	}
	rest := string(met[len(name):])
	switch famType {
	case model.MetricTypeCounter:
		return []string{string(family) + "_total" + rest, string(family) + rest}
	case model.MetricTypeHistogram, model.MetricTypeSummary:
		return []string{string(family) + "_count" + rest}
	}
	return nil
}

// applyCreated sets the start time of the first sibling seen in this scrape
// from a _created value (seconds).
func (a *appender) applyCreated(siblings []textKey, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	for _, key := range siblings {
		if sib := a.series[key]; sib != nil && sib.pd != nil && sib.pd.point.lastSeen == a.iter {
			sib.pd.point.created = int64(v * 1000) // as the OpenMetrics parser does
			return
		}
	}
}

func (a *appender) metricFor(name string, kind metricKind, help []byte) *metricState {
	key := name
	if kind != kindGauge {
		key = name + "\xff" + strconv.Itoa(int(kind))
	}
	m := a.metrics[key]
	if m == nil {
		m = &metricState{name: name, kind: kind, help: string(help)}
		a.metrics[key] = m
	}
	return m
}

// parseBound parses an le or quantile label value; NaN if it is not a
// number.
func parseBound(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// output returns the pdata metric of m in the current scrape.
func (a *appender) output(m *metricState, ms pmetric.MetricSlice) pmetric.Metric {
	if m.iter == a.iter {
		return m.m
	}
	m.iter = a.iter
	m.m = ms.AppendEmpty()
	m.m.SetName(m.name)
	if m.help != "" {
		m.m.SetDescription(m.help)
	}
	m.metaLen = 0
	m.writeBoundTexts() // stale markers are output without a finish

	switch m.kind {
	case kindCounter:
		s := m.m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	case kindHistogram:
		m.m.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	case kindSummary:
		m.m.SetEmptySummary()
	default:
		m.m.SetEmptyGauge()
	}
	return m.m
}

// touch starts the point's data point in the current scrape.
func (a *appender) touch(ps *pointState, ms pmetric.MetricSlice, ts int64) {
	ps.lastSeen = a.iter
	ps.ts = ts
	ps.created = 0
	ps.bounds, ps.cum = ps.bounds[:0], ps.cum[:0]
	ps.hasInf, ps.hasCount, ps.hasSample = false, false, false
	ps.sum, ps.count, ps.infCount = 0, 0, 0
	a.touched = append(a.touched, ps)
	m := a.output(ps.metric, ms)
	switch ps.metric.kind {
	case kindCounter:
		ps.num = m.Sum().DataPoints().AppendEmpty()
		ps.attrs.CopyTo(ps.num.Attributes())
	case kindGauge:
		ps.num = m.Gauge().DataPoints().AppendEmpty()
		ps.attrs.CopyTo(ps.num.Attributes())
	case kindHistogram:
		ps.hist = m.Histogram().DataPoints().AppendEmpty()
		ps.attrs.CopyTo(ps.hist.Attributes())
	case kindSummary:
		ps.summ = m.Summary().DataPoints().AppendEmpty()
		ps.attrs.CopyTo(ps.summ.Attributes())
	}
}

// startTime returns the start time of a cumulative point whose current
// total is v, tracking resets.
func (ps *pointState) startTime(v float64) int64 {
	switch {
	case ps.created != 0:
		ps.start = ps.created
	case ps.start == 0:
		ps.start = ps.ts
	case v < ps.last:
		// The counter was reset after the previous scrape.
		ps.start = ps.lastTs
	}
	if !math.IsNaN(v) {
		ps.last = v
	}
	ps.lastTs = ps.ts
	return ps.start
}

// finish completes the point's data point once its family is read.
func (a *appender) finish(ps *pointState) {
	// Bound texts are complete once the body is read.
	ps.metric.writeBoundTexts()
	ts := pcommon.Timestamp(ps.ts * int64(time.Millisecond))
	switch ps.metric.kind {
	case kindGauge:
		ps.num.SetTimestamp(ts)
		ps.num.SetDoubleValue(ps.sum)
	case kindCounter:
		ps.num.SetTimestamp(ts)
		ps.num.SetDoubleValue(ps.sum)
		ps.num.SetStartTimestamp(pcommon.Timestamp(ps.startTime(ps.sum) * int64(time.Millisecond)))
	case kindHistogram:
		dp := ps.hist
		dp.SetTimestamp(ts)
		count := ps.count
		if !ps.hasCount && ps.hasInf {
			count = ps.infCount
		}
		if !sort.Float64sAreSorted(ps.bounds) {
			sort.Sort(byBound{ps.bounds, ps.cum})
		}
		dp.ExplicitBounds().FromRaw(ps.bounds)
		bc := dp.BucketCounts()
		bc.EnsureCapacity(len(ps.bounds) + 1)
		prev := 0.0
		for _, c := range ps.cum {
			bc.Append(nonNegative(c - prev))
			prev = c
		}
		total := count
		if ps.hasInf {
			total = ps.infCount
		}
		bc.Append(nonNegative(total - prev))
		dp.SetCount(nonNegative(count))
		dp.SetSum(ps.sum)
		ps.okBounds = append(ps.okBounds[:0], ps.bounds...)
		dp.SetStartTimestamp(pcommon.Timestamp(ps.startTime(count) * int64(time.Millisecond)))
	case kindSummary:
		dp := ps.summ
		dp.SetTimestamp(ts)
		dp.SetCount(nonNegative(ps.count))
		dp.SetSum(ps.sum)
		dp.SetStartTimestamp(pcommon.Timestamp(ps.startTime(ps.count) * int64(time.Millisecond)))
		ps.okBounds = append(ps.okBounds[:0], ps.bounds...)
	}
}

func nonNegative(f float64) uint64 {
	if !(f > 0) || math.IsInf(f, 1) {
		return 0
	}
	return uint64(f)
}

type byBound struct{ b, c []float64 }

func (s byBound) Len() int           { return len(s.b) }
func (s byBound) Less(i, j int) bool { return s.b[i] < s.b[j] }
func (s byBound) Swap(i, j int) {
	s.b[i], s.b[j] = s.b[j], s.b[i]
	s.c[i], s.c[j] = s.c[j], s.c[i]
}

// appendStale ends a point: a data point flagged NoRecordedValue, which the
// remote-write exporter turns into Prometheus's stale marker.
func (a *appender) appendStale(ps *pointState, ms pmetric.MetricSlice, nowMs int64) {
	m := a.output(ps.metric, ms)
	ts := pcommon.Timestamp(nowMs * int64(time.Millisecond))
	start := pcommon.Timestamp(ps.start * int64(time.Millisecond))
	flags := pmetric.DefaultDataPointFlags.WithNoRecordedValue(true)
	switch ps.metric.kind {
	case kindCounter:
		dp := m.Sum().DataPoints().AppendEmpty()
		ps.attrs.CopyTo(dp.Attributes())
		dp.SetStartTimestamp(start)
		dp.SetTimestamp(ts)
		dp.SetFlags(flags)
	case kindGauge:
		dp := m.Gauge().DataPoints().AppendEmpty()
		ps.attrs.CopyTo(dp.Attributes())
		dp.SetTimestamp(ts)
		dp.SetFlags(flags)
	case kindHistogram:
		dp := m.Histogram().DataPoints().AppendEmpty()
		ps.attrs.CopyTo(dp.Attributes())
		dp.SetStartTimestamp(start)
		dp.SetTimestamp(ts)
		dp.SetFlags(flags)
		// Same buckets and a sum, so that every _bucket and _sum series
		// gets its marker too.
		dp.ExplicitBounds().FromRaw(ps.okBounds)
		dp.BucketCounts().FromRaw(make([]uint64, len(ps.okBounds)+1))
		dp.SetSum(0)
	case kindSummary:
		dp := m.Summary().DataPoints().AppendEmpty()
		ps.attrs.CopyTo(dp.Attributes())
		dp.SetStartTimestamp(start)
		dp.SetTimestamp(ts)
		dp.SetFlags(flags)
		for _, q := range ps.okBounds {
			dp.QuantileValues().AppendEmpty().SetQuantile(q)
		}
	}
}

// readExemplars reads the sample's OpenMetrics exemplars into a.exs, once
// for both outputs; an exemplar without a timestamp takes the sample's, ts.
// An OpenMetrics line (format) of chunk b, whose series is met, is read by
// omExemplar (see there), the parser asked only when that cannot read it.
func (a *appender) readExemplars(p textparse.Parser, b, met []byte, format bodyFormat, ts int64) {
	a.exs = a.exs[:0]
	if format == formatOpenMetrics {
		if rest, ok := omLineRest(b, met); ok {
			a.ex = exemplar.Exemplar{}
			found, ok := omExemplar(rest, &a.exLabels, &a.ex)
			if ok {
				if found {
					a.appendExemplar(ts)
				}
				return // OpenMetrics has at most one per sample
			}
		}
	}
	for {
		a.ex = exemplar.Exemplar{}
		if !p.Exemplar(&a.ex) {
			return
		}
		a.appendExemplar(ts)
	}
}

// appendExemplar adds a.ex to a.exs, with the sample's timestamp ts if it
// has none.
func (a *appender) appendExemplar(ts int64) {
	if !a.ex.HasTs {
		a.ex.Ts, a.ex.HasTs = ts, true
	}
	a.exs = append(a.exs, a.ex)
}

// appendExemplars copies the sample's exemplars (a.exs) to dst; trace_id
// and span_id become the exemplar's trace and span IDs.
func (a *appender) appendExemplars(dst pmetric.ExemplarSlice) {
	for i := range a.exs {
		e := &a.exs[i]
		ex := dst.AppendEmpty()
		ex.SetDoubleValue(e.Value)
		ex.SetTimestamp(pcommon.Timestamp(e.Ts * int64(time.Millisecond)))
		e.Labels.Range(func(l labels.Label) {
			switch l.Name {
			case "trace_id", "traceID", "trace-id":
				var id pcommon.TraceID
				if decodeID(id[:], l.Value) {
					ex.SetTraceID(id)
					return
				}
			case "span_id", "spanID", "span-id":
				var id pcommon.SpanID
				if decodeID(id[:], l.Value) {
					ex.SetSpanID(id)
					return
				}
			}
			ex.FilteredAttributes().PutStr(l.Name, l.Value)
		})
	}
}

// decodeID decodes a hex ID, left-padding short ones with zeros (64-bit
// trace IDs).
func decodeID(dst []byte, s string) bool {
	if len(s) == 0 || len(s) > 2*len(dst) || len(s)%2 != 0 {
		return false
	}
	off := len(dst) - len(s)/2
	_, err := hex.Decode(dst[off:], []byte(s))
	return err == nil
}
