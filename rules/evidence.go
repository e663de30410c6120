package rules

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/weftobs/weft/extensions/weftstoreextension"
)

// Annotation names of the evidence attached to firing alerts.
const (
	annTraceIDs = "weft_trace_ids"   // comma-separated hex trace IDs
	annSource   = "weft_evidence"    // "exemplars" or "failing_spans"
	annLinks    = "weft_trace_links" // one link per line, same order as the IDs
	annLogs     = "weft_logs"        // first log lines of the traces, one per line
)

// evidenceLookback is how far before an alert became active failing
// requests are searched.
const evidenceLookback = 5 * time.Minute

// maxLogLineLen cuts long log bodies in the weft_logs annotation.
const maxLogLineLen = 300

// evidenceSource is what the evidence lookup needs from the store.
type evidenceSource interface {
	ExemplarQueryable() storage.ExemplarQueryable
	FailingTraces(weftstoreextension.TraceSelector) []weftstoreextension.FailingTrace
	SearchLogs(weftstoreextension.LogQuery) ([]weftstoreextension.LogRecord, error)
}

// evidence is what is attached to one alert.
type evidence struct {
	source   string
	traceIDs []pcommon.TraceID
	links    []string
	logs     []string
}

func (e *evidence) annotate(b *labels.Builder) {
	if e == nil || len(e.traceIDs) == 0 {
		return
	}
	ids := make([]string, len(e.traceIDs))
	for i, id := range e.traceIDs {
		ids[i] = id.String()
	}
	b.Set(annTraceIDs, strings.Join(ids, ","))
	b.Set(annSource, e.source)
	if len(e.links) > 0 {
		b.Set(annLinks, strings.Join(e.links, "\n"))
	}
	if len(e.logs) > 0 {
		b.Set(annLogs, strings.Join(e.logs, "\n"))
	}
}

// evidenceFinder looks up and caches the evidence of alerts. A lookup that
// does not finish within the budget keeps running in the background and
// its result is used from the next notification of that alert on.
type evidenceFinder struct {
	src       evidenceSource
	parser    parser.Parser
	maxTraces int
	maxLines  int
	link      *template.Template
	budget    time.Duration

	mu       sync.Mutex
	cache    map[evidenceKey]*cachedEvidence
	waiters  map[evidenceKey]chan struct{} // closed when the lookup of that alert ends
	wg       sync.WaitGroup
	timeouts int64
}

// evidenceKey identifies one firing episode of an alert: a new episode
// (new activeAt) gets a new lookup.
type evidenceKey struct {
	labels   uint64
	activeAt int64
}

type cachedEvidence struct {
	ev       *evidence
	lastUsed time.Time
}

const (
	maxCachedEvidence = 10000
	// evidenceTTL keeps evidence for resolved alerts, which Prometheus
	// resends for 15 minutes.
	evidenceTTL = 30 * time.Minute
)

func newEvidenceFinder(src evidenceSource, p parser.Parser, cfg EvidenceConfig) (*evidenceFinder, error) {
	f := &evidenceFinder{
		src: src, parser: p, maxTraces: cfg.MaxTraces, maxLines: cfg.MaxLogLines, budget: cfg.Timeout,
		cache: map[evidenceKey]*cachedEvidence{}, waiters: map[evidenceKey]chan struct{}{},
	}
	if cfg.LinkTemplate != "" {
		t, err := template.New("link").Option("missingkey=error").Parse(cfg.LinkTemplate)
		if err != nil {
			return nil, fmt.Errorf("evidence.link_template: %w", err)
		}
		f.link = t
	}
	return f, nil
}

// alertRef is what the finder needs of one alert.
type alertRef struct {
	labels   labels.Labels
	activeAt time.Time
	at       time.Time // evaluation time of the notification
	resolved bool
}

func (a alertRef) key() evidenceKey {
	return evidenceKey{labels: a.labels.Hash(), activeAt: a.activeAt.UnixNano()}
}

// find returns the evidence of each alert (nil where there is none yet),
// waiting at most the budget for lookups it starts. Resolved alerts get the
// evidence they fired with.
func (f *evidenceFinder) find(ctx context.Context, expr string, alerts []alertRef) []*evidence {
	out := make([]*evidence, len(alerts))
	if f == nil || f.maxTraces == 0 {
		return out
	}
	now := time.Now()
	var wait []chan struct{}
	f.mu.Lock()
	f.expire(now)
	for i, a := range alerts {
		h := a.key()
		if c, ok := f.cache[h]; ok {
			out[i] = c.ev
			c.lastUsed = now
			continue
		}
		if a.resolved {
			continue
		}
		if ch, running := f.waiters[h]; running {
			wait = append(wait, ch)
			continue
		}
		ch := make(chan struct{})
		f.waiters[h] = ch
		wait = append(wait, ch)
		f.wg.Add(1)
		go f.lookup(ctx, h, expr, a, ch)
	}
	f.mu.Unlock()
	if len(wait) == 0 {
		return out
	}
	timer := time.NewTimer(f.budget)
	defer timer.Stop()
	for _, ch := range wait {
		select {
		case <-ch:
		case <-timer.C:
			f.mu.Lock()
			f.timeouts++
			f.mu.Unlock()
			return f.fill(alerts, out)
		case <-ctx.Done():
			return f.fill(alerts, out)
		}
	}
	return f.fill(alerts, out)
}

func (f *evidenceFinder) fill(alerts []alertRef, out []*evidence) []*evidence {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, a := range alerts {
		if c, ok := f.cache[a.key()]; ok && out[i] == nil {
			out[i] = c.ev
		}
	}
	return out
}

// expire drops evidence not used for evidenceTTL, and everything when the
// cache is full. Called with f.mu held.
func (f *evidenceFinder) expire(now time.Time) {
	if len(f.cache) >= maxCachedEvidence {
		clear(f.cache)
	}
	for k, c := range f.cache {
		if now.Sub(c.lastUsed) > evidenceTTL {
			delete(f.cache, k)
		}
	}
}

// wait blocks until the running lookups are done (Shutdown).
func (f *evidenceFinder) wait() {
	if f != nil {
		f.wg.Wait()
	}
}

func (f *evidenceFinder) lookup(ctx context.Context, h evidenceKey, expr string, a alertRef, done chan struct{}) {
	defer f.wg.Done()
	ev := f.collect(ctx, expr, a)
	f.mu.Lock()
	f.cache[h] = &cachedEvidence{ev: ev, lastUsed: time.Now()}
	delete(f.waiters, h)
	f.mu.Unlock()
	close(done)
}

// collect finds failing trace IDs for an alert: exemplars of the series
// the expression selects that agree with the alert's labels, newest first;
// else failing spans of the alert's pod or service in the window.
func (f *evidenceFinder) collect(ctx context.Context, expr string, a alertRef) *evidence {
	end := a.at
	if end.IsZero() {
		end = time.Now()
	}
	start := a.activeAt.Add(-evidenceLookback)
	ev := &evidence{source: "exemplars", traceIDs: f.fromExemplars(ctx, expr, a.labels, start, end)}
	if len(ev.traceIDs) == 0 {
		ev.source = "failing_spans"
		ev.traceIDs = f.fromFailingSpans(a.labels, start, end)
	}
	if len(ev.traceIDs) == 0 {
		return &evidence{}
	}
	for _, id := range ev.traceIDs {
		if f.link != nil {
			var b strings.Builder
			if err := f.link.Execute(&b, map[string]any{"TraceID": id.String(), "Labels": a.labels.Map()}); err == nil {
				ev.links = append(ev.links, b.String())
			}
		}
		ev.logs = append(ev.logs, f.firstLogLines(id)...)
	}
	return ev
}

func (f *evidenceFinder) fromExemplars(ctx context.Context, expr string, alertLabels labels.Labels, start, end time.Time) []pcommon.TraceID {
	e, err := f.parser.ParseExpr(expr)
	if err != nil {
		return nil
	}
	sels := parser.ExtractSelectors(e)
	if len(sels) == 0 {
		return nil
	}
	q, err := f.src.ExemplarQueryable().ExemplarQuerier(ctx)
	if err != nil {
		return nil
	}
	res, err := q.Select(start.UnixMilli(), end.UnixMilli(), sels...)
	if err != nil {
		return nil
	}
	type hit struct {
		t  int64
		id pcommon.TraceID
	}
	var hits []hit
	for _, r := range res {
		if !agrees(r.SeriesLabels, alertLabels) {
			continue
		}
		for _, ex := range r.Exemplars {
			tid := ex.Labels.Get("trace_id")
			if tid == "" {
				tid = ex.Labels.Get("traceID")
			}
			if id, ok := parseTraceID(tid); ok {
				hits = append(hits, hit{ex.Ts, id})
			}
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int { return cmp.Compare(b.t, a.t) })
	var ids []pcommon.TraceID
	for _, h := range hits {
		if !slices.Contains(ids, h.id) {
			ids = append(ids, h.id)
			if len(ids) == f.maxTraces {
				break
			}
		}
	}
	return ids
}

// agrees reports whether every label the series and the alert both carry
// has the same value.
func agrees(series, alert labels.Labels) bool {
	ok := true
	series.Range(func(l labels.Label) {
		if l.Name == model.MetricNameLabel {
			return
		}
		if v := alert.Get(l.Name); v != "" && v != l.Value {
			ok = false
		}
	})
	return ok
}

// serviceLabels are the alert labels tried, in order, as the service name
// of failing spans.
var serviceLabels = []string{"service_name", "service", "destination_service_name", "app", "job"}

func (f *evidenceFinder) fromFailingSpans(ls labels.Labels, start, end time.Time) []pcommon.TraceID {
	pod := weftstoreextension.Pod{Namespace: ls.Get("k8s_namespace_name"), Name: ls.Get("k8s_pod_name")}
	if pod.Name == "" {
		pod = weftstoreextension.Pod{Namespace: ls.Get("namespace"), Name: ls.Get("pod")}
	}
	var sels []weftstoreextension.TraceSelector
	if pod.Name != "" {
		sels = append(sels, weftstoreextension.TraceSelector{Pod: pod})
	}
	for _, n := range serviceLabels {
		v := ls.Get(n)
		if v == "" {
			continue
		}
		sels = append(sels, weftstoreextension.TraceSelector{Service: v})
		if i := strings.LastIndexByte(v, '/'); n == "job" && i >= 0 {
			sels = append(sels, weftstoreextension.TraceSelector{Service: v[i+1:]})
		}
	}
	for _, sel := range sels {
		sel.Start, sel.End, sel.Limit = start, end, f.maxTraces
		if ft := f.src.FailingTraces(sel); len(ft) > 0 {
			ids := make([]pcommon.TraceID, len(ft))
			for i, t := range ft {
				ids[i] = t.TraceID
			}
			return ids
		}
	}
	return nil
}

// firstLogLines returns the oldest log lines of a trace, formatted.
func (f *evidenceFinder) firstLogLines(id pcommon.TraceID) []string {
	if f.maxLines == 0 {
		return nil
	}
	recs, err := f.src.SearchLogs(weftstoreextension.LogQuery{TraceID: id, Limit: 1000})
	if err != nil || len(recs) == 0 {
		return nil
	}
	recs = recs[max(0, len(recs)-f.maxLines):] // newest first: the tail is the oldest
	out := make([]string, 0, len(recs))
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		body := strings.ReplaceAll(r.Body, "\n", " ")
		if len(body) > maxLogLineLen {
			body = body[:maxLogLineLen] + "…"
		}
		out = append(out, fmt.Sprintf("%s %s %s %s", r.Time.UTC().Format(time.RFC3339Nano), id, r.Pod, body))
	}
	return out
}

// parseTraceID reads a 32-digit hex trace ID; all zeros is no ID.
func parseTraceID(s string) (pcommon.TraceID, bool) {
	var id pcommon.TraceID
	if len(s) != 2*len(id) {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return pcommon.TraceID{}, false
	}
	return id, !id.IsEmpty()
}

// cached returns the trace IDs found for an alert's current firing episode,
// if a lookup has finished; it never starts one.
func (f *evidenceFinder) cached(a alertRef) []pcommon.TraceID {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.cache[a.key()]; ok && c.ev != nil {
		return append([]pcommon.TraceID(nil), c.ev.traceIDs...)
	}
	return nil
}
