package weftstore

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Pod identifies a Kubernetes pod (k8s.namespace.name, k8s.pod.name).
type Pod struct {
	Namespace string
	Name      string
}

// String returns "namespace/name".
func (p Pod) String() string { return p.Namespace + "/" + p.Name }

// Span is a stored span's summary and, where a method says so, the span
// itself.
type Span struct {
	TraceID   pcommon.TraceID
	SpanID    pcommon.SpanID
	Service   string // resource service.name ("unknown_service" when unset)
	Operation string // span name
	Pod       Pod    // zero when the resource names no pod
	Start     time.Time
	End       time.Time
	Error     bool // status code Error
	// Data holds the span with its resource and scope (one of each).
	Data ptrace.Traces
}

// LogRecord is a stored log record with its index fields.
type LogRecord struct {
	Time      time.Time // the record's timestamp, else its observed timestamp
	TraceID   pcommon.TraceID
	SpanID    pcommon.SpanID
	Pod       Pod
	Container string // resource k8s.container.name
	Service   string // resource service.name
	Severity  plog.SeverityNumber
	Body      string // the body as a string
	// Data holds the record with its resource and scope (one of each).
	Data plog.Logs
}

// Exemplar is a TSDB exemplar whose trace_id label points at a trace.
type Exemplar struct {
	Time    time.Time
	TraceID pcommon.TraceID
	SpanID  pcommon.SpanID
	Value   float64
	Series  labels.Labels // the series the exemplar belongs to
	Pod     Pod           // from the series' k8s_namespace_name/k8s_pod_name (or namespace/pod) labels
}

// Correlation is everything the store knows about one trace.
type Correlation struct {
	TraceID   pcommon.TraceID
	Spans     []Span      // oldest first by start time
	Logs      []LogRecord // oldest first by time
	Exemplars []Exemplar  // oldest first by time
}

// Correlate returns the spans (with Data), log records (with Data) and
// exemplars of a trace. Exemplars are found by scanning the exemplar
// storage (bounded by max_exemplars); spans and logs by their trace-ID
// index. Without a started TSDB, exemplars are left out and the error says
// so; spans and logs are still returned.
func (s *Store) Correlate(ctx context.Context, traceID pcommon.TraceID) (Correlation, error) {
	c := Correlation{TraceID: traceID}
	var err error
	if c.Spans, err = s.Trace(traceID); err != nil {
		return c, err
	}
	if c.Logs, err = s.SearchLogs(LogQuery{TraceID: traceID}); err != nil {
		return c, err
	}
	slices.Reverse(c.Logs)
	slices.SortStableFunc(c.Logs, func(a, b LogRecord) int { return a.Time.Compare(b.Time) })
	c.Exemplars, err = s.exemplarsOf(ctx, traceID)
	return c, err
}

func (s *Store) exemplarsOf(ctx context.Context, traceID pcommon.TraceID) ([]Exemplar, error) {
	q, err := s.ExemplarQueryable().ExemplarQuerier(ctx)
	if err != nil {
		return nil, err
	}
	all := labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".+")
	res, err := q.Select(math.MinInt64, math.MaxInt64, []*labels.Matcher{all})
	if err != nil {
		return nil, fmt.Errorf("weft_store: select exemplars: %w", err)
	}
	want := traceID.String()
	var out []Exemplar
	for _, r := range res {
		for _, ex := range r.Exemplars {
			tid := ex.Labels.Get("trace_id")
			if tid == "" {
				tid = ex.Labels.Get("traceID")
			}
			if !strings.EqualFold(tid, want) {
				continue
			}
			e := Exemplar{
				Time: time.UnixMilli(ex.Ts).UTC(), TraceID: traceID, Value: ex.Value, Series: r.SeriesLabels,
				Pod: podOfSeries(r.SeriesLabels),
			}
			e.SpanID, _ = parseSpanID(ex.Labels.Get("span_id"))
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b Exemplar) int { return a.Time.Compare(b.Time) })
	return out, nil
}

func podOfSeries(ls labels.Labels) Pod {
	p := Pod{Namespace: ls.Get("k8s_namespace_name"), Name: ls.Get("k8s_pod_name")}
	if p.Name == "" {
		p = Pod{Namespace: ls.Get("namespace"), Name: ls.Get("pod")}
	}
	return p
}

// parseSpanID reads a 16-digit hex span ID (an exemplar's span_id label).
func parseSpanID(s string) (pcommon.SpanID, bool) {
	var id pcommon.SpanID
	if len(s) != 2*len(id) {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return pcommon.SpanID{}, false
	}
	return id, true
}

// Trace returns the stored spans of a trace, with Data, oldest start first.
func (s *Store) Trace(traceID pcommon.TraceID) ([]Span, error) {
	x := s.spans
	x.mu.RLock()
	defer x.mu.RUnlock()
	tl := x.byTrace[traceID]
	if tl == nil {
		return nil, nil
	}
	out := make([]Span, 0, tl.len())
	var err error
	tl.newestFirst(func(seq uint64) bool {
		e := x.ring.get(seq)
		sp := e.summary()
		if sp.Data, err = decodeSpan(e); err != nil {
			err = fmt.Errorf("weft_store: decode span: %w", err)
			return false
		}
		out = append(out, sp)
		return true
	})
	slices.SortStableFunc(out, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return out, err
}

// TraceSelector selects failing traces. Service and Pod may be combined;
// zero Start/End leave the window open; Limit 0 means 20.
type TraceSelector struct {
	Service string
	Pod     Pod // Name empty: any pod
	Start   time.Time
	End     time.Time
	Limit   int
}

// FailingTrace is a trace with at least one failing span (status Error).
type FailingTrace struct {
	TraceID   pcommon.TraceID
	Time      time.Time // end of its newest failing span in the selection
	Service   string
	Operation string
	Pod       Pod
}

// FailingTraces returns the most recent failing traces of sel, newest
// first by the end of their newest failing span, each trace once. A failing
// span counts when it matches the selector and its end lies in [Start, End].
func (s *Store) FailingTraces(sel TraceSelector) []FailingTrace {
	limit := sel.Limit
	if limit <= 0 {
		limit = 20
	}
	x := s.spans
	x.mu.RLock()
	defer x.mu.RUnlock()
	list := &x.errs
	switch {
	case sel.Pod.Name != "":
		pp := x.byPod[sel.Pod]
		if pp == nil {
			return nil
		}
		list = &pp.errs
	case sel.Service != "":
		svc := x.bySvc[sel.Service]
		if svc == nil {
			return nil
		}
		list = &svc.errs
	}
	var cands []candidate
	list.newestFirst(func(seq uint64) bool {
		e := x.ring.get(seq)
		if (sel.Service == "" || e.svc.name == sel.Service) && inWindow(e.end, sel.Start, sel.End) {
			cands = append(cands, candidate{t: e.end, seq: seq})
		}
		return true
	})
	sortNewestFirst(cands)
	seen := make(map[pcommon.TraceID]struct{})
	var out []FailingTrace
	for _, c := range cands {
		e := x.ring.get(c.seq)
		if _, dup := seen[e.traceID]; dup {
			continue
		}
		seen[e.traceID] = struct{}{}
		sp := e.summary()
		out = append(out, FailingTrace{TraceID: e.traceID, Time: sp.End, Service: sp.Service, Operation: sp.Operation, Pod: sp.Pod})
		if len(out) == limit {
			break
		}
	}
	return out
}

// candidate is an entry that passed the cheap filters of a query, with the
// time it is ordered by.
type candidate struct {
	t   int64
	seq uint64
}

// sortNewestFirst orders candidates by time, newest first; ties by arrival,
// latest first.
func sortNewestFirst(cs []candidate) {
	slices.SortFunc(cs, func(a, b candidate) int {
		if a.t != b.t {
			return cmp.Compare(b.t, a.t)
		}
		return cmp.Compare(b.seq, a.seq)
	})
}

func inWindow(ns int64, start, end time.Time) bool {
	if !start.IsZero() && ns < start.UnixNano() {
		return false
	}
	if !end.IsZero() && ns > end.UnixNano() {
		return false
	}
	return true
}

// SpanQuery is a Jaeger-style trace search. Empty fields do not filter;
// Tags match span attributes, then resource attributes, by string value
// ("error": "true" matches failing spans); Limit 0 means 20 traces.
type SpanQuery struct {
	Service     string
	Operation   string
	Tags        map[string]string
	MinDuration time.Duration
	MaxDuration time.Duration // 0: no upper bound
	Start       time.Time     // span start at or after
	End         time.Time     // span start at or before
	Limit       int
}

// FindTraces returns the IDs of traces with at least one span matching q,
// newest first by the start of their newest matching span. Cheap filters
// run over the chosen index list; tags are checked (decoding the span) in
// that order only until Limit traces are found.
func (s *Store) FindTraces(q SpanQuery) ([]pcommon.TraceID, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	x := s.spans
	x.mu.RLock()
	defer x.mu.RUnlock()
	var cands []candidate
	visit := func(seq uint64) bool {
		e := x.ring.get(seq)
		if q.Service != "" && e.svc.name != q.Service || q.Operation != "" && e.op.name != q.Operation {
			return true
		}
		if !inWindow(e.start, q.Start, q.End) {
			return true
		}
		d := time.Duration(e.end - e.start)
		if d < q.MinDuration || q.MaxDuration > 0 && d > q.MaxDuration {
			return true
		}
		cands = append(cands, candidate{t: e.start, seq: seq})
		return true
	}
	switch {
	case q.Service != "" && q.Operation != "":
		if svc := x.bySvc[q.Service]; svc != nil {
			if op := svc.ops[q.Operation]; op != nil {
				op.seqs.newestFirst(visit)
			}
		}
	case q.Service != "":
		if svc := x.bySvc[q.Service]; svc != nil {
			svc.all.newestFirst(visit)
		}
	default:
		for seq := x.ring.next(); seq > x.ring.first; seq-- {
			visit(seq - 1)
		}
	}
	sortNewestFirst(cands)
	seen := make(map[pcommon.TraceID]struct{})
	var out []pcommon.TraceID
	for _, c := range cands {
		e := x.ring.get(c.seq)
		if _, dup := seen[e.traceID]; dup {
			continue
		}
		if len(q.Tags) > 0 {
			ok, err := tagsMatch(e, q.Tags)
			if err != nil {
				return out, err
			}
			if !ok {
				continue
			}
		}
		seen[e.traceID] = struct{}{}
		out = append(out, e.traceID)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

func tagsMatch(e *spanEntry, tags map[string]string) (bool, error) {
	td, err := decodeSpan(e)
	if err != nil {
		return false, fmt.Errorf("weft_store: decode span: %w", err)
	}
	rs := td.ResourceSpans().At(0)
	sp := rs.ScopeSpans().At(0).Spans().At(0)
	for k, want := range tags {
		if k == "error" {
			if (want == "true") != e.isErr {
				return false, nil
			}
			continue
		}
		v, ok := sp.Attributes().Get(k)
		if !ok {
			v, ok = rs.Resource().Attributes().Get(k)
		}
		if !ok || v.AsString() != want {
			return false, nil
		}
	}
	return true, nil
}

// Services returns the services that have stored spans, sorted.
func (s *Store) Services() []string {
	x := s.spans
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]string, 0, len(x.bySvc))
	for name := range x.bySvc {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Operations returns the span names of a service's stored spans, sorted.
func (s *Store) Operations(service string) []string {
	x := s.spans
	x.mu.RLock()
	defer x.mu.RUnlock()
	svc := x.bySvc[service]
	if svc == nil {
		return nil
	}
	out := make([]string, 0, len(svc.ops))
	for name := range svc.ops {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// LogQuery selects log records. Empty fields do not filter; Limit 0 means
// 100.
type LogQuery struct {
	Namespace   string
	Pod         string // pod name; with Namespace set it uses the pod index
	Container   string
	Service     string
	TraceID     pcommon.TraceID
	Since       time.Time
	MinSeverity plog.SeverityNumber
	Limit       int
}

// SearchLogs returns matching records, with Data, newest first by record
// time (ties: latest arrival first).
func (s *Store) SearchLogs(q LogQuery) ([]LogRecord, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	x := s.logs
	x.mu.RLock()
	defer x.mu.RUnlock()
	var cands []candidate
	visit := func(seq uint64) bool {
		e := x.ring.get(seq)
		if !q.TraceID.IsEmpty() && e.traceID != q.TraceID ||
			q.Pod != "" && (e.pod == nil || e.pod.pod.Name != q.Pod) ||
			q.Namespace != "" && (e.pod == nil || e.pod.pod.Namespace != q.Namespace) ||
			q.Service != "" && (e.svc == nil || e.svc.name != q.Service) ||
			q.Container != "" && e.container != q.Container ||
			e.severity < q.MinSeverity ||
			!q.Since.IsZero() && e.time < q.Since.UnixNano() {
			return true
		}
		cands = append(cands, candidate{t: e.time, seq: seq})
		return true
	}
	switch {
	case !q.TraceID.IsEmpty():
		if tl := x.byTrace[q.TraceID]; tl != nil {
			tl.newestFirst(visit)
		}
	case q.Pod != "" && q.Namespace != "":
		if pp := x.byPod[Pod{Namespace: q.Namespace, Name: q.Pod}]; pp != nil {
			pp.seqs.newestFirst(visit)
		}
	case q.Service != "":
		if sp := x.bySvc[q.Service]; sp != nil {
			sp.seqs.newestFirst(visit)
		}
	default:
		for seq := x.ring.next(); seq > x.ring.first; seq-- {
			visit(seq - 1)
		}
	}
	sortNewestFirst(cands)
	cands = cands[:min(len(cands), limit)]
	out := make([]LogRecord, 0, len(cands))
	for _, c := range cands {
		rec, err := logRecordOf(x.ring.get(c.seq))
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
	return out, nil
}

func logRecordOf(e *logEntry) (LogRecord, error) {
	ld, err := decodeLog(e)
	if err != nil {
		return LogRecord{}, fmt.Errorf("weft_store: decode log record: %w", err)
	}
	rec := LogRecord{
		Time: time.Unix(0, e.time).UTC(), TraceID: e.traceID, SpanID: e.spanID,
		Container: e.container, Severity: e.severity, Data: ld,
		Body: ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().AsString(),
	}
	if e.pod != nil {
		rec.Pod = e.pod.pod
	}
	if e.svc != nil {
		rec.Service = e.svc.name
	}
	return rec, nil
}
