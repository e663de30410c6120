package weftstoreextension

import (
	"context"
	"encoding/hex"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/exemplars"
	"github.com/weftobs/weft/extensions/weftstoreextension/internal/index"
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
	var out []Exemplar
	for _, r := range q.(*exemplars.Storage).OfTrace(traceID) {
		for _, ex := range r.Exemplars {
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
	out, err := index.Trace(s.spans, traceID, spanOf)
	slices.SortStableFunc(out, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return out, err
}

func spanOf(sp index.Span) Span {
	return Span{
		TraceID: sp.TraceID, SpanID: sp.SpanID,
		Service: sp.Service, Operation: sp.Operation, Pod: Pod(sp.Pod),
		Start: time.Unix(0, sp.Start).UTC(), End: time.Unix(0, sp.End).UTC(),
		Error: sp.Error, Data: sp.Data,
	}
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
	return index.FailingTraces(s.spans, index.TraceSelector{
		Service: sel.Service, Pod: index.Pod(sel.Pod), Start: sel.Start, End: sel.End, Limit: sel.Limit,
	}, failingOf)
}

// failingOf is the failing trace whose newest failing span is sp.
func failingOf(sp index.Span) FailingTrace {
	return FailingTrace{TraceID: sp.TraceID, Time: time.Unix(0, sp.End).UTC(), Service: sp.Service, Operation: sp.Operation, Pod: Pod(sp.Pod)}
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
	return s.spans.FindTraces(index.SpanQuery(q))
}

// Services returns the services that have stored spans, sorted.
func (s *Store) Services() []string { return s.spans.Services() }

// Operations returns the span names of a service's stored spans, sorted.
func (s *Store) Operations(service string) []string { return s.spans.Operations(service) }

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
	return index.SearchLogs(s.logs, index.LogQuery(q), logRecordOf)
}

func logRecordOf(l index.Log) LogRecord {
	return LogRecord{
		Time: time.Unix(0, l.Time).UTC(), TraceID: l.TraceID, SpanID: l.SpanID,
		Pod: Pod(l.Pod), Container: l.Container, Service: l.Service,
		Severity: l.Severity, Body: l.Body, Data: l.Data,
	}
}
