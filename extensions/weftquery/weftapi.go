package weftquery

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/weftobs/weft/extensions/weftstore"
	"github.com/weftobs/weft/internal/rulesapi"
)

const (
	// maxLogLimit bounds /api/v1/logs?limit=.
	maxLogLimit = 5000
	// maxObservedScan bounds the records /api/v1/logs?observed_since=
	// examines (newest first by record time): the store indexes records by
	// their own time only.
	maxObservedScan = 20_000
)

func (s *server) weftRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/correlate/{traceID}", s.promQuery(s.correlate))
	mux.HandleFunc("GET /api/v1/logs", s.promQuery(s.logs))
}

// logJSON is one log record in weft's API. Time is the record's own
// timestamp, or, when it has none, the time weft read it; ObservedTime is
// the time weft (or the agent before it) read the record, when known.
type logJSON struct {
	Time           time.Time         `json:"time"`
	ObservedTime   time.Time         `json:"observedTime,omitzero"`
	TraceID        string            `json:"traceID,omitempty"`
	SpanID         string            `json:"spanID,omitempty"`
	Namespace      string            `json:"namespace,omitempty"`
	Pod            string            `json:"pod,omitempty"`
	Container      string            `json:"container,omitempty"`
	Service        string            `json:"service,omitempty"`
	Severity       string            `json:"severity,omitempty"`
	SeverityNumber int32             `json:"severityNumber"`
	Body           string            `json:"body"`
	Attributes     map[string]string `json:"attributes,omitempty"`
}

func toLogJSON(l weftstore.LogRecord) logJSON {
	lj := logJSON{
		Time: l.Time.UTC(), Namespace: l.Pod.Namespace, Pod: l.Pod.Name, Container: l.Container,
		Service: l.Service, SeverityNumber: int32(l.Severity), Body: l.Body,
	}
	if !l.TraceID.IsEmpty() {
		lj.TraceID = l.TraceID.String()
	}
	if !l.SpanID.IsEmpty() {
		lj.SpanID = l.SpanID.String()
	}
	if rl := l.Data.ResourceLogs(); rl.Len() > 0 && rl.At(0).ScopeLogs().Len() > 0 && rl.At(0).ScopeLogs().At(0).LogRecords().Len() > 0 {
		lr := rl.At(0).ScopeLogs().At(0).LogRecords().At(0)
		lj.Severity = lr.SeverityText()
		if ot := lr.ObservedTimestamp(); ot != 0 {
			lj.ObservedTime = ot.AsTime().UTC()
		}
		if lr.Attributes().Len() > 0 {
			lj.Attributes = make(map[string]string, lr.Attributes().Len())
			for k, v := range lr.Attributes().All() {
				lj.Attributes[k] = v.AsString()
			}
		}
	}
	if lj.Severity == "" && l.Severity != 0 {
		lj.Severity = l.Severity.String()
	}
	return lj
}

// parseSince reads since= as a duration back from now ("5m"), Unix seconds
// or RFC 3339.
func parseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("negative duration %q", v)
		}
		return now.Add(-d), nil
	}
	return parseTime(v)
}

// observedTime is when the record was read (its observed timestamp), else
// its own time.
func observedTime(l weftstore.LogRecord) time.Time {
	if rl := l.Data.ResourceLogs(); rl.Len() > 0 && rl.At(0).ScopeLogs().Len() > 0 && rl.At(0).ScopeLogs().At(0).LogRecords().Len() > 0 {
		if ot := rl.At(0).ScopeLogs().At(0).LogRecords().At(0).ObservedTimestamp(); ot != 0 {
			return ot.AsTime()
		}
	}
	return l.Time
}

// logs answers /api/v1/logs: records newest first by time. since filters
// by the record's own time (as the store indexes it), observed_since by
// the time it was read; both may be given.
func (s *server) logs(r *http.Request) (any, annotations.Annotations, *apiError) {
	q := weftstore.LogQuery{
		Namespace: r.FormValue("namespace"), Pod: r.FormValue("pod"), Container: r.FormValue("container"),
		Service: r.FormValue("service"), Limit: 100,
	}
	if v := r.FormValue("trace_id"); v != "" {
		id, err := parseTraceID(v)
		if err != nil || id.IsEmpty() {
			return nil, nil, invalidParam(fmt.Errorf("want 32 hex digits, got %q", v), "trace_id")
		}
		q.TraceID = id
	}
	var err error
	if q.Since, err = parseSince(r.FormValue("since"), s.now()); err != nil {
		return nil, nil, invalidParam(err, "since")
	}
	observedSince, err := parseSince(r.FormValue("observed_since"), s.now())
	if err != nil {
		return nil, nil, invalidParam(err, "observed_since")
	}
	if v := r.FormValue("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLogLimit {
			return nil, nil, invalidParam(fmt.Errorf("want 1 to %d, got %q", maxLogLimit, v), "limit")
		}
		q.Limit = n
	}
	recs, annos, err := s.searchLogs(q, observedSince)
	if err != nil {
		return nil, annos, &apiError{errorInternal, http.StatusInternalServerError, err}
	}
	out := make([]logJSON, 0, len(recs))
	for _, l := range recs {
		out = append(out, toLogJSON(l))
	}
	return out, annos, nil
}

// searchLogs applies observed_since over the store's answers, newest first
// by record time: it asks for the limit, then twice as many until it has
// enough records, the store has no more, or it examined logScan records
// (then a warning says so).
func (s *server) searchLogs(q weftstore.LogQuery, observedSince time.Time) ([]weftstore.LogRecord, annotations.Annotations, error) {
	if observedSince.IsZero() {
		recs, err := s.store.SearchLogs(q)
		return recs, nil, err
	}
	want := q.Limit
	for n := min(want, s.logScan); ; n = min(2*n, s.logScan) {
		q.Limit = n
		recs, err := s.store.SearchLogs(q)
		if err != nil {
			return nil, nil, err
		}
		out := recs[:0]
		for _, l := range recs {
			if len(out) < want && !observedTime(l).Before(observedSince) {
				out = append(out, l)
			}
		}
		if len(out) == want || len(recs) < n {
			return out, nil, nil
		}
		if n == s.logScan {
			var annos annotations.Annotations
			return out, annos.Add(fmt.Errorf("observed_since: examined only the %d newest records by time; older ones may also have been read since", n)), nil
		}
	}
}

// correlationJSON is everything known about one trace.
type correlationJSON struct {
	TraceID   string           `json:"traceID"`
	Trace     *jaegerTrace     `json:"trace"` // null when no span is stored
	Logs      []logJSON        `json:"logs"`
	Exemplars []exemplarOfJSON `json:"exemplars"`
	Alerts    []alertJSON      `json:"alerts"`
}

type exemplarOfJSON struct {
	Series    labels.Labels `json:"series"`
	Timestamp time.Time     `json:"time"`
	Value     float64       `json:"value"`
	SpanID    string        `json:"spanID,omitempty"`
}

// correlate answers /api/v1/correlate/{traceID}: spans (Jaeger model), log
// records and exemplars oldest first, and the active alerts whose evidence
// names the trace. 404 when the store knows nothing of it.
func (s *server) correlate(r *http.Request) (any, annotations.Annotations, *apiError) {
	id, err := parseTraceID(r.PathValue("traceID"))
	if err != nil || id.IsEmpty() {
		return nil, nil, badData(fmt.Errorf("invalid trace ID %q", r.PathValue("traceID")))
	}
	c, err := s.store.Correlate(r.Context(), id)
	var annos annotations.Annotations
	if err != nil {
		// Spans and logs are still valid; say what is missing.
		annos = annos.Add(fmt.Errorf("exemplars: %w", err))
	}
	out := correlationJSON{TraceID: id.String(), Logs: []logJSON{}, Exemplars: []exemplarOfJSON{}, Alerts: []alertJSON{}}
	if len(c.Spans) > 0 {
		t := toJaegerTrace(id, c.Spans)
		out.Trace = &t
	}
	for _, l := range c.Logs {
		out.Logs = append(out.Logs, toLogJSON(l))
	}
	for _, e := range c.Exemplars {
		ej := exemplarOfJSON{Series: e.Series, Timestamp: e.Time, Value: e.Value}
		if !e.SpanID.IsEmpty() {
			ej.SpanID = e.SpanID.String()
		}
		out.Exemplars = append(out.Exemplars, ej)
	}
	if s.rules != nil {
		want := id.String()
		var hit []rulesapi.Alert
		for _, a := range s.rules.Alerts() {
			for _, t := range a.TraceIDs {
				if t == want {
					hit = append(hit, a)
					break
				}
			}
		}
		out.Alerts = alertsJSON(hit)
	}
	if out.Trace == nil && len(out.Logs) == 0 && len(out.Exemplars) == 0 && len(out.Alerts) == 0 {
		return nil, annos, &apiError{errorNotFound, http.StatusNotFound, errors.New("trace not found")}
	}
	return out, annos, nil
}
