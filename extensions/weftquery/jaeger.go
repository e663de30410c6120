package weftquery

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extensions/weftstore"
)

// The Jaeger query service's JSON model (written from its responses; Jaeger's
// own types are internal to its module).
type (
	jaegerEnvelope struct {
		Data   any           `json:"data"`
		Total  int           `json:"total"`
		Limit  int           `json:"limit"`
		Offset int           `json:"offset"`
		Errors []jaegerError `json:"errors"`
	}
	jaegerError struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}
	jaegerTrace struct {
		TraceID   string                   `json:"traceID"`
		Spans     []jaegerSpan             `json:"spans"`
		Processes map[string]jaegerProcess `json:"processes"`
		Warnings  []string                 `json:"warnings"`
	}
	jaegerSpan struct {
		TraceID       string      `json:"traceID"`
		SpanID        string      `json:"spanID"`
		Flags         uint32      `json:"flags,omitempty"`
		OperationName string      `json:"operationName"`
		References    []jaegerRef `json:"references"`
		StartTime     int64       `json:"startTime"` // µs since the epoch
		Duration      int64       `json:"duration"`  // µs
		Tags          []jaegerKV  `json:"tags"`
		Logs          []jaegerLog `json:"logs"`
		ProcessID     string      `json:"processID"`
		Warnings      []string    `json:"warnings"`
	}
	jaegerRef struct {
		RefType string `json:"refType"` // CHILD_OF or FOLLOWS_FROM
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	}
	jaegerKV struct {
		Key   string `json:"key"`
		Type  string `json:"type"` // string, bool, int64, float64, binary
		Value any    `json:"value"`
	}
	jaegerLog struct {
		Timestamp int64      `json:"timestamp"`
		Fields    []jaegerKV `json:"fields"`
	}
	jaegerProcess struct {
		ServiceName string     `json:"serviceName"`
		Tags        []jaegerKV `json:"tags"`
	}
)

func (s *server) jaegerRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/services", func(w http.ResponseWriter, _ *http.Request) {
		svcs := s.store.Services()
		writeJaeger(w, http.StatusOK, jaegerEnvelope{Data: nonNilStrings(svcs), Total: len(svcs)})
	})
	mux.HandleFunc("GET /api/services/{service}/operations", func(w http.ResponseWriter, r *http.Request) {
		ops := s.store.Operations(r.PathValue("service"))
		writeJaeger(w, http.StatusOK, jaegerEnvelope{Data: nonNilStrings(ops), Total: len(ops)})
	})
	// Traces are read in a query slot, as the other data requests.
	mux.HandleFunc("GET /api/traces/{traceID}", s.gated(s.jaegerTrace, jaegerFailAPI))
	mux.HandleFunc("GET /api/traces", s.gated(s.jaegerSearch, jaegerFailAPI))
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeJaeger(w http.ResponseWriter, status int, env jaegerEnvelope) {
	b, err := json.Marshal(env)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(jaegerEnvelope{Errors: []jaegerError{{Code: status, Msg: err.Error()}}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func jaegerFail(w http.ResponseWriter, status int, msg string) {
	writeJaeger(w, status, jaegerEnvelope{Errors: []jaegerError{{Code: status, Msg: msg}}})
}

// parseTraceID reads a hex trace ID of 1 to 32 digits (shorter IDs are
// left-padded with zeros, as Jaeger accepts them).
func parseTraceID(s string) (pcommon.TraceID, error) {
	var id pcommon.TraceID
	if s == "" || len(s) > 32 {
		return id, fmt.Errorf("cannot parse traceID %q: want 1 to 32 hex digits", s)
	}
	if len(s)%2 == 1 {
		s = "0" + s
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return id, fmt.Errorf("cannot parse traceID %q: %w", s, err)
	}
	copy(id[16-len(b):], b)
	return id, nil
}

func (s *server) jaegerTrace(w http.ResponseWriter, r *http.Request) {
	id, err := parseTraceID(r.PathValue("traceID"))
	if err != nil {
		jaegerFail(w, http.StatusBadRequest, err.Error())
		return
	}
	spans, err := s.store.Trace(id)
	if err != nil {
		jaegerFail(w, http.StatusInternalServerError, err.Error())
		return
	}
	if len(spans) == 0 {
		jaegerFail(w, http.StatusNotFound, "trace not found")
		return
	}
	writeJaeger(w, http.StatusOK, jaegerEnvelope{Data: []jaegerTrace{toJaegerTrace(id, spans)}})
}

// parseSpanQuery reads /api/traces's parameters: service (required),
// operation, tags (JSON object) or tag=k:v, start/end (µs), lookback,
// minDuration/maxDuration (Go durations), limit.
func parseSpanQuery(r *http.Request, now time.Time) (weftstore.SpanQuery, error) {
	q := r.URL.Query()
	sq := weftstore.SpanQuery{Service: q.Get("service"), Operation: q.Get("operation")}
	if sq.Service == "" {
		return sq, errors.New("parameter 'service' is required")
	}
	if v := q.Get("tags"); v != "" {
		if err := json.Unmarshal([]byte(v), &sq.Tags); err != nil {
			return sq, fmt.Errorf("malformed 'tags' parameter, expecting JSON object: %w", err)
		}
	}
	for _, t := range q["tag"] {
		k, v, ok := strings.Cut(t, ":")
		if !ok || k == "" {
			return sq, fmt.Errorf("malformed 'tag' parameter %q, expecting key:value", t)
		}
		if sq.Tags == nil {
			sq.Tags = map[string]string{}
		}
		sq.Tags[k] = v
	}
	micros := func(name string) (time.Time, error) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 1<<53 {
			return time.Time{}, fmt.Errorf("unable to parse param '%s': want microseconds since the epoch, got %q", name, v)
		}
		return time.UnixMicro(n), nil
	}
	var err error
	if sq.Start, err = micros("start"); err != nil {
		return sq, err
	}
	if sq.End, err = micros("end"); err != nil {
		return sq, err
	}
	if v := q.Get("lookback"); v != "" && v != "custom" && sq.Start.IsZero() {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return sq, fmt.Errorf("unable to parse param 'lookback': %q", v)
		}
		end := sq.End
		if end.IsZero() {
			end = now
		}
		sq.Start = end.Add(-d)
	}
	if !sq.Start.IsZero() && !sq.End.IsZero() && sq.End.Before(sq.Start) {
		return sq, errors.New("'end' must not be before 'start'")
	}
	dur := func(name string) (time.Duration, error) {
		v := q.Get(name)
		if v == "" {
			return 0, nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("unable to parse param '%s': %q is not a non-negative duration", name, v)
		}
		return d, nil
	}
	if sq.MinDuration, err = dur("minDuration"); err != nil {
		return sq, err
	}
	if sq.MaxDuration, err = dur("maxDuration"); err != nil {
		return sq, err
	}
	if sq.MaxDuration > 0 && sq.MaxDuration < sq.MinDuration {
		return sq, errors.New("'maxDuration' must not be less than 'minDuration'")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return sq, fmt.Errorf("unable to parse param 'limit': %q", v)
		}
		sq.Limit = min(n, 1500)
	}
	return sq, nil
}

func (s *server) jaegerSearch(w http.ResponseWriter, r *http.Request) {
	// traceID=… lists traces by ID, as Jaeger does.
	if ids := r.URL.Query()["traceID"]; len(ids) > 0 {
		var out []jaegerTrace
		for _, v := range ids {
			id, err := parseTraceID(v)
			if err != nil {
				jaegerFail(w, http.StatusBadRequest, err.Error())
				return
			}
			spans, err := s.store.Trace(id)
			if err != nil {
				jaegerFail(w, http.StatusInternalServerError, err.Error())
				return
			}
			if len(spans) > 0 {
				out = append(out, toJaegerTrace(id, spans))
			}
		}
		writeJaeger(w, http.StatusOK, jaegerEnvelope{Data: nonNilTraces(out)})
		return
	}
	sq, err := parseSpanQuery(r, s.now())
	if err != nil {
		jaegerFail(w, http.StatusBadRequest, err.Error())
		return
	}
	ids, err := s.store.FindTraces(sq)
	if err != nil {
		jaegerFail(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := make([]jaegerTrace, 0, len(ids))
	for _, id := range ids {
		spans, err := s.store.Trace(id)
		if err != nil {
			jaegerFail(w, http.StatusInternalServerError, err.Error())
			return
		}
		if len(spans) > 0 {
			out = append(out, toJaegerTrace(id, spans))
		}
	}
	writeJaeger(w, http.StatusOK, jaegerEnvelope{Data: out})
}

func nonNilTraces(t []jaegerTrace) []jaegerTrace {
	if t == nil {
		return []jaegerTrace{}
	}
	return t
}

// toJaegerTrace converts stored spans (one pdata span each) to Jaeger's
// model, as Jaeger's OTLP translator does: resources become processes
// (p1, p2, … in order of first use), status and kind become tags, events
// logs, the parent a CHILD_OF reference and links FOLLOWS_FROM.
func toJaegerTrace(id pcommon.TraceID, spans []weftstore.Span) jaegerTrace {
	t := jaegerTrace{TraceID: id.String(), Spans: make([]jaegerSpan, 0, len(spans)), Processes: map[string]jaegerProcess{}}
	var procKeys []string // canonical JSON of each process, index+1 = pN
	for _, st := range spans {
		rss := st.Data.ResourceSpans()
		if rss.Len() == 0 {
			continue
		}
		rs := rss.At(0)
		proc := toJaegerProcess(rs.Resource())
		key, _ := json.Marshal(proc)
		i := slices.Index(procKeys, string(key))
		if i < 0 {
			procKeys = append(procKeys, string(key))
			i = len(procKeys) - 1
			t.Processes["p"+strconv.Itoa(i+1)] = proc
		}
		pid := "p" + strconv.Itoa(i+1)
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				t.Spans = append(t.Spans, toJaegerSpan(sp, ss.Scope(), pid))
			}
		}
	}
	return t
}

func toJaegerProcess(res pcommon.Resource) jaegerProcess {
	p := jaegerProcess{Tags: []jaegerKV{}}
	for k, v := range res.Attributes().All() {
		if k == "service.name" {
			p.ServiceName = v.AsString()
			continue
		}
		p.Tags = append(p.Tags, toJaegerKV(k, v))
	}
	if p.ServiceName == "" {
		p.ServiceName = "unknown_service"
	}
	slices.SortFunc(p.Tags, func(a, b jaegerKV) int { return strings.Compare(a.Key, b.Key) })
	return p
}

var spanKinds = map[ptrace.SpanKind]string{
	ptrace.SpanKindServer:   "server",
	ptrace.SpanKindClient:   "client",
	ptrace.SpanKindProducer: "producer",
	ptrace.SpanKindConsumer: "consumer",
	ptrace.SpanKindInternal: "internal",
}

func toJaegerSpan(sp ptrace.Span, scope pcommon.InstrumentationScope, pid string) jaegerSpan {
	tid := sp.TraceID().String()
	js := jaegerSpan{
		TraceID: tid, SpanID: sp.SpanID().String(), Flags: sp.Flags(), OperationName: sp.Name(),
		References: []jaegerRef{}, Tags: []jaegerKV{}, Logs: []jaegerLog{}, ProcessID: pid,
		StartTime: int64(sp.StartTimestamp()) / 1000,
		Duration:  (int64(sp.EndTimestamp()) - int64(sp.StartTimestamp())) / 1000,
	}
	if p := sp.ParentSpanID(); !p.IsEmpty() {
		js.References = append(js.References, jaegerRef{RefType: "CHILD_OF", TraceID: tid, SpanID: p.String()})
	}
	for _, l := range sp.Links().All() {
		js.References = append(js.References, jaegerRef{RefType: "FOLLOWS_FROM", TraceID: l.TraceID().String(), SpanID: l.SpanID().String()})
	}
	for k, v := range sp.Attributes().All() {
		js.Tags = append(js.Tags, toJaegerKV(k, v))
	}
	if n := scope.Name(); n != "" {
		js.Tags = append(js.Tags, jaegerKV{Key: "otel.scope.name", Type: "string", Value: n})
	}
	if v := scope.Version(); v != "" {
		js.Tags = append(js.Tags, jaegerKV{Key: "otel.scope.version", Type: "string", Value: v})
	}
	if k, ok := spanKinds[sp.Kind()]; ok {
		js.Tags = append(js.Tags, jaegerKV{Key: "span.kind", Type: "string", Value: k})
	}
	switch sp.Status().Code() {
	case ptrace.StatusCodeError:
		js.Tags = append(js.Tags,
			jaegerKV{Key: "otel.status_code", Type: "string", Value: "ERROR"},
			jaegerKV{Key: "error", Type: "bool", Value: true})
	case ptrace.StatusCodeOk:
		js.Tags = append(js.Tags, jaegerKV{Key: "otel.status_code", Type: "string", Value: "OK"})
	}
	if d := sp.Status().Message(); d != "" {
		js.Tags = append(js.Tags, jaegerKV{Key: "otel.status_description", Type: "string", Value: d})
	}
	if ts := sp.TraceState().AsRaw(); ts != "" {
		js.Tags = append(js.Tags, jaegerKV{Key: "w3c.tracestate", Type: "string", Value: ts})
	}
	for _, ev := range sp.Events().All() {
		l := jaegerLog{Timestamp: int64(ev.Timestamp()) / 1000, Fields: []jaegerKV{}}
		if ev.Name() != "" {
			l.Fields = append(l.Fields, jaegerKV{Key: "event", Type: "string", Value: ev.Name()})
		}
		for k, v := range ev.Attributes().All() {
			l.Fields = append(l.Fields, toJaegerKV(k, v))
		}
		js.Logs = append(js.Logs, l)
	}
	return js
}

// toJaegerKV types an attribute as Jaeger does: strings, bools, int64,
// float64, bytes as base64 "binary", maps and slices as their JSON string.
func toJaegerKV(k string, v pcommon.Value) jaegerKV {
	switch v.Type() {
	case pcommon.ValueTypeBool:
		return jaegerKV{Key: k, Type: "bool", Value: v.Bool()}
	case pcommon.ValueTypeInt:
		return jaegerKV{Key: k, Type: "int64", Value: v.Int()}
	case pcommon.ValueTypeDouble:
		return jaegerKV{Key: k, Type: "float64", Value: v.Double()}
	case pcommon.ValueTypeBytes:
		return jaegerKV{Key: k, Type: "binary", Value: base64.StdEncoding.EncodeToString(v.Bytes().AsRaw())}
	}
	return jaegerKV{Key: k, Type: "string", Value: v.AsString()}
}
