package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Freshness: at the nominal load, how long from a log line written, a
// sample served and a span received until weft_query returns it. Markers
// ride along with the load: every FreshEvery a CRI line with its own
// number in a pod of its own, and a span with a fresh trace ID; every
// scrape carries markerMetric = the scrape's number. One poller per signal
// asks weft_query every FreshPoll for the markers still pending (one
// request each: the marker pod's newest lines, every pending trace ID in
// one Jaeger search, the marker gauge's latest value). A marker's latency
// runs from its moment (the write(2) call, the export call's return, the
// target's receipt of the scrape request) to the arrival of the answer
// that first holds it: the resolution is FreshPoll plus one round trip.

// Signals of the freshness workload, in report order.
const (
	signalLogs    = "logs"
	signalSamples = "samples"
	signalSpans   = "spans"
)

// freshness is one signal's markers in one run.
type freshness struct {
	Signal  string    `json:"signal"`
	Markers int       `json:"markers"` // marked during the window
	Found   int       `json:"found"`   // of them, returned by weft_query
	Goal    float64   `json:"goal_s"`  // p99 at most this
	Latency []float64 `json:"latency_s"`
	// Polls and PollSec are the poller's requests and the sum of their
	// round trips: PollSec / the window bounds the share of one core weft
	// spent answering them, if each answer took a core for its whole trip.
	Polls   int64   `json:"polls"`
	PollSec float64 `json:"poll_s"`
	// PollCPU is weft's CPU seconds per poll request, measured after the
	// window on requests of the same shape (pollCost).
	PollCPU float64 `json:"poll_cpu_s_per_request"`
}

// markers holds one signal's markers: the pending ones (id → moment) and
// the latencies of those found.
type markers struct {
	mu      sync.Mutex
	at      map[int64]time.Time
	seen    map[int64]bool // every id ever marked
	latency []float64
}

func newMarkers() *markers { return &markers{at: map[int64]time.Time{}, seen: map[int64]bool{}} }

// mark adds marker id of moment at; an id marked before is left alone.
func (m *markers) mark(id int64, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.seen[id] {
		m.seen[id] = true
		m.at[id] = at
	}
}

// found records the markers of ids seen in an answer that arrived at t;
// ids not pending (found before, never marked) are ignored.
func (m *markers) found(t time.Time, ids ...int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if at, ok := m.at[id]; ok {
			m.latency = append(m.latency, max(0, t.Sub(at).Seconds()))
			delete(m.at, id)
		}
	}
}

// pending returns the pending markers' ids, oldest first, at most n.
func (m *markers) pending(n int) []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]int64, 0, len(m.at))
	for id := range m.at {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids[:min(n, len(ids))]
}

func (m *markers) result(signal string, goal float64, polls int64, pollSec float64) freshness {
	m.mu.Lock()
	defer m.mu.Unlock()
	return freshness{Signal: signal, Markers: len(m.seen), Found: len(m.latency), Goal: goal,
		Latency: slices.Clone(m.latency), Polls: polls, PollSec: pollSec}
}

// markerPod is the marker lines' pod (namespace bench): their own file,
// found through weft_query's pod index.
const markerPod = "freshness-marker"

// markerLog is the marker lines' file, in the /var/log/pods layout.
type markerLog struct {
	f   *os.File
	buf []byte
}

func newMarkerLog(dir string) (*markerLog, error) {
	cdir := filepath.Join(dir, "bench_"+markerPod+"_00000000-1b2c-4d3e-8f40-000000000000", "app")
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(cdir, "0.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &markerLog{f: f}, nil
}

// write appends marker line seq and returns the moment of the write.
func (l *markerLog) write(seq int64) (time.Time, error) {
	now := time.Now()
	l.buf = append(l.buf[:0], now.UTC().Format(time.RFC3339Nano)...)
	l.buf = append(l.buf, " stdout F seq="...)
	l.buf = strconv.AppendInt(l.buf, seq, 10)
	l.buf = append(l.buf, " freshness marker\n"...)
	_, err := l.f.Write(l.buf)
	return now, err
}

// markerTraceID is marker span seq's trace ID: a prefix of the run, then
// seq+1.
func markerTraceID(prefix uint64, seq int64) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], prefix)
	binary.BigEndian.PutUint64(id[8:], uint64(seq)+1)
	return id
}

// markerSpan is the request carrying marker span seq, of service
// "freshness-marker".
func markerSpan(prefix uint64, seq int64) ptraceotlp.ExportRequest {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", markerPod)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(markerTraceID(prefix, seq))
	var sid pcommon.SpanID
	binary.BigEndian.PutUint64(sid[:], uint64(seq)+1)
	sp.SetSpanID(sid)
	sp.SetName("freshness marker")
	now := time.Now()
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Millisecond)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	return ptraceotlp.NewExportRequestFromTraces(td)
}

// freshProbe is one run's markers and pollers.
type freshProbe struct {
	h                  *harness
	base               string // weft_query
	prefix             uint64
	logs, spans, smpls *markers
	client             *http.Client
	mu                 sync.Mutex
	polls              map[string]int64
	pollSec            map[string]float64
	errs               map[string]error
}

func newFreshProbe(h *harness, query string) *freshProbe {
	return &freshProbe{h: h, base: "http://" + query, prefix: uint64(time.Now().UnixNano()) | 1<<63,
		logs: newMarkers(), spans: newMarkers(), smpls: newMarkers(),
		client: &http.Client{Timeout: 10 * time.Second}, polls: map[string]int64{}, pollSec: map[string]float64{},
		errs: map[string]error{}}
}

// get asks weft_query and decodes the JSON answer; it returns when the
// answer arrived, and counts the request against the signal's poller.
func (p *freshProbe) get(ctx context.Context, signal, u string, v any) (time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+u, nil)
	if err != nil {
		return time.Time{}, err
	}
	t0 := time.Now()
	resp, err := p.client.Do(req)
	if err == nil {
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", u, resp.Status)
		} else {
			err = json.NewDecoder(resp.Body).Decode(v)
		}
		resp.Body.Close()
	}
	t1 := time.Now()
	p.mu.Lock()
	p.polls[signal]++
	p.pollSec[signal] += t1.Sub(t0).Seconds()
	if err != nil && p.errs[signal] == nil && ctx.Err() == nil {
		p.errs[signal] = err
	}
	p.mu.Unlock()
	return t1, err
}

// pollLogs asks for the marker pod's newest lines.
func (p *freshProbe) pollLogs(ctx context.Context) {
	if len(p.logs.pending(1)) == 0 {
		return
	}
	var body struct {
		Data []struct {
			Body string `json:"body"`
		} `json:"data"`
	}
	t, err := p.get(ctx, signalLogs, "/api/v1/logs?namespace=bench&pod="+markerPod+"&limit=100", &body)
	if err != nil {
		return
	}
	ids := make([]int64, 0, len(body.Data))
	for _, d := range body.Data {
		if n, ok := logSeq(d.Body); ok {
			ids = append(ids, n)
		}
	}
	p.logs.found(t, ids...)
}

// pollSpans asks for every pending marker trace in one Jaeger search.
func (p *freshProbe) pollSpans(ctx context.Context) {
	pend := p.spans.pending(50)
	if len(pend) == 0 {
		return
	}
	q := url.Values{}
	byID := map[string]int64{}
	for _, seq := range pend {
		id := markerTraceID(p.prefix, seq).String()
		q.Add("traceID", id)
		byID[trimZeros(id)] = seq
	}
	var body struct {
		Data []struct {
			TraceID string `json:"traceID"`
		} `json:"data"`
	}
	t, err := p.get(ctx, signalSpans, "/api/traces?"+q.Encode(), &body)
	if err != nil {
		return
	}
	var ids []int64
	for _, d := range body.Data {
		if seq, ok := byID[trimZeros(d.TraceID)]; ok {
			ids = append(ids, seq)
		}
	}
	p.spans.found(t, ids...)
}

// pollSamples asks for the marker gauge: value v means scrapes 1..v are
// queryable. The window's scrapes (the first FreshScrapes) are markers.
func (p *freshProbe) pollSamples(ctx context.Context, tgt *target) {
	for k := int64(1); k <= min(tgt.served.Load(), int64(p.h.o.FreshScrapes)); k++ {
		if at, ok := tgt.servedAt(int(k)); ok {
			p.smpls.mark(k, at) // a no-op once marked
		}
	}
	pend := p.smpls.pending(1 << 20)
	if len(pend) == 0 {
		return
	}
	var body struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	t, err := p.get(ctx, signalSamples, "/api/v1/query?query="+markerMetric, &body)
	if err != nil || len(body.Data.Result) != 1 {
		return
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return
	}
	var ids []int64
	for _, k := range pend {
		if float64(k) <= v {
			ids = append(ids, k)
		}
	}
	p.smpls.found(t, ids...)
}

// poll runs the three pollers every FreshPoll until ctx ends.
func (p *freshProbe) poll(ctx context.Context, tgt *target) *sync.WaitGroup {
	var wg sync.WaitGroup
	every := p.h.o.FreshPoll
	for _, f := range []func(){func() { p.pollLogs(ctx) }, func() { p.pollSpans(ctx) }, func() { p.pollSamples(ctx, tgt) }} {
		wg.Go(func() {
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					f()
				}
			}
		})
	}
	return &wg
}

// mark writes a marker line and sends a marker span every FreshEvery for
// window; a marker span's moment is the return of its export call.
func (p *freshProbe) mark(ctx context.Context, dir, otlp string, window time.Duration) error {
	ml, err := newMarkerLog(dir)
	if err != nil {
		return err
	}
	defer ml.f.Close()
	conn, err := grpc.NewClient(otlp, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	tick := time.NewTicker(p.h.o.FreshEvery)
	defer tick.Stop()
	end := time.Now().Add(window)
	for seq := int64(0); time.Now().Before(end); seq++ {
		at, err := ml.write(seq)
		if err != nil {
			return err
		}
		p.logs.mark(seq, at)
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = client.Export(rctx, markerSpan(p.prefix, seq))
		cancel()
		if err != nil {
			return fmt.Errorf("marker span %d: %w", seq, err)
		}
		p.spans.mark(seq, time.Now())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// settled reports whether no marker is pending.
func (p *freshProbe) settled() bool {
	return len(p.logs.pending(1)) == 0 && len(p.spans.pending(1)) == 0 && len(p.smpls.pending(1)) == 0
}

// runFreshness: weft alone (no other program answers these queries) at the
// nominal load with everything into its store, as in nominalWeftConfig
// without the export side. Window: from the first scrape for FreshScrapes
// intervals while markers are written, then until every marker was found
// (at most 10 s + one interval more). Verified: every marker found, the
// stored rule series counted, every rule evaluated with health ok.
func runFreshness(ctx context.Context, h *harness, side string, s *sample) error {
	r, smp, err := h.startNominal(ctx, side, s, nil, nil)
	if err != nil {
		return err
	}
	defer r.close()
	if err := r.waitFirstScrape(ctx); err != nil {
		return err
	}
	smp.restart()
	probe := newFreshProbe(h, r.query)
	pctx, stopPolls := context.WithCancel(ctx)
	polls := probe.poll(pctx, r.tgt)
	var markErr error
	var wg sync.WaitGroup
	wg.Go(func() { markErr = probe.mark(ctx, r.dir, r.otlp, r.window) })
	loadErr := r.load(ctx)
	wg.Wait()
	c := r.children[0]
	// The scrapes of the window are FreshScrapes; later ones are not waited for.
	werr := c.waitFor(ctx, h.o.ScrapeInterval+10*time.Second, func() bool {
		return r.tgt.served.Load() >= int64(r.scrapes) && probe.settled()
	}, func() string { return "markers still pending" })
	stopPolls()
	polls.Wait()
	h.finish(c, smp, s)
	window := s.WallSec
	pollCPU, pcErr := probe.pollCost(ctx, group{c.proc})
	count, cerr := r.seriesAtNow(ctx)
	evaluated, rerr := rulesEvaluatedOK(ctx, "http://"+r.query)
	nr := nominalRuleSeries(h.o.ScrapeSeries, h.o.RuleCount)
	goals := map[string]float64{signalLogs: 1, signalSpans: 1, signalSamples: h.o.ScrapeInterval.Seconds() + 1}
	found := true
	for _, sig := range []string{signalLogs, signalSamples, signalSpans} {
		m := map[string]*markers{signalLogs: probe.logs, signalSamples: probe.smpls, signalSpans: probe.spans}[sig]
		probe.mu.Lock()
		f := m.result(sig, goals[sig], probe.polls[sig], probe.pollSec[sig])
		perr := probe.errs[sig]
		probe.mu.Unlock()
		f.PollCPU = pollCPU[sig]
		s.Freshness = append(s.Freshness, f)
		s.Sent += int64(f.Markers)
		s.Received += int64(f.Found)
		found = found && f.Markers > 0 && f.Found == f.Markers
		if perr != nil {
			s.Detail += fmt.Sprintf("%s poller's first error: %v; ", sig, perr)
		}
	}
	s.Items = window
	s.Verified = found && werr == nil && markErr == nil && loadErr == nil && cerr == nil && rerr == nil && count == nr && evaluated == h.o.RuleCount
	s.Detail += fmt.Sprintf("%d lines, %d spans sent as load; %d scrapes of %d series; %d of %d rule series stored; %d of %d rules evaluated with health ok",
		r.lines, r.spans, r.tgt.served.Load(), h.o.ScrapeSeries, count, nr, evaluated, h.o.RuleCount)
	if pcErr != nil {
		s.Detail += "; poll cost not measured: " + pcErr.Error()
	}
	for _, e := range []error{markErr, loadErr, werr, cerr, rerr} {
		if e != nil {
			s.Detail += "; " + e.Error()
		}
	}
	return nil
}

// seriesAtNow is count(http_requests_total) through weft_query now (the
// freshness target answers every scrape: nothing goes stale).
func (r *nominalRun) seriesAtNow(ctx context.Context) (int, error) {
	return queryScalar(ctx, "http://"+r.query, "count(http_requests_total)")
}

// pollCostRequests is how many requests of each poller's shape pollCost
// sends.
const pollCostRequests = 200

// pollCost measures weft's CPU per poll request, per signal, after the
// window: pollCostRequests requests of the poller's shape back to back
// (the newest marker lines; the last five marker traces; the gauge),
// less what weft used at rest in as long just before.
func (p *freshProbe) pollCost(ctx context.Context, g group) (map[string]float64, error) {
	q := url.Values{}
	for seq := range int64(5) {
		q.Add("traceID", markerTraceID(p.prefix, seq).String())
	}
	shapes := []struct{ signal, u string }{
		{signalLogs, "/api/v1/logs?namespace=bench&pod=" + markerPod + "&limit=100"},
		{signalSpans, "/api/traces?" + q.Encode()},
		{signalSamples, "/api/v1/query?query=" + markerMetric},
	}
	out := map[string]float64{}
	for _, sh := range shapes {
		rest, err := cpuRate(g, time.Second)
		if err != nil {
			return nil, err
		}
		c0, err := g.cpu()
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		var sink json.RawMessage
		for range pollCostRequests {
			if _, err := p.get(ctx, "cost", sh.u, &sink); err != nil {
				return nil, err
			}
		}
		c1, err := g.cpu()
		if err != nil {
			return nil, err
		}
		used := c1 - c0 - rest*time.Since(t0).Seconds()
		out[sh.signal] = max(0, used) / pollCostRequests
	}
	return out, nil
}

// cpuRate is the group's CPU seconds per second over d.
func cpuRate(g group, d time.Duration) (float64, error) {
	c0, err := g.cpu()
	if err != nil {
		return 0, err
	}
	time.Sleep(d) // measuring a rate over d
	c1, err := g.cpu()
	if err != nil {
		return 0, err
	}
	return (c1 - c0) / d.Seconds(), nil
}
