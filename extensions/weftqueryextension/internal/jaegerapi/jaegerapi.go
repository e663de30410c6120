// Package jaegerapi serves the Jaeger query service's HTTP API (the one
// Grafana's Jaeger data source and the Jaeger UI read: services, operations,
// a trace by ID, a trace search) over weft_store's spans, and converts
// stored spans to Jaeger's JSON model as Jaeger's OTLP translator does.
package jaegerapi

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

	"github.com/weftobs/weft/extensions/weftstoreextension"
)

// The Jaeger query service's JSON model (written from its responses; Jaeger's
// own types are internal to its module).
type (
	Envelope struct {
		Data   any     `json:"data"`
		Total  int     `json:"total"`
		Limit  int     `json:"limit"`
		Offset int     `json:"offset"`
		Errors []Error `json:"errors"`
	}
	Error struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}
	Trace struct {
		TraceID   string             `json:"traceID"`
		Spans     []Span             `json:"spans"`
		Processes map[string]Process `json:"processes"`
		Warnings  []string           `json:"warnings"`
	}
	Span struct {
		TraceID       string   `json:"traceID"`
		SpanID        string   `json:"spanID"`
		Flags         uint32   `json:"flags,omitempty"`
		OperationName string   `json:"operationName"`
		References    []Ref    `json:"references"`
		StartTime     int64    `json:"startTime"` // µs since the epoch
		Duration      int64    `json:"duration"`  // µs
		Tags          []KV     `json:"tags"`
		Logs          []Log    `json:"logs"`
		ProcessID     string   `json:"processID"`
		Warnings      []string `json:"warnings"`
	}
	Ref struct {
		RefType string `json:"refType"` // CHILD_OF or FOLLOWS_FROM
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	}
	KV struct {
		Key   string `json:"key"`
		Type  string `json:"type"` // string, bool, int64, float64, binary
		Value any    `json:"value"`
	}
	Log struct {
		Timestamp int64 `json:"timestamp"`
		Fields    []KV  `json:"fields"`
	}
	Process struct {
		ServiceName string `json:"serviceName"`
		Tags        []KV   `json:"tags"`
	}
)

// Catalog lists what the store holds: weftstore's *Store.
type Catalog interface {
	Services() []string
	Operations(service string) []string
}

// Traces reads spans: weftstore's *Store.
type Traces interface {
	Trace(id pcommon.TraceID) ([]weftstoreextension.Span, error)
	FindTraces(q weftstoreextension.SpanQuery) ([]pcommon.TraceID, error)
}

// API is the Jaeger HTTP API over a store.
type API struct {
	Catalog Catalog
	Traces  Traces
	// Gate runs a trace request in a query slot (the front door's query
	// bounds); its failures answer through Fail.
	Gate func(http.HandlerFunc) http.HandlerFunc
	// Now is the clock of a search without start and end.
	Now func() time.Time
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/services", func(w http.ResponseWriter, _ *http.Request) {
		svcs := a.Catalog.Services()
		write(w, http.StatusOK, Envelope{Data: nonNilStrings(svcs), Total: len(svcs)})
	})
	mux.HandleFunc("GET /api/services/{service}/operations", func(w http.ResponseWriter, r *http.Request) {
		ops := a.Catalog.Operations(r.PathValue("service"))
		write(w, http.StatusOK, Envelope{Data: nonNilStrings(ops), Total: len(ops)})
	})
	// Traces are read in a query slot, as the other data requests.
	mux.HandleFunc("GET /api/traces/{traceID}", a.Gate(a.trace))
	mux.HandleFunc("GET /api/traces", a.Gate(a.search))
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func write(w http.ResponseWriter, status int, env Envelope) {
	b, err := json.Marshal(env)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(Envelope{Errors: []Error{{Code: status, Msg: err.Error()}}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Fail answers an error in Jaeger's envelope.
func Fail(w http.ResponseWriter, status int, msg string) {
	write(w, status, Envelope{Errors: []Error{{Code: status, Msg: msg}}})
}

// ParseTraceID reads a hex trace ID of 1 to 32 digits (shorter IDs are
// left-padded with zeros, as Jaeger accepts them).
func ParseTraceID(s string) (pcommon.TraceID, error) {
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

func (a *API) trace(w http.ResponseWriter, r *http.Request) {
	id, err := ParseTraceID(r.PathValue("traceID"))
	if err != nil {
		Fail(w, http.StatusBadRequest, err.Error())
		return
	}
	spans, err := a.Traces.Trace(id)
	if err != nil {
		Fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	if len(spans) == 0 {
		Fail(w, http.StatusNotFound, "trace not found")
		return
	}
	write(w, http.StatusOK, Envelope{Data: []Trace{ToTrace(id, spans)}})
}

// parseSpanQuery reads /api/traces's parameters: service (required),
// operation, tags (JSON object) or tag=k:v, start/end (µs), lookback,
// minDuration/maxDuration (Go durations), limit.
func parseSpanQuery(r *http.Request, now time.Time) (weftstoreextension.SpanQuery, error) {
	q := r.URL.Query()
	sq := weftstoreextension.SpanQuery{Service: q.Get("service"), Operation: q.Get("operation")}
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

func (a *API) search(w http.ResponseWriter, r *http.Request) {
	// traceID=… lists traces by ID, as Jaeger does.
	if ids := r.URL.Query()["traceID"]; len(ids) > 0 {
		var out []Trace
		for _, v := range ids {
			id, err := ParseTraceID(v)
			if err != nil {
				Fail(w, http.StatusBadRequest, err.Error())
				return
			}
			spans, err := a.Traces.Trace(id)
			if err != nil {
				Fail(w, http.StatusInternalServerError, err.Error())
				return
			}
			if len(spans) > 0 {
				out = append(out, ToTrace(id, spans))
			}
		}
		write(w, http.StatusOK, Envelope{Data: nonNilTraces(out)})
		return
	}
	sq, err := parseSpanQuery(r, a.Now())
	if err != nil {
		Fail(w, http.StatusBadRequest, err.Error())
		return
	}
	ids, err := a.Traces.FindTraces(sq)
	if err != nil {
		Fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := make([]Trace, 0, len(ids))
	for _, id := range ids {
		spans, err := a.Traces.Trace(id)
		if err != nil {
			Fail(w, http.StatusInternalServerError, err.Error())
			return
		}
		if len(spans) > 0 {
			out = append(out, ToTrace(id, spans))
		}
	}
	write(w, http.StatusOK, Envelope{Data: out})
}

func nonNilTraces(t []Trace) []Trace {
	if t == nil {
		return []Trace{}
	}
	return t
}

// ToTrace converts stored spans (one pdata span each) to Jaeger's
// model, as Jaeger's OTLP translator does: resources become processes
// (p1, p2, … in order of first use), status and kind become tags, events
// logs, the parent a CHILD_OF reference and links FOLLOWS_FROM.
func ToTrace(id pcommon.TraceID, spans []weftstoreextension.Span) Trace {
	t := Trace{TraceID: id.String(), Spans: make([]Span, 0, len(spans)), Processes: map[string]Process{}}
	var procKeys []string // canonical JSON of each process, index+1 = pN
	for _, st := range spans {
		rss := st.Data.ResourceSpans()
		if rss.Len() == 0 {
			continue
		}
		rs := rss.At(0)
		proc := toProcess(rs.Resource())
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
				t.Spans = append(t.Spans, toSpan(sp, ss.Scope(), pid))
			}
		}
	}
	return t
}

func toProcess(res pcommon.Resource) Process {
	p := Process{Tags: []KV{}}
	for k, v := range res.Attributes().All() {
		if k == "service.name" {
			p.ServiceName = v.AsString()
			continue
		}
		p.Tags = append(p.Tags, toKV(k, v))
	}
	if p.ServiceName == "" {
		p.ServiceName = "unknown_service"
	}
	slices.SortFunc(p.Tags, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	return p
}

var spanKinds = map[ptrace.SpanKind]string{
	ptrace.SpanKindServer:   "server",
	ptrace.SpanKindClient:   "client",
	ptrace.SpanKindProducer: "producer",
	ptrace.SpanKindConsumer: "consumer",
	ptrace.SpanKindInternal: "internal",
}

func toSpan(sp ptrace.Span, scope pcommon.InstrumentationScope, pid string) Span {
	tid := sp.TraceID().String()
	js := Span{
		TraceID: tid, SpanID: sp.SpanID().String(), Flags: sp.Flags(), OperationName: sp.Name(),
		References: []Ref{}, Tags: []KV{}, Logs: []Log{}, ProcessID: pid,
		StartTime: int64(sp.StartTimestamp()) / 1000,
		Duration:  (int64(sp.EndTimestamp()) - int64(sp.StartTimestamp())) / 1000,
	}
	if p := sp.ParentSpanID(); !p.IsEmpty() {
		js.References = append(js.References, Ref{RefType: "CHILD_OF", TraceID: tid, SpanID: p.String()})
	}
	for _, l := range sp.Links().All() {
		js.References = append(js.References, Ref{RefType: "FOLLOWS_FROM", TraceID: l.TraceID().String(), SpanID: l.SpanID().String()})
	}
	for k, v := range sp.Attributes().All() {
		js.Tags = append(js.Tags, toKV(k, v))
	}
	if n := scope.Name(); n != "" {
		js.Tags = append(js.Tags, KV{Key: "otel.scope.name", Type: "string", Value: n})
	}
	if v := scope.Version(); v != "" {
		js.Tags = append(js.Tags, KV{Key: "otel.scope.version", Type: "string", Value: v})
	}
	if k, ok := spanKinds[sp.Kind()]; ok {
		js.Tags = append(js.Tags, KV{Key: "span.kind", Type: "string", Value: k})
	}
	switch sp.Status().Code() {
	case ptrace.StatusCodeError:
		js.Tags = append(js.Tags,
			KV{Key: "otel.status_code", Type: "string", Value: "ERROR"},
			KV{Key: "error", Type: "bool", Value: true})
	case ptrace.StatusCodeOk:
		js.Tags = append(js.Tags, KV{Key: "otel.status_code", Type: "string", Value: "OK"})
	}
	if d := sp.Status().Message(); d != "" {
		js.Tags = append(js.Tags, KV{Key: "otel.status_description", Type: "string", Value: d})
	}
	if ts := sp.TraceState().AsRaw(); ts != "" {
		js.Tags = append(js.Tags, KV{Key: "w3c.tracestate", Type: "string", Value: ts})
	}
	for _, ev := range sp.Events().All() {
		l := Log{Timestamp: int64(ev.Timestamp()) / 1000, Fields: []KV{}}
		if ev.Name() != "" {
			l.Fields = append(l.Fields, KV{Key: "event", Type: "string", Value: ev.Name()})
		}
		for k, v := range ev.Attributes().All() {
			l.Fields = append(l.Fields, toKV(k, v))
		}
		js.Logs = append(js.Logs, l)
	}
	return js
}

// toKV types an attribute as Jaeger does: strings, bools, int64,
// float64, bytes as base64 "binary", maps and slices as their JSON string.
func toKV(k string, v pcommon.Value) KV {
	switch v.Type() {
	case pcommon.ValueTypeBool:
		return KV{Key: k, Type: "bool", Value: v.Bool()}
	case pcommon.ValueTypeInt:
		return KV{Key: k, Type: "int64", Value: v.Int()}
	case pcommon.ValueTypeDouble:
		return KV{Key: k, Type: "float64", Value: v.Double()}
	case pcommon.ValueTypeBytes:
		return KV{Key: k, Type: "binary", Value: base64.StdEncoding.EncodeToString(v.Bytes().AsRaw())}
	}
	return KV{Key: k, Type: "string", Value: v.AsString()}
}
