// Package statuspage renders the node's status page (store, rules,
// scrape targets, tailed files, exporter queues from the collector's own
// /metrics) and the trace view: server-rendered HTML, no scripts.
package statuspage

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/weftobs/weft/extensions/weftpinsextension"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/jaegerapi"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/weftapi"
	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/internal/nodestatus"
	"github.com/weftobs/weft/internal/rulesapi"
)

// The status page and the trace view: server-rendered HTML, no scripts, no
// build step. Their only style is the <style> element of pageHead (no style
// attributes), which the Content-Security-Policy allows by its hash.

// pageStyle is the pages' stylesheet. Bars of the waterfall are SVG
// rectangles placed by their x and width attributes; indentation is one
// class per depth (.d0 … .d30).
var pageStyle = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%}td,th{padding:3px 8px;text-align:left;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f6f6f6}.firing{color:#b00020;font-weight:bold}.pending{color:#b36b00}.ok{color:#0a7d32}.up{color:#0a7d32}.down{color:#b00020;font-weight:bold}.lag{color:#b36b00}.err{color:#b00020}
.lbl{font:12px monospace;background:#f1f1f1;border-radius:3px;padding:0 3px;margin-right:3px}
.wf{display:block;width:100%;height:18px;background:#fafafa}.bar{fill:#4a7bd0}.bar.error{fill:#d03a3a}
.muted{color:#777}code{font-size:12px}.w30{width:30%}.w12{width:12%}.w8{width:8%}
` + depthClasses()

// maxDepth is the deepest indentation of the waterfall.
const maxDepth = 30

// depthClasses returns .d0{padding-left:8px} … one class per depth, 16 px apart.
func depthClasses() string {
	var b strings.Builder
	for d := range maxDepth + 1 {
		fmt.Fprintf(&b, ".d%d{padding-left:%dpx}", d, 8+16*d)
	}
	return b.String() + "\n"
}

var pageHead = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>` + pageStyle + `</style></head><body>`

// pageCSP is the Content-Security-Policy of the HTML pages: nothing but
// this origin, no script at all, and only the page's own stylesheet.
var pageCSP = "default-src 'self'; script-src 'none'; style-src '" + cspHash(pageStyle) + "'; " +
	"object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// cspHash is the CSP source expression of an inline element's text.
func cspHash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{"roundDuration": roundDuration}).Parse(pageHead + `
<h1>weft node status</h1>
<p class="muted">rendered {{.Now.Format "2006-01-02 15:04:05 MST"}}</p>

<h2>Alerts</h2>
{{if .Alerts}}<table><tr><th>alert</th><th>state</th><th>active since</th><th>value</th><th>labels</th><th>evidence</th></tr>
{{range .Alerts}}<tr class="alert"><td>{{index .Labels "alertname"}}</td><td class="{{.State}}">{{.State}}</td>
<td>{{if not .ActiveAt.IsZero}}{{.ActiveAt.Format "15:04:05"}}{{end}}</td><td>{{.Value}}</td>
<td>{{range $k, $v := .Labels}}<span class="lbl">{{$k}}="{{$v}}"</span>{{end}}</td>
<td>{{range .TraceIDs}}<a href="trace/{{.}}">{{.}}</a><br>{{end}}</td></tr>
{{end}}</table>{{else}}<p class="muted">{{if .HasRules}}no active alerts{{else}}no rules engine{{end}}</p>{{end}}

<h2>Rules</h2>
{{with .RulesHealth}}<p class="rules-health">last reload {{if not .LastReload.IsZero}}{{.LastReload.Format "15:04:05"}}{{end}}:
{{if .ReloadOK}}<span class="ok">applied</span>{{else}}<span class="err">failed: {{.LastError}}</span>{{end}}
{{if .Inherited}}<br><span class="err">running the previous configuration's rules: this configuration's rule set is invalid</span>{{end}}
{{range .Rejected}}<br><span class="err">left out: {{.}}</span>{{end}}
{{if .SourceError}}<br><span class="err">Kubernetes source: {{.SourceError}}</span>{{end}}</p>{{end}}
{{if .Groups}}<table><tr><th>group</th><th>rule</th><th>type</th><th>scope</th><th>state</th><th>health</th><th>last evaluation</th></tr>
{{range $g := .Groups}}{{range .Rules}}<tr><td>{{$g.Name}}</td><td>{{.Name}}<br><code>{{.Query}}</code></td><td>{{.Type}}</td>
<td class="scope-{{.Scope}}">{{.Scope}}{{if .PartialOf}} (partial of {{.PartialOf}}){{end}}{{if .ScopeReason}}<br><span class="muted">{{.ScopeReason}}</span>{{end}}</td>
<td class="{{.State}}">{{.State}}</td><td class="{{.Health}}">{{.Health}}{{if .LastError}}: {{.LastError}}{{end}}</td>
<td>{{if not .LastEvaluation.IsZero}}{{.LastEvaluation.Format "15:04:05"}}{{end}}</td></tr>
{{end}}{{end}}</table>{{else}}<p class="muted">no rules loaded</p>{{end}}

<h2>Scrape targets</h2>
{{if .Targets}}<table><tr><th>receiver</th><th>job</th><th>target</th><th>health</th><th>last scrape</th><th>duration</th><th>samples</th><th>last error</th></tr>
{{range $src := .Targets}}{{range .Items}}<tr class="target"><td>{{$src.Component}}</td><td>{{.Job}}</td><td>{{.URL}}</td><td class="{{.Health}}">{{.Health}}</td>
<td>{{if not .LastScrape.IsZero}}{{.LastScrape.Format "15:04:05"}}{{end}}</td><td>{{roundDuration .LastDuration}}</td><td>{{.Samples}}</td><td>{{if .LastError}}<span class="err">{{.LastError}}</span>{{end}}</td></tr>
{{end}}{{end}}</table>{{else}}<p class="muted">no scrape targets</p>{{end}}

<h2>Tailed files</h2>
{{if .Files}}<table><tr><th>receiver</th><th>file</th><th>size</th><th>read to</th><th>lag</th><th>checkpoint</th><th>records</th><th>last read</th></tr>
{{range $src := .Files}}{{range .Items}}<tr class="file"><td>{{$src.Component}}</td><td>{{.Path}}{{if not .Following}} <span class="muted">(rotated)</span>{{end}}</td>
<td>{{.Size}}</td><td>{{.Offset}}</td><td class="{{if .Lag}}lag{{end}}">{{.Lag}}</td><td>{{.Acked}}</td><td>{{.Records}}</td>
<td>{{if not .LastRead.IsZero}}{{.LastRead.Format "15:04:05"}}{{end}}</td></tr>
{{end}}{{end}}</table>{{else}}<p class="muted">no tailed files</p>{{end}}

<h2>Exporters</h2>
{{if .TelemetryErr}}<p class="err">self-metrics: {{.TelemetryErr}}</p>{{end}}
{{if .Exporters}}<table><tr><th>exporter</th><th>queue</th><th>capacity</th><th>sent</th><th>send failed</th><th>refused (queue full)</th></tr>
{{range .Exporters}}<tr class="exporter"><td>{{.Name}}</td><td>{{if .HasQueue}}{{.QueueSize}}{{else}}<span class="muted">no queue</span>{{end}}</td><td>{{if .HasQueue}}{{.QueueCapacity}}{{end}}</td>
<td>{{.Sent}}</td><td class="{{if .Failed}}err{{end}}">{{.Failed}}</td><td class="{{if .EnqueueFailed}}err{{end}}">{{.EnqueueFailed}}</td></tr>
{{end}}</table>{{else if not .TelemetryErr}}<p class="muted">{{if .HasTelemetry}}no exporter has sent anything yet{{else}}set telemetry_url to the agent's self-metrics endpoint to see exporter queues{{end}}</p>{{end}}
{{if .Losses}}<h3>Dropped and lost data</h3><table><tr><th>counter</th><th>labels</th><th>value</th></tr>
{{range .Losses}}<tr class="loss"><td>{{.Metric}}</td><td><code>{{.Labels}}</code></td><td class="err">{{.Value}}</td></tr>
{{end}}</table>{{end}}

<h2>Recent failing traces</h2>
{{if .Failing}}<table><tr><th>time</th><th>service</th><th>operation</th><th>pod</th><th>trace</th></tr>
{{range .Failing}}<tr><td>{{.Time.Format "15:04:05.000"}}</td><td>{{.Service}}</td><td>{{.Operation}}</td><td>{{.Pod}}</td>
<td><a href="trace/{{.TraceID}}">{{.TraceID}}</a></td></tr>
{{end}}</table>{{else}}<p class="muted">none stored</p>{{end}}

<h2>Store</h2>
<table><tr><th></th><th>records</th><th>bytes</th><th>budget</th><th>evicted</th></tr>
<tr><td>spans</td><td>{{.Stats.Spans.Records}}</td><td>{{.Stats.Spans.Bytes}}</td><td>{{.Stats.Spans.MaxBytes}}</td><td>{{.Stats.Spans.Evicted}}</td></tr>
<tr><td>logs</td><td>{{.Stats.Logs.Records}}</td><td>{{.Stats.Logs.Bytes}}</td><td>{{.Stats.Logs.MaxBytes}}</td><td>{{.Stats.Logs.Evicted}}</td></tr>
</table>
<p>samples appended {{.Stats.SamplesAppended}}, exemplars {{.Stats.ExemplarsAppended}}, series created {{.Stats.SeriesCreated}}</p>
{{if .Rejected}}<p>rejected: {{range .Rejected}}<span class="lbl">{{.}}</span>{{end}}</p>{{end}}
{{if .StorageLosses}}<h3>Storage losses at the last start</h3>
<p class="err">metrics WAL bytes the start could not read: {{range .LostBytes}}<span class="lbl">{{.}}</span>{{end}}</p>
<table><tr><th>reason</th><th>file</th><th>bytes</th><th>damaged original</th><th>error</th></tr>
{{range .StorageLosses}}<tr class="storage-loss"><td class="err">{{.Reason}}</td><td>{{.File}}</td><td>{{.Bytes}}</td>
<td>{{if .MovedTo}}{{.MovedTo}}{{else}}<span class="muted">cut by the TSDB's repair</span>{{end}}</td><td><code>{{.Err}}</code></td></tr>
{{end}}</table>{{end}}
<p>services: {{range .Services}}<span class="lbl">{{.}}</span>{{else}}<span class="muted">none</span>{{end}}</p>

<h2>Pins</h2>
{{if .Pins}}{{with .Pins}}<p class="pins">pins held {{.Pins}}, set here {{.Local}}, received from peers {{.Received}}, expired {{.Expired}}, evicted {{.Evicted}}{{if .Members}}, cluster members {{.Members}}{{end}}</p>{{end}}{{else}}<p class="muted">no weft_pins extension: pinned traces are not exempt from eviction</p>{{end}}
<table><tr><th></th><th>pinned records</th><th>pinned bytes</th><th>pinned budget</th><th>moved in</th><th>evicted: budget full</th><th>evicted: pin ended</th><th title="pins of traces whose records were already evicted here">pins after eviction</th></tr>
<tr class="pinned"><td>spans</td><td>{{.Stats.Spans.PinnedRecords}}</td><td>{{.Stats.Spans.PinnedBytes}}</td><td>{{.Stats.Spans.PinnedMaxBytes}}</td><td>{{.Stats.Spans.Pinned}}</td>
<td class="{{if .Stats.Spans.EvictedPinnedFull}}err{{end}}">{{.Stats.Spans.EvictedPinnedFull}}</td><td>{{.Stats.Spans.EvictedPinnedExpired}}</td>
<td class="late{{if .Stats.Spans.PinsAfterEviction}} err{{end}}">{{.Stats.Spans.PinsAfterEviction}}</td></tr>
<tr class="pinned"><td>logs</td><td>{{.Stats.Logs.PinnedRecords}}</td><td>{{.Stats.Logs.PinnedBytes}}</td><td>{{.Stats.Logs.PinnedMaxBytes}}</td><td>{{.Stats.Logs.Pinned}}</td>
<td class="{{if .Stats.Logs.EvictedPinnedFull}}err{{end}}">{{.Stats.Logs.EvictedPinnedFull}}</td><td>{{.Stats.Logs.EvictedPinnedExpired}}</td>
<td class="late{{if .Stats.Logs.PinsAfterEviction}} err{{end}}">{{.Stats.Logs.PinsAfterEviction}}</td></tr>
</table>
</body></html>`))

var traceTmpl = template.Must(template.New("trace").Parse(pageHead + `
<p><a href="../">← status</a></p>
<h1>trace {{.TraceID}}</h1>
{{if .Spans}}<p>{{len .Spans}} spans, {{.Duration}}, from {{.Start.Format "2006-01-02 15:04:05.000 MST"}}</p>
<table><tr><th class="w30">span</th><th class="w12">service</th><th class="w8">duration</th><th>timeline</th></tr>
{{range .Spans}}<tr class="span"><td class="d{{.Depth}}">{{.Operation}}{{if .Error}} <span class="err">error</span>{{end}}</td>
<td>{{.Service}}</td><td>{{.Duration}}</td>
<td><svg class="wf"><rect class="bar{{if .Error}} error{{end}}" x="{{.Left}}%" width="{{.Width}}%" y="3" height="12" rx="2"></rect></svg></td></tr>
{{end}}</table>{{else}}<p class="muted">no spans stored for this trace</p>{{end}}

{{if .Alerts}}<h2>Alerts citing this trace</h2><ul>{{range .Alerts}}<li class="{{.State}}">{{index .Labels "alertname"}} ({{.State}})</li>{{end}}</ul>{{end}}

<h2>Logs</h2>
{{if .Logs}}<table><tr><th>time</th><th>pod</th><th>severity</th><th>message</th></tr>
{{range .Logs}}<tr class="log"><td>{{.Time.Format "15:04:05.000"}}</td><td>{{.Pod}}</td><td>{{.Severity}}</td><td><code>{{.Body}}</code></td></tr>
{{end}}</table>{{else}}<p class="muted">no log records with this trace ID</p>{{end}}

{{if .Exemplars}}<h2>Exemplars</h2><ul>{{range .Exemplars}}<li><code>{{.Series}}</code> = {{.Value}} at {{.Time.Format "15:04:05.000"}}</li>{{end}}</ul>{{end}}
</body></html>`))

type statusPage struct {
	Title    string
	Now      time.Time
	HasRules bool
	Alerts   []rulesapi.Alert
	Groups   []rulesapi.Group
	Failing  []weftstoreextension.FailingTrace
	Stats    weftstoreextension.Stats
	Rejected []string
	Services []string
	// StorageLosses is what the store's last start could not read of its
	// metrics WAL (files moved aside into the store directory).
	StorageLosses []weftstoreextension.StorageLoss
	LostBytes     []string // "reason: bytes", non-zero only
	// Pins is the weft_pins extension the store asks (nil: none).
	Pins *pinsRow

	RulesHealth  *rulesapi.Health
	Targets      []nodestatus.Source[nodestatus.Target]
	Files        []nodestatus.Source[nodestatus.File]
	HasTelemetry bool
	TelemetryErr string
	Exporters    []exporterRow
	Losses       []lossRow
}

// waterfallSpan is one row of the trace view.
type waterfallSpan struct {
	Operation, Service string
	Error              bool
	Duration           time.Duration
	Depth              int     // 0 for a root, at most maxDepth
	Left, Width        float64 // percent of the trace's extent
}

type tracePage struct {
	Title     string
	TraceID   string
	Start     time.Time
	Duration  time.Duration
	Spans     []waterfallSpan
	Logs      []weftapi.LogJSON
	Exemplars []weftstoreextension.Exemplar
	Alerts    []rulesapi.Alert
}

// Health is the store's own accounting: weftstore's *Store.
type Health interface {
	Stats() weftstoreextension.Stats
	OpenLosses() []weftstoreextension.StorageLoss
}

// PinsHealth is a Health that also reports the weft_pins extension whose
// pinned traces the store exempts from eviction (weftstore's *Store).
type PinsHealth interface {
	PinsStats() (weftpinsextension.Stats, bool)
}

// pinsRow is the pins line of the status page.
type pinsRow struct {
	Pins                              int
	Local, Received, Expired, Evicted int64
	Members                           int
}

// Traces reads what the pages list of traces: weftstore's *Store.
type Traces interface {
	Services() []string
	FailingTraces(sel weftstoreextension.TraceSelector) []weftstoreextension.FailingTrace
	Correlate(ctx context.Context, traceID pcommon.TraceID) (weftstoreextension.Correlation, error)
}

// Pages are the status page and the trace view.
type Pages struct {
	Health Health
	Traces Traces
	Rules  rulesapi.Source // nil: no rules engine
	// Board is what the receivers publish: tailed files, scrape targets.
	Board *nodestatus.Board
	// TelemetryURL is the collector's own /metrics (empty: no exporter
	// table).
	TelemetryURL string
	Now          func() time.Time
}

// Register adds the pages' routes to mux.
func (p *Pages) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", p.statusPage)
	mux.HandleFunc("GET /trace/{traceID}", p.tracePage)
}

func renderHTML(w http.ResponseWriter, t *template.Template, status int, data any) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

func (pg *Pages) statusPage(w http.ResponseWriter, r *http.Request) {
	p := statusPage{Title: "weft status", Now: pg.Now(), HasRules: pg.Rules != nil, Stats: pg.Health.Stats(), Services: pg.Traces.Services(),
		Targets: pg.Board.Targets(), Files: pg.Board.Files(), HasTelemetry: pg.TelemetryURL != ""}
	if p.HasTelemetry {
		fams, err := fetchTelemetry(r.Context(), pg.TelemetryURL)
		if err != nil {
			p.TelemetryErr = err.Error()
		} else {
			p.Exporters, p.Losses = exporterRows(fams), lossRows(fams)
		}
	}
	if pg.Rules != nil {
		p.Alerts, p.Groups = pg.Rules.Alerts(), pg.Rules.RuleGroups()
		if hs, ok := pg.Rules.(rulesapi.HealthSource); ok {
			h := hs.RulesHealth()
			p.RulesHealth = &h
		}
		slices.SortStableFunc(p.Alerts, func(a, b rulesapi.Alert) int { return cmp.Compare(a.State, b.State) }) // firing before pending
	}
	p.Failing = pg.Traces.FailingTraces(weftstoreextension.TraceSelector{Limit: 20})
	for r, n := range p.Stats.RejectedSamples {
		if n > 0 {
			p.Rejected = append(p.Rejected, "sample "+r+": "+itoa(n))
		}
	}
	for r, n := range p.Stats.RejectedExemplars {
		if n > 0 {
			p.Rejected = append(p.Rejected, "exemplar "+r+": "+itoa(n))
		}
	}
	slices.Sort(p.Rejected)
	p.StorageLosses = pg.Health.OpenLosses()
	for r, n := range p.Stats.LostBytes {
		if n > 0 {
			p.LostBytes = append(p.LostBytes, r+": "+itoa(n))
		}
	}
	slices.Sort(p.LostBytes)
	if ph, ok := pg.Health.(PinsHealth); ok {
		if ps, ok := ph.PinsStats(); ok {
			row := &pinsRow{Pins: ps.Pins, Received: ps.Received, Expired: ps.Expired, Evicted: ps.Evicted, Members: ps.Members}
			for _, n := range ps.Local {
				row.Local += n
			}
			p.Pins = row
		}
	}
	renderHTML(w, statusTmpl, http.StatusOK, p)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// roundDuration keeps three significant figures' worth of a scrape
// duration: 647.662µs → 648µs, 9.149634ms → 9.15ms.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

func (pg *Pages) tracePage(w http.ResponseWriter, r *http.Request) {
	id, err := jaegerapi.ParseTraceID(r.PathValue("traceID"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c, _ := pg.Traces.Correlate(r.Context(), id) // exemplars may be missing; spans and logs are shown
	p := tracePage{Title: "trace " + id.String(), TraceID: id.String(), Exemplars: c.Exemplars, Spans: waterfall(c.Spans)}
	if len(c.Spans) > 0 {
		p.Start = c.Spans[0].Start
		end := p.Start
		for _, sp := range c.Spans {
			end = laterOf(end, sp.End)
		}
		p.Duration = end.Sub(p.Start)
	}
	for _, l := range c.Logs {
		p.Logs = append(p.Logs, weftapi.ToLogJSON(l))
	}
	if pg.Rules != nil {
		for _, a := range pg.Rules.Alerts() {
			if slices.Contains(a.TraceIDs, id.String()) {
				p.Alerts = append(p.Alerts, a)
			}
		}
	}
	status := http.StatusOK
	if len(c.Spans) == 0 && len(c.Logs) == 0 {
		status = http.StatusNotFound
	}
	renderHTML(w, traceTmpl, status, p)
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// waterfall orders spans depth-first from the roots (children by start
// time) and places each bar relative to the trace's extent.
func waterfall(spans []weftstoreextension.Span) []waterfallSpan {
	if len(spans) == 0 {
		return nil
	}
	start, end := spans[0].Start, spans[0].End
	byID := make(map[pcommon.SpanID]bool, len(spans))
	for _, sp := range spans {
		byID[sp.SpanID] = true
		if sp.Start.Before(start) {
			start = sp.Start
		}
		end = laterOf(end, sp.End)
	}
	total := float64(end.Sub(start))
	if total <= 0 {
		total = 1
	}
	children := map[pcommon.SpanID][]int{}
	var roots []int
	for i, sp := range spans {
		parent := parentOf(sp)
		if parent.IsEmpty() || !byID[parent] {
			roots = append(roots, i)
			continue
		}
		children[parent] = append(children[parent], i)
	}
	var out []waterfallSpan
	seen := make([]bool, len(spans))
	var walk func(i, depth int)
	walk = func(i, depth int) {
		if seen[i] { // a cycle of parent IDs: show each span once
			return
		}
		seen[i] = true
		sp := spans[i]
		left := float64(sp.Start.Sub(start)) / total * 100
		width := max(float64(sp.End.Sub(sp.Start))/total*100, 0.3)
		out = append(out, waterfallSpan{
			Operation: sp.Operation, Service: sp.Service, Error: sp.Error, Duration: sp.End.Sub(sp.Start),
			Depth: min(depth, maxDepth), Left: round2(left), Width: round2(min(width, 100-left)),
		})
		for _, c := range children[sp.SpanID] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	for i := range spans { // spans only reachable through a cycle
		walk(i, 0)
	}
	return out
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// parentOf returns a stored span's parent span ID.
func parentOf(sp weftstoreextension.Span) pcommon.SpanID {
	rss := sp.Data.ResourceSpans()
	if rss.Len() == 0 || rss.At(0).ScopeSpans().Len() == 0 || rss.At(0).ScopeSpans().At(0).Spans().Len() == 0 {
		return pcommon.SpanID{}
	}
	return rss.At(0).ScopeSpans().At(0).Spans().At(0).ParentSpanID()
}
