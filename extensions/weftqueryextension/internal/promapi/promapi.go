// Package promapi serves the Prometheus HTTP API (query, query_range,
// series, labels, label values, exemplars, rules, alerts, buildinfo,
// metadata) over a storage.Queryable with the PromQL engine, and holds the
// Prometheus envelope and error types that weft's own API answers in too.
package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/weftobs/weft/internal/rulesapi"
)

// Error types of the Prometheus HTTP API, with their status codes.
type ErrorType string

const (
	ErrorBadData     ErrorType = "bad_data"
	ErrorExec        ErrorType = "execution"
	ErrorTimeout     ErrorType = "timeout"
	ErrorCanceled    ErrorType = "canceled"
	ErrorInternal    ErrorType = "internal"
	ErrorNotFound    ErrorType = "not_found"
	ErrorUnavailable ErrorType = "unavailable"
	ErrorTooLarge    ErrorType = "bad_data" // 413: the body was over max_request_bytes
)

// Error is an error answered in the Prometheus envelope.
type Error struct {
	Type   ErrorType
	Status int
	Err    error
}

func (e *Error) Error() string { return string(e.Type) + ": " + e.Err.Error() }

func BadData(err error) *Error { return &Error{ErrorBadData, http.StatusBadRequest, err} }

func InvalidParam(err error, name string) *Error {
	return BadData(fmt.Errorf("invalid parameter %q: %w", name, err))
}

// queryError classifies a query error as Prometheus does: timeout 503,
// canceled 499, storage 500, anything else "execution" 422.
func QueryError(err error) *Error {
	var (
		eqc promql.ErrQueryCanceled
		eqt promql.ErrQueryTimeout
		es  promql.ErrStorage
	)
	switch {
	case errors.As(err, &eqt), errors.Is(err, context.DeadlineExceeded):
		return &Error{ErrorTimeout, http.StatusServiceUnavailable, err}
	case errors.As(err, &eqc), errors.Is(err, context.Canceled):
		return &Error{ErrorCanceled, 499, err}
	case errors.As(err, &es):
		return &Error{ErrorInternal, http.StatusInternalServerError, err}
	}
	return &Error{ErrorExec, http.StatusUnprocessableEntity, err}
}

// Response is the Prometheus API envelope.
type Response struct {
	Status    string    `json:"status"`
	Data      any       `json:"data,omitempty"`
	ErrorType ErrorType `json:"errorType,omitempty"`
	Error     string    `json:"error,omitempty"`
	Warnings  []string  `json:"warnings,omitempty"`
	Infos     []string  `json:"infos,omitempty"`
}

// Handler is one API endpoint: data, or an error, plus annotations.
type Handler func(r *http.Request) (any, annotations.Annotations, *Error)

// API is the Prometheus HTTP API over a queryable.
type API struct {
	// Engine evaluates queries: the store's, shared with the rules
	// engine, with a plain parser.
	Engine *promql.Engine
	// Parser bounds every expression (max_query_length, max_query_nodes)
	// before the engine sees it, and parses selectors.
	Parser    parser.Parser
	Queryable storage.Queryable
	Exemplars storage.ExemplarQueryable
	Rules     rulesapi.Source // nil: no rules engine, empty lists
	Now       func() time.Time
	// Gate runs a data request in a query slot (the front door's query
	// bounds); its failures answer through Fail.
	Gate func(http.HandlerFunc) http.HandlerFunc
	// FormError classifies an error reading a request's form.
	FormError func(error) *Error
	// Observe sees every error answered (the front door counts bounds).
	Observe func(*Error)
	// Federation configures /federate (federate.go).
	Federation Federation
}

// Serve answers h's data or error in the Prometheus envelope.
func (a *API) Serve(h Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			Fail(w, a.FormError(err))
			return
		}
		data, annos, aerr := h(r)
		warnings, infos := annos.AsStrings(r.FormValue("query"), 10, 10)
		if aerr != nil {
			a.Observe(aerr)
			Write(w, aerr.Status, Response{Status: "error", ErrorType: aerr.Type, Error: aerr.Err.Error(), Warnings: warnings, Infos: infos})
			return
		}
		Write(w, http.StatusOK, Response{Status: "success", Data: data, Warnings: warnings, Infos: infos})
	}
}

// Fail answers aerr in the Prometheus envelope.
func Fail(w http.ResponseWriter, aerr *Error) {
	Write(w, aerr.Status, Response{Status: "error", ErrorType: aerr.Type, Error: aerr.Err.Error()})
}

// Write answers resp with status.
func Write(w http.ResponseWriter, status int, resp Response) {
	b, err := json.Marshal(resp)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(Response{Status: "error", ErrorType: ErrorInternal, Error: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Query is a Prometheus endpoint that reads the store: it runs in a
// query slot.
func (a *API) Query(h Handler) http.HandlerFunc { return a.Gate(a.Serve(h)) }

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	for _, m := range []string{"GET", "POST"} {
		mux.HandleFunc(m+" /api/v1/query", a.Query(a.query))
		mux.HandleFunc(m+" /api/v1/query_range", a.Query(a.queryRange))
		mux.HandleFunc(m+" /api/v1/series", a.Query(a.series))
		mux.HandleFunc(m+" /api/v1/labels", a.Query(a.labelNames))
		mux.HandleFunc(m+" /api/v1/query_exemplars", a.Query(a.queryExemplars))
	}
	mux.HandleFunc("GET /api/v1/label/{name}/values", a.Query(a.labelValues))
	mux.HandleFunc("GET /federate", a.Gate(a.federate))
	mux.HandleFunc("GET /api/v1/metadata", a.Serve(func(*http.Request) (any, annotations.Annotations, *Error) {
		return map[string]any{}, nil, nil
	}))
	mux.HandleFunc("GET /api/v1/status/buildinfo", a.Serve(func(*http.Request) (any, annotations.Annotations, *Error) {
		return buildInfo, nil, nil
	}))
	mux.HandleFunc("GET /api/v1/rules", a.Serve(a.rulesAPI))
	mux.HandleFunc("GET /api/v1/alerts", a.Serve(a.alertsAPI))
}

// buildInfo is /api/v1/status/buildinfo. The version is that of the
// Prometheus libraries weft evaluates PromQL with, so that clients (Grafana)
// pick the matching feature set.
var buildInfo = map[string]string{
	"version":   "3.15.1",
	"revision":  "weft",
	"branch":    "",
	"buildUser": "",
	"buildDate": "",
	"goVersion": runtime.Version(),
}

// Bounds of time parameters, as Prometheus defines them.
var (
	minTime = time.Unix(math.MinInt64/1000+62135596801, 0).UTC()
	maxTime = time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC()

	minTimeFormatted = minTime.Format(time.RFC3339Nano)
	maxTimeFormatted = maxTime.Format(time.RFC3339Nano)
)

// parseTime reads a Unix time in (fractional) seconds or RFC 3339.
func ParseTime(s string) (time.Time, error) {
	if t, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(t) || math.IsInf(t, 0) || t > float64(maxTime.Unix()) || t < float64(minTime.Unix()) {
			return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		sec, frac := math.Modf(t)
		frac = math.Round(frac*1000) / 1000
		return time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	switch s {
	case minTimeFormatted:
		return minTime, nil
	case maxTimeFormatted:
		return maxTime, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

func parseTimeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.FormValue(name)
	if v == "" {
		return def, nil
	}
	t, err := ParseTime(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time value for '%s': %w", name, err)
	}
	return t, nil
}

// parseDuration reads (fractional) seconds or a Prometheus duration ("5m").
func parseDuration(s string) (time.Duration, error) {
	if d, err := strconv.ParseFloat(s, 64); err == nil {
		ns := d * float64(time.Second)
		if math.IsNaN(ns) || ns >= float64(math.MaxInt64) || ns <= float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(ns), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}

// parseLimit reads a non-negative limit; 0 means none.
func parseLimit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, errors.New("limit must be non-negative")
	}
	return n, nil
}

// queryOpts reads lookback_delta.
func queryOpts(r *http.Request) (promql.QueryOpts, *Error) {
	var lookback time.Duration
	if v := r.FormValue("lookback_delta"); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return nil, BadData(fmt.Errorf("error parsing lookback delta duration: %w", err))
		}
		lookback = d
	}
	return promql.NewPrometheusQueryOpts(false, lookback), nil
}

// queryContext applies the timeout parameter to the request context.
func queryContext(r *http.Request) (context.Context, context.CancelFunc, *Error) {
	ctx := r.Context()
	if v := r.FormValue("timeout"); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return nil, nil, InvalidParam(err, "timeout")
		}
		c, cancel := context.WithTimeout(ctx, d)
		return c, cancel, nil
	}
	return ctx, func() {}, nil
}

// queryData is the data of /api/v1/query and /api/v1/query_range.
type queryData struct {
	ResultType parser.ValueType `json:"resultType"`
	Result     parser.Value     `json:"result"`
}

func (a *API) query(r *http.Request) (any, annotations.Annotations, *Error) {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return nil, nil, InvalidParam(err, "limit")
	}
	ts, err := parseTimeParam(r, "time", a.Now())
	if err != nil {
		return nil, nil, InvalidParam(err, "time")
	}
	ctx, cancel, aerr := queryContext(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	defer cancel()
	opts, aerr := queryOpts(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	if aerr := a.checkQuery(r.FormValue("query")); aerr != nil {
		return nil, nil, aerr
	}
	qry, err := a.Engine.NewInstantQuery(ctx, a.Queryable, opts, r.FormValue("query"), ts)
	if err != nil {
		return nil, nil, InvalidParam(err, "query")
	}
	defer qry.Close()
	return a.exec(ctx, qry, limit)
}

func (a *API) queryRange(r *http.Request) (any, annotations.Annotations, *Error) {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return nil, nil, InvalidParam(err, "limit")
	}
	start, err := ParseTime(r.FormValue("start"))
	if err != nil {
		return nil, nil, InvalidParam(err, "start")
	}
	end, err := ParseTime(r.FormValue("end"))
	if err != nil {
		return nil, nil, InvalidParam(err, "end")
	}
	if end.Before(start) {
		return nil, nil, InvalidParam(errors.New("end timestamp must not be before start time"), "end")
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		return nil, nil, InvalidParam(err, "step")
	}
	if step <= 0 {
		return nil, nil, InvalidParam(errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer"), "step")
	}
	if end.Sub(start)/step > 11000 {
		return nil, nil, BadData(errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"))
	}
	ctx, cancel, aerr := queryContext(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	defer cancel()
	opts, aerr := queryOpts(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	if aerr := a.checkQuery(r.FormValue("query")); aerr != nil {
		return nil, nil, aerr
	}
	qry, err := a.Engine.NewRangeQuery(ctx, a.Queryable, opts, r.FormValue("query"), start, end, step)
	if err != nil {
		return nil, nil, InvalidParam(err, "query")
	}
	defer qry.Close()
	return a.exec(ctx, qry, limit)
}

// checkQuery parses q with the API's parser, which refuses it over
// max_query_length or max_query_nodes, before the engine (whose parser
// is plain) parses it again: the same 400 as the engine's own parse error.
func (a *API) checkQuery(q string) *Error {
	if _, err := a.Parser.ParseExpr(q); err != nil {
		return InvalidParam(err, "query")
	}
	return nil
}

// exec runs a query and shapes its result; empty vectors and matrices are
// answered as [] (not null), as Prometheus does.
func (a *API) exec(ctx context.Context, qry promql.Query, limit int) (any, annotations.Annotations, *Error) {
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Warnings, QueryError(res.Err)
	}
	annos := res.Warnings
	switch v := res.Value.(type) {
	case promql.Vector:
		if v == nil {
			res.Value = promql.Vector{}
		} else if limit > 0 && len(v) > limit {
			res.Value = v[:limit]
			annos = annos.Add(errors.New("results truncated due to limit"))
		}
	case promql.Matrix:
		if v == nil {
			res.Value = promql.Matrix{}
		} else if limit > 0 && len(v) > limit {
			res.Value = v[:limit]
			annos = annos.Add(errors.New("results truncated due to limit"))
		}
	}
	return queryData{ResultType: res.Value.Type(), Result: res.Value}, annos, nil
}

// matcherSets parses match[]; each set must have a matcher that does not
// match the empty string.
func (a *API) matcherSets(ms []string) ([][]*labels.Matcher, error) {
	sets, err := a.Parser.ParseMetricSelectors(ms)
	if err != nil {
		return nil, err
	}
	for _, set := range sets {
		if !slices.ContainsFunc(set, func(m *labels.Matcher) bool { return m != nil && !m.Matches("") }) {
			return nil, errors.New("match[] must contain at least one non-empty matcher")
		}
	}
	return sets, nil
}

// timeRange reads start and end (defaults: all time).
func timeRange(r *http.Request) (start, end time.Time, aerr *Error) {
	start, err := parseTimeParam(r, "start", minTime)
	if err != nil {
		return start, end, InvalidParam(err, "start")
	}
	end, err = parseTimeParam(r, "end", maxTime)
	if err != nil {
		return start, end, InvalidParam(err, "end")
	}
	return start, end, nil
}

func (a *API) series(r *http.Request) (any, annotations.Annotations, *Error) {
	if len(r.Form["match[]"]) == 0 {
		return nil, nil, BadData(errors.New("no match[] parameter provided"))
	}
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return nil, nil, InvalidParam(err, "limit")
	}
	start, end, aerr := timeRange(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	sets, err := a.matcherSets(r.Form["match[]"])
	if err != nil {
		return nil, nil, InvalidParam(err, "match[]")
	}
	q, err := a.Queryable.Querier(timestamp.FromTime(start), timestamp.FromTime(end))
	if err != nil {
		return nil, nil, QueryError(err)
	}
	defer q.Close()
	hints := &storage.SelectHints{Start: timestamp.FromTime(start), End: timestamp.FromTime(end), Func: "series"}
	var annos annotations.Annotations
	out := []labels.Labels{}
	seen := map[uint64][]labels.Labels{}
	ctx := r.Context()
	for _, set := range sets {
		ss := q.Select(ctx, false, hints, set...)
		for i := 0; ss.Next(); i++ {
			// The series set does not watch ctx; timeout and a client that
			// goes away end the listing here.
			if i%1024 == 0 && ctx.Err() != nil {
				return nil, annos, QueryError(ctx.Err())
			}
			ls := ss.At().Labels()
			h := ls.Hash()
			if slices.ContainsFunc(seen[h], func(o labels.Labels) bool { return labels.Equal(o, ls) }) {
				continue
			}
			seen[h] = append(seen[h], ls)
			out = append(out, ls)
		}
		annos = annos.Merge(ss.Warnings())
		if err := ss.Err(); err != nil {
			return nil, annos, QueryError(err)
		}
	}
	slices.SortFunc(out, labels.Compare)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
		annos = annos.Add(errors.New("results truncated due to limit"))
	}
	return out, annos, nil
}

func (a *API) labelNames(r *http.Request) (any, annotations.Annotations, *Error) {
	return a.labelsOf(r, "")
}

func (a *API) labelValues(r *http.Request) (any, annotations.Annotations, *Error) {
	name := r.PathValue("name")
	if !model.LegacyValidation.IsValidLabelName(name) {
		return nil, nil, BadData(fmt.Errorf("invalid label name: %q", name))
	}
	return a.labelsOf(r, name)
}

// labelsOf answers /api/v1/labels (name empty) and label values of name,
// optionally restricted by match[], sorted, deduplicated.
func (a *API) labelsOf(r *http.Request, name string) (any, annotations.Annotations, *Error) {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return nil, nil, InvalidParam(err, "limit")
	}
	start, end, aerr := timeRange(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	var sets [][]*labels.Matcher
	if ms := r.Form["match[]"]; len(ms) > 0 {
		if sets, err = a.matcherSets(ms); err != nil {
			return nil, nil, InvalidParam(err, "match[]")
		}
	}
	q, err := a.Queryable.Querier(timestamp.FromTime(start), timestamp.FromTime(end))
	if err != nil {
		return nil, nil, QueryError(err)
	}
	defer q.Close()
	hints := &storage.LabelHints{}
	get := func(ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
		if name == "" {
			return q.LabelNames(r.Context(), hints, ms...)
		}
		return q.LabelValues(r.Context(), name, hints, ms...)
	}
	var annos annotations.Annotations
	out := []string{}
	if len(sets) == 0 {
		vals, w, err := get()
		annos = annos.Merge(w)
		if err != nil {
			return nil, annos, QueryError(err)
		}
		out = append(out, vals...)
	}
	for _, set := range sets {
		vals, w, err := get(set...)
		annos = annos.Merge(w)
		if err != nil {
			return nil, annos, QueryError(err)
		}
		out = append(out, vals...)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
		annos = annos.Add(errors.New("results truncated due to limit"))
	}
	return out, annos, nil
}

// exemplarJSON is one exemplar as Prometheus encodes it: value as a string,
// timestamp in seconds.
type exemplarJSON struct {
	Labels    labels.Labels `json:"labels"`
	Value     string        `json:"value"`
	Timestamp json.Number   `json:"timestamp"`
}

type exemplarResult struct {
	SeriesLabels labels.Labels  `json:"seriesLabels"`
	Exemplars    []exemplarJSON `json:"exemplars"`
}

func (a *API) queryExemplars(r *http.Request) (any, annotations.Annotations, *Error) {
	start, end, aerr := timeRange(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	if end.Before(start) {
		return nil, nil, InvalidParam(errors.New("end timestamp must not be before start timestamp"), "end")
	}
	expr, err := a.Parser.ParseExpr(r.FormValue("query"))
	if err != nil {
		return nil, nil, BadData(err)
	}
	selectors := parser.ExtractSelectors(expr)
	if len(selectors) < 1 {
		return []exemplarResult{}, nil, nil
	}
	eq, err := a.Exemplars.ExemplarQuerier(r.Context())
	if err != nil {
		return nil, nil, QueryError(err)
	}
	res, err := eq.Select(timestamp.FromTime(start), timestamp.FromTime(end), selectors...)
	if err != nil {
		return nil, nil, QueryError(err)
	}
	out := make([]exemplarResult, 0, len(res))
	for _, qr := range res {
		er := exemplarResult{SeriesLabels: qr.SeriesLabels, Exemplars: make([]exemplarJSON, 0, len(qr.Exemplars))}
		for _, ex := range qr.Exemplars {
			er.Exemplars = append(er.Exemplars, exemplarJSON{
				Labels: ex.Labels, Value: strconv.FormatFloat(ex.Value, 'f', -1, 64), Timestamp: FormatMillis(ex.Ts),
			})
		}
		out = append(out, er)
	}
	return out, nil, nil
}

// formatMillis writes a millisecond timestamp as seconds with up to three
// decimals, as Prometheus does ("1600096945.479", "1600096945").
func FormatMillis(ms int64) json.Number {
	sec, frac := ms/1000, ms%1000
	if frac < 0 {
		sec, frac = sec-1, frac+1000
	}
	if frac == 0 {
		return json.Number(strconv.FormatInt(sec, 10))
	}
	f := fmt.Sprintf("%03d", frac)
	return json.Number(strconv.FormatInt(sec, 10) + "." + strings.TrimRight(f, "0"))
}

// Rules and alerts in the shape of Prometheus's /api/v1/rules and /alerts.
type (
	ruleGroupJSON struct {
		Name           string     `json:"name"`
		File           string     `json:"file"`
		Rules          []ruleJSON `json:"rules"`
		Interval       float64    `json:"interval"`
		Limit          int        `json:"limit"`
		EvaluationTime float64    `json:"evaluationTime"`
		LastEvaluation time.Time  `json:"lastEvaluation"`
	}
	ruleJSON struct {
		State          string            `json:"state,omitempty"`
		Name           string            `json:"name"`
		Query          string            `json:"query"`
		Duration       *float64          `json:"duration,omitempty"`
		Labels         map[string]string `json:"labels"`
		Annotations    map[string]string `json:"annotations,omitempty"`
		Alerts         []AlertJSON       `json:"alerts,omitempty"`
		Health         string            `json:"health"`
		LastError      string            `json:"lastError,omitempty"`
		EvaluationTime float64           `json:"evaluationTime"`
		LastEvaluation time.Time         `json:"lastEvaluation"`
		Type           string            `json:"type"`
		// weft: where the rule is evaluated ("node" or "cluster") and why;
		// partials name the cluster rule they are evaluated for.
		Scope       string `json:"scope,omitempty"`
		ScopeReason string `json:"scopeReason,omitempty"`
		PartialOf   string `json:"partialOf,omitempty"`
	}
	AlertJSON struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		State       string            `json:"state"`
		ActiveAt    *time.Time        `json:"activeAt,omitempty"`
		Value       string            `json:"value"`
		TraceIDs    []string          `json:"traceIDs,omitempty"`
	}
)

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func AlertsJSON(as []rulesapi.Alert) []AlertJSON {
	out := make([]AlertJSON, 0, len(as))
	for _, a := range as {
		aj := AlertJSON{
			Labels: nonNil(a.Labels), Annotations: nonNil(a.Annotations), State: a.State,
			Value: strconv.FormatFloat(a.Value, 'e', -1, 64), TraceIDs: a.TraceIDs,
		}
		if !a.ActiveAt.IsZero() {
			t := a.ActiveAt.UTC()
			aj.ActiveAt = &t
		}
		out = append(out, aj)
	}
	return out
}

func (a *API) rulesAPI(r *http.Request) (any, annotations.Annotations, *Error) {
	typ := strings.ToLower(r.FormValue("type"))
	if typ != "" && typ != "alert" && typ != "record" {
		return nil, nil, InvalidParam(fmt.Errorf("not supported value %q", typ), "type")
	}
	groups := []ruleGroupJSON{}
	if a.Rules == nil {
		return map[string]any{"groups": groups}, nil, nil
	}
	for _, g := range a.Rules.RuleGroups() {
		gj := ruleGroupJSON{
			Name: g.Name, File: g.File, Rules: []ruleJSON{}, Interval: g.Interval.Seconds(),
			EvaluationTime: g.EvaluationTime.Seconds(), LastEvaluation: g.LastEvaluation.UTC(),
		}
		for _, rl := range g.Rules {
			if typ == "alert" && rl.Type != "alerting" || typ == "record" && rl.Type != "recording" {
				continue
			}
			rj := ruleJSON{
				Name: rl.Name, Query: rl.Query, Labels: nonNil(rl.Labels), Health: rl.Health, LastError: rl.LastError,
				EvaluationTime: rl.EvaluationTime.Seconds(), LastEvaluation: rl.LastEvaluation.UTC(), Type: rl.Type,
				Scope: rl.Scope, ScopeReason: rl.ScopeReason, PartialOf: rl.PartialOf,
			}
			if rj.Health == "" {
				rj.Health = "unknown"
			}
			if rl.Type == "alerting" {
				d := rl.For.Seconds()
				rj.Duration, rj.State = &d, rl.State
				rj.Annotations = nonNil(rl.Annotations)
				rj.Alerts = AlertsJSON(rl.Alerts)
				if rj.State == "" {
					rj.State = "inactive"
				}
			}
			gj.Rules = append(gj.Rules, rj)
		}
		if typ == "" || len(gj.Rules) > 0 {
			groups = append(groups, gj)
		}
	}
	return map[string]any{"groups": groups}, nil, nil
}

func (a *API) alertsAPI(*http.Request) (any, annotations.Annotations, *Error) {
	var as []rulesapi.Alert
	if a.Rules != nil {
		as = a.Rules.Alerts()
	}
	return map[string]any{"alerts": AlertsJSON(as)}, nil, nil
}
