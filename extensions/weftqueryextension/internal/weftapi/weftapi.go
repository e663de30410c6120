// Package weftapi serves weft's own API: /api/v1/correlate/{traceID}
// (a trace's spans, logs, exemplars and alerts in one answer) and
// /api/v1/logs, in the Prometheus envelope.
package weftapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/util/annotations"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/jaegerapi"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/promapi"
	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/internal/rulesapi"
)

const (
	// maxLogLimit bounds /api/v1/logs?limit=.
	maxLogLimit = 5000
	// MaxObservedScan bounds the records /api/v1/logs?observed_since=
	// examines (newest first by record time): the store indexes records by
	// their own time only.
	MaxObservedScan = 20_000
)

// Store is what weft's API reads: weftstore's *Store.
type Store interface {
	Correlate(ctx context.Context, traceID pcommon.TraceID) (weftstoreextension.Correlation, error)
	SearchLogs(q weftstoreextension.LogQuery) ([]weftstoreextension.LogRecord, error)
}

// API is weft's own API over a store.
type API struct {
	Store Store
	Rules rulesapi.Source // nil: no rules engine, no alerts
	Now   func() time.Time
	// Query serves a data request in the Prometheus envelope, in a query
	// slot (promapi.API.Query).
	Query func(promapi.Handler) http.HandlerFunc
	// LogScan bounds the records observed_since examines (MaxObservedScan).
	LogScan int
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/correlate/{traceID}", a.Query(a.correlate))
	mux.HandleFunc("GET /api/v1/logs", a.Query(a.logs))
}

// LogJSON is one log record in weft's API. Time is the record's own
// timestamp, or, when it has none, the time weft read it; ObservedTime is
// the time weft (or the agent before it) read the record, when known.
type LogJSON struct {
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

// ToLogJSON converts a stored record to the API's model.
func ToLogJSON(l weftstoreextension.LogRecord) LogJSON {
	lj := LogJSON{
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
	return promapi.ParseTime(v)
}

// observedTime is when the record was read (its observed timestamp), else
// its own time.
func observedTime(l weftstoreextension.LogRecord) time.Time {
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
func (a *API) logs(r *http.Request) (any, annotations.Annotations, *promapi.Error) {
	q := weftstoreextension.LogQuery{
		Namespace: r.FormValue("namespace"), Pod: r.FormValue("pod"), Container: r.FormValue("container"),
		Service: r.FormValue("service"), Limit: 100,
	}
	if v := r.FormValue("trace_id"); v != "" {
		id, err := jaegerapi.ParseTraceID(v)
		if err != nil || id.IsEmpty() {
			return nil, nil, promapi.InvalidParam(fmt.Errorf("want 32 hex digits, got %q", v), "trace_id")
		}
		q.TraceID = id
	}
	var err error
	if q.Since, err = parseSince(r.FormValue("since"), a.Now()); err != nil {
		return nil, nil, promapi.InvalidParam(err, "since")
	}
	observedSince, err := parseSince(r.FormValue("observed_since"), a.Now())
	if err != nil {
		return nil, nil, promapi.InvalidParam(err, "observed_since")
	}
	if v := r.FormValue("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLogLimit {
			return nil, nil, promapi.InvalidParam(fmt.Errorf("want 1 to %d, got %q", maxLogLimit, v), "limit")
		}
		q.Limit = n
	}
	recs, annos, err := a.searchLogs(q, observedSince)
	if err != nil {
		return nil, annos, &promapi.Error{Type: promapi.ErrorInternal, Status: http.StatusInternalServerError, Err: err}
	}
	out := make([]LogJSON, 0, len(recs))
	for _, l := range recs {
		out = append(out, ToLogJSON(l))
	}
	return out, annos, nil
}

// searchLogs applies observed_since over the store's answers, newest first
// by record time: it asks for the limit, then twice as many until it has
// enough records, the store has no more, or it examined logScan records
// (then a warning says so).
func (a *API) searchLogs(q weftstoreextension.LogQuery, observedSince time.Time) ([]weftstoreextension.LogRecord, annotations.Annotations, error) {
	if observedSince.IsZero() {
		recs, err := a.Store.SearchLogs(q)
		return recs, nil, err
	}
	want := q.Limit
	for n := min(want, a.LogScan); ; n = min(2*n, a.LogScan) {
		q.Limit = n
		recs, err := a.Store.SearchLogs(q)
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
		if n == a.LogScan {
			var annos annotations.Annotations
			return out, annos.Add(fmt.Errorf("observed_since: examined only the %d newest records by time; older ones may also have been read since", n)), nil
		}
	}
}

// correlationJSON is everything known about one trace.
type correlationJSON struct {
	TraceID   string              `json:"traceID"`
	Trace     *jaegerapi.Trace    `json:"trace"` // null when no span is stored
	Logs      []LogJSON           `json:"logs"`
	Exemplars []exemplarOfJSON    `json:"exemplars"`
	Alerts    []promapi.AlertJSON `json:"alerts"`
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
func (a *API) correlate(r *http.Request) (any, annotations.Annotations, *promapi.Error) {
	id, err := jaegerapi.ParseTraceID(r.PathValue("traceID"))
	if err != nil || id.IsEmpty() {
		return nil, nil, promapi.BadData(fmt.Errorf("invalid trace ID %q", r.PathValue("traceID")))
	}
	c, err := a.Store.Correlate(r.Context(), id)
	var annos annotations.Annotations
	if err != nil {
		// Spans and logs are still valid; say what is missing.
		annos = annos.Add(fmt.Errorf("exemplars: %w", err))
	}
	out := correlationJSON{TraceID: id.String(), Logs: []LogJSON{}, Exemplars: []exemplarOfJSON{}, Alerts: []promapi.AlertJSON{}}
	if len(c.Spans) > 0 {
		t := jaegerapi.ToTrace(id, c.Spans)
		out.Trace = &t
	}
	for _, l := range c.Logs {
		out.Logs = append(out.Logs, ToLogJSON(l))
	}
	for _, e := range c.Exemplars {
		ej := exemplarOfJSON{Series: e.Series, Timestamp: e.Time, Value: e.Value}
		if !e.SpanID.IsEmpty() {
			ej.SpanID = e.SpanID.String()
		}
		out.Exemplars = append(out.Exemplars, ej)
	}
	if a.Rules != nil {
		want := id.String()
		var hit []rulesapi.Alert
		for _, a := range a.Rules.Alerts() {
			for _, t := range a.TraceIDs {
				if t == want {
					hit = append(hit, a)
					break
				}
			}
		}
		out.Alerts = promapi.AlertsJSON(hit)
	}
	if out.Trace == nil && len(out.Logs) == 0 && len(out.Exemplars) == 0 && len(out.Alerts) == 0 {
		return nil, annos, &promapi.Error{Type: promapi.ErrorNotFound, Status: http.StatusNotFound, Err: errors.New("trace not found")}
	}
	return out, annos, nil
}
