//go:build integration

// The acceptance test of issue #20 (its acceptance bullets on pins, export
// sampling, a node that was down and a peer without the key): three weft
// agents on loopback gossiping pins (weft_pins, encrypted with a key
// file), each seeing one hop of every request of a simulated mesh
// (n1 → n2 → n3: one span and one log line per hop, same trace ID), all
// exporting spans through evidence_sampling (10 %, decision_wait 3s) to
// one real Jaeger and log lines to a sink in the test, and storing
// everything in weft_store with small span and log budgets.
//
// 1. Pins spread: every error trace (the error on one hop only, rotating
//    over the hops, as status error or as http 500) and the trace an alert
//    on n1 cites (no error anywhere) keep their span and log line on every
//    node after more than 10× each budget of other traffic was sent to
//    each node; the mesh's other traces, older than the filler, are gone.
// 2. Export sampling: every error trace is complete in Jaeger (3 of 3
//    spans) and its 3 log lines reach the sink; every other trace arrives
//    with 0 or 3 spans (and the same for its log lines), exactly the
//    traces whose randomness passes the 10 % threshold (th e666, p =
//    0.100006, OTel consistent probability sampling), and that count is
//    within 4 binomial σ of n·p.
//
// And the last bullet, with the counter the store keeps for pins that
// come too late:
//
// 3. A pin after eviction is counted: a mesh trace every node already
//    evicted, pinned on n1 (a late error span), shows +1 per signal in
//    every node's pins-after-eviction counter (status page and
//    self-metric); the pins that arrived while their records were held
//    counted 0.
// 4. A node that is down when a pin is spread gets it on return: n3 is
//    stopped (SIGTERM), n1 pins a new trace (an error span), n1 and n2
//    finish their broadcasts, n3 restarts with the same config and gets
//    the pin from the push/pull state of its join (its status page counts
//    pins received from peers); its hop of that trace, sent after its
//    return, outlives 10× its budget of other traffic, while a trace sent
//    with it and never pinned is evicted.
// 5. Peers without the cluster's key are kept out: n4 (another key) and
//    n5 (insecure: true, plaintext) try to join n1..n3, whose memberlist
//    refuses their packets (counted as undecryptable, also after n4 and
//    n5 pinned their own error traces); n1..n3 stay 3 members, n4 and n5
//    alone, and those error traces are not pinned on n1..n3: their spans
//    and log lines there are evicted by the filler as any other.

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/weftobs/weft/internal/gobuild"
	"github.com/weftobs/weft/internal/loopback"
)

const (
	// pinsBudget is each agent's traces_max_bytes and logs_max_bytes.
	pinsBudget = 256 << 10
	// pinsPinnedBudget is each agent's pinned_*_max_bytes.
	pinsPinnedBudget = 1 << 20
	// pinsDecisionWait is evidence_sampling's decision_wait.
	pinsDecisionWait = 3 * time.Second
	// pinsGossipInterval is weft_pins' gossip::gossip_interval (its default).
	pinsGossipInterval = 200 * time.Millisecond
	// pinsNormal and pinsErrors are the mesh's traces without and with an
	// error; pinsBatch traces go in one OTLP request per node.
	pinsNormal = 2000
	pinsErrors = 30
	pinsBatch  = 100
	// pinsThreshold is the rejection threshold of 10 % rounded to 4
	// significant hex digits (th:e666): a trace is sampled iff the last 56
	// bits of its ID are at least this (processors/evidencesamplingprocessor
	// README, "The decision rule").
	pinsThreshold = uint64(0xe666) << 40
)

// pinsP is the sampling probability of pinsThreshold: 0x199a/0x10000.
var pinsP = 1 - float64(pinsThreshold)/float64(uint64(1)<<56)

const pinsAgentConfig = `
extensions:
  health_check:
    endpoint: {{.Health}}
  weft_pins:
    gossip:
      bind: {{.Gossip}}
      join: [{{.Join}}]
      node_name: {{.Node}}
{{- if .KeyFile}}
      secret_key_file: {{.KeyFile}}
{{- else}}
      insecure: true
{{- end}}
      rejoin_interval: 2s
  weft_store:
    traces_max_bytes: {{.Budget}}
    logs_max_bytes: {{.Budget}}
    pinned_traces_max_bytes: {{.Pinned}}
    pinned_logs_max_bytes: {{.Pinned}}
  weft_rules:
    rule_files: [{{.Rules}}]
    evaluation_interval: 1s
    reload_interval: 0s
    resend_delay: 2s
    evidence:
      timeout: 2s
  weft_query:
    http:
      endpoint: {{.Query}}
receivers:
  otlp:
    protocols:
      http:
        endpoint: {{.OTLP}}
processors:
  evidence_sampling:
    sampling_percentage: 10
    decision_wait: {{.Wait}}
exporters:
  weft_store: {}
  otlp_grpc/jaeger:
    endpoint: {{.Jaeger}}
    tls:
      insecure: true
  otlp_http/sink:
    logs_endpoint: {{.Sink}}/v1/logs
    compression: none
service:
  extensions: [health_check, weft_pins, weft_store, weft_rules, weft_query]
  pipelines:
    traces/store:
      receivers: [otlp]
      exporters: [weft_store]
    traces/export:
      receivers: [otlp]
      processors: [evidence_sampling]
      exporters: [otlp_grpc/jaeger]
    logs/store:
      receivers: [otlp]
      exporters: [weft_store]
    logs/export:
      receivers: [otlp]
      processors: [evidence_sampling]
      exporters: [otlp_http/sink]
    metrics:
      receivers: [otlp]
      exporters: [weft_store]
  telemetry:
    logs:
      level: warn
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {{.MetricsPort}}
`

// pinsRules fires on n1 only (only n1 gets the metric): its evidence is
// the exemplar's trace ID, which weft_rules pins.
const pinsRules = `groups:
  - name: mesh
    interval: 1s
    rules:
      - alert: RatingsFailing
        expr: app_failing > 0
`

type pinsAgent struct {
	Node, Health, Gossip, Join, KeyFile, Query, OTLP, Jaeger, Sink, Rules string
	Metrics                                                               string
	MetricsPort                                                           int
	Budget, Pinned                                                        int
	Wait                                                                  time.Duration
	proc                                                                  *thanosAgent
}

// pinsTrace is one request through the mesh.
type pinsTrace struct {
	id      pcommon.TraceID
	spans   [3]pcommon.SpanID
	errHop  int // -1: no error
	http500 bool
}

func (tr *pinsTrace) sampled() bool {
	r := uint64(0)
	for _, b := range tr.id[9:] {
		r = r<<8 | uint64(b)
	}
	return r >= pinsThreshold
}

var pinsServices = [3]string{"productpage", "reviews", "ratings"}

// logSink counts the log records the agents export, by trace ID.
type logSink struct {
	mu  sync.Mutex
	got map[pcommon.TraceID]int
	n   int
}

func (s *logSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	rls := req.Logs().ResourceLogs()
	for i := range rls.Len() {
		sls := rls.At(i).ScopeLogs()
		for j := range sls.Len() {
			lrs := sls.At(j).LogRecords()
			for k := range lrs.Len() {
				s.got[lrs.At(k).TraceID()]++
				s.n++
			}
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := plogotlp.NewExportResponse().MarshalProto()
	_, _ = w.Write(out)
}

func (s *logSink) count(id pcommon.TraceID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[id]
}

func (s *logSink) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// hopData is hop h of the traces: a span and a log line each (INFO).
func hopData(trs []*pinsTrace, h int, now time.Time) (ptrace.Traces, plog.Logs) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", pinsServices[h])
	rs.Resource().Attributes().PutStr("k8s.pod.name", pinsServices[h]+"-0")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", pinsServices[h])
	rl.Resource().Attributes().PutStr("k8s.pod.name", pinsServices[h]+"-0")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, tr := range trs {
		sp := ss.AppendEmpty()
		sp.SetTraceID(tr.id)
		sp.SetSpanID(tr.spans[h])
		if h > 0 {
			sp.SetParentSpanID(tr.spans[h-1])
		}
		sp.SetName("GET /" + pinsServices[h])
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(h-30) * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Duration(h) * time.Millisecond)))
		code := int64(200)
		if tr.errHop == h {
			if tr.http500 {
				code = 500
			} else {
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage("upstream reset")
			}
		}
		sp.Attributes().PutInt("http.response.status_code", code)
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		lr.SetTraceID(tr.id)
		lr.SetSpanID(tr.spans[h])
		lr.Body().SetStr(fmt.Sprintf("%s handled GET /%s status=%d", pinsServices[h], pinsServices[h], code))
	}
	return td, ld
}

// sendOTLP posts traces and logs to an agent's OTLP/HTTP receiver and
// returns the request bytes of each.
func sendOTLP(t *testing.T, otlpAddr string, td ptrace.Traces, ld plog.Logs) (int, int) {
	t.Helper()
	tb, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	postBody(t, "http://"+otlpAddr+"/v1/traces", "application/x-protobuf", tb)
	lb, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	require.NoError(t, err)
	postBody(t, "http://"+otlpAddr+"/v1/logs", "application/x-protobuf", lb)
	return len(tb), len(lb)
}

var (
	pinsHeldRe  = regexp.MustCompile(`pins held (\d+), set here (\d+), received from peers (\d+), expired \d+, evicted \d+(?:, cluster members (\d+))?`)
	pinsStoreRe = regexp.MustCompile(`<tr><td>(spans|logs)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td></tr>`)
	pinsMovedRe = regexp.MustCompile(`<tr class="pinned"><td>(spans|logs)</td><td>(\d+)</td><td>(\d+)</td><td>\d+</td><td>(\d+)</td>\s*<td[^>]*>(\d+)</td><td>(\d+)</td>\s*<td class="late[^"]*">(\d+)</td></tr>`)
)

// pinsStatus is what the status page says of pins and the store.
type pinsStatus struct {
	held, local, received, members int
	// by signal: records, bytes, budget, evicted; pinned records, pinned
	// bytes, moved in, evicted (budget full), evicted (pin ended), pins
	// after eviction
	store  map[string][4]int
	pinned map[string][6]int
}

func readPinsStatus(c assert.TestingT, base string) (pinsStatus, bool) {
	st := pinsStatus{store: map[string][4]int{}, pinned: map[string][6]int{}}
	page, err := noisyGetText(context.Background(), base+"/")
	if !assert.NoError(c, err) {
		return st, false
	}
	m := pinsHeldRe.FindStringSubmatch(page)
	if !assert.NotNil(c, m, "pins line on %s", base) {
		return st, false
	}
	st.held, _ = strconv.Atoi(m[1])
	st.local, _ = strconv.Atoi(m[2])
	st.received, _ = strconv.Atoi(m[3])
	st.members, _ = strconv.Atoi(m[4])
	for _, m := range pinsStoreRe.FindAllStringSubmatch(page, -1) {
		var v [4]int
		for i := range 4 {
			v[i], _ = strconv.Atoi(m[2+i])
		}
		st.store[m[1]] = v
	}
	for _, m := range pinsMovedRe.FindAllStringSubmatch(page, -1) {
		var v [6]int
		for i := range 6 {
			v[i], _ = strconv.Atoi(m[2+i])
		}
		st.pinned[m[1]] = v
	}
	return st, true
}

// TestPinsAcrossNodes is issue #20's acceptance (all but the benchmark
// bullets); see the file comment.
func TestPinsAcrossNodes(t *testing.T) {
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	j := startJaeger(t)
	sink := &logSink{got: map[pcommon.TraceID]int{}}
	sinkSrv := httptest.NewServer(sink)
	t.Cleanup(sinkSrv.Close)

	work := t.TempDir()
	keyFile := filepath.Join(work, "gossip.key")
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	require.NoError(t, os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600))
	rulesPath := filepath.Join(work, "mesh.rules.yaml")
	require.NoError(t, os.WriteFile(rulesPath, []byte(pinsRules), 0o600))
	bin := filepath.Join(work, "weft")
	require.NoError(t, gobuild.Build(t.Context(), ".", bin, ".", ""))

	// startAgent writes an agent's config (keyFile "": insecure, plaintext
	// gossip) and starts it; it is stopped at cleanup.
	startAgent := func(node, gossipAddr, keyFile string, join []string) *pinsAgent {
		ports, err := loopback.FreeAddrs(4)
		require.NoError(t, err)
		_, mp, _ := strings.Cut(ports[3], ":")
		a := &pinsAgent{
			Node: node, Health: ports[0], Query: ports[1], OTLP: ports[2], Gossip: gossipAddr,
			KeyFile: keyFile, Jaeger: j.OTLPGRPC, Sink: sinkSrv.URL, Rules: rulesPath,
			Metrics: ports[3], Budget: pinsBudget, Pinned: pinsPinnedBudget, Wait: pinsDecisionWait,
			Join: strings.Join(join, ", "),
		}
		a.MetricsPort, _ = strconv.Atoi(mp)
		cfg := filepath.Join(t.TempDir(), "weft.yaml")
		require.NoError(t, os.WriteFile(cfg, renderTemplate(t, pinsAgentConfig, a), 0o600))
		a.proc = &thanosAgent{Node: node, bin: bin, cfgPath: cfg, logT: t, Health: a.Health}
		a.proc.start(t)
		t.Cleanup(func() { a.proc.stop(t) })
		return a
	}
	gossip, err := loopback.FreeAddrs(3)
	require.NoError(t, err)
	var agents []*pinsAgent
	for i, node := range []string{"n1", "n2", "n3"} {
		var join []string
		for k, g := range gossip {
			if k != i {
				join = append(join, g)
			}
		}
		agents = append(agents, startAgent(node, gossip[i], keyFile, join))
	}

	// The cluster forms: n2 and n3 join the nodes started before them at
	// their start (n1's own attempts back off up to rejoin_interval).
	// Bound: a few push/pull rounds of memberlist's join, 10 s.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, a := range agents {
			st, ok := readPinsStatus(c, "http://"+a.Query)
			if ok {
				assert.Equal(c, 3, st.members, "%s: cluster members", a.Node)
			}
		}
	}, 10*time.Second, 200*time.Millisecond, "three gossip members")

	// The mesh.
	seed := mrand.Uint64()
	t.Logf("trace ID seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, seed^0x5eed))
	newTrace := func() *pinsTrace {
		tr := &pinsTrace{errHop: -1}
		for i := range 2 {
			v := rng.Uint64()
			for b := range 8 {
				tr.id[8*i+b] = byte(v >> (56 - 8*b))
			}
		}
		for h := range 3 {
			v := rng.Uint64() | 1
			for b := range 8 {
				tr.spans[h][b] = byte(v >> (56 - 8*b))
			}
		}
		return tr
	}
	// The mesh: the non-error traces, then a burst of error traces and the
	// alert's trace in one last batch. Why last: a node evicts by size at
	// append time, so a trace's spans on the nodes without its error are
	// only saved if the pin reaches them before pinsBudget of later traffic
	// does; interleaved with 2000 other traces (≈ 3 budgets per node, sent
	// in about a second) about half of the traces pinned by a peer were
	// evicted before the pin arrived; the traces pinned locally never
	// were. The filler below starts once every node holds every pin.
	var normal, errTraces []*pinsTrace
	for range pinsNormal {
		normal = append(normal, newTrace())
	}
	for i := range pinsErrors {
		tr := newTrace()
		tr.errHop = i % 3
		tr.http500 = i%2 == 1
		errTraces = append(errTraces, tr)
	}
	alertTrace := newTrace()
	burst := append(append([]*pinsTrace{}, errTraces...), alertTrace)
	mesh := append(append([]*pinsTrace{}, normal...), burst...)

	send := func(trs []*pinsTrace) {
		for start := 0; start < len(trs); start += pinsBatch {
			batch := trs[start:min(start+pinsBatch, len(trs))]
			now := time.Now()
			for h, a := range agents {
				td, ld := hopData(batch, h, now)
				sendOTLP(t, a.OTLP, td, ld)
			}
		}
	}
	send(normal)
	send(burst)
	lastMesh := time.Now()

	// The alert on n1: a gauge with an exemplar of the alert trace.
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "ratings")
	g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("app_failing")
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	dp.SetDoubleValue(1)
	ex := dp.Exemplars().AppendEmpty()
	ex.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	ex.SetDoubleValue(1)
	ex.SetTraceID(alertTrace.id)
	ex.SetSpanID(alertTrace.spans[0])
	mb, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)
	postBody(t, "http://"+agents[0].OTLP+"/v1/metrics", "application/x-protobuf", mb)

	// Every node holds a pin of every error trace and of the alert's
	// trace. Bound: an evaluation interval and the evidence lookup for the
	// alert's pin, then gossip (a broadcast goes out at the next round,
	// retransmitted 4·⌈log10(4)⌉ = 4 rounds): 1 s + 2 s + 5 rounds, twice
	// over, plus 5 s for the agents' scheduling under the mesh's load.
	pinBound := 2*(time.Second+2*time.Second+5*pinsGossipInterval) + 5*time.Second
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, a := range agents {
			st, ok := readPinsStatus(c, "http://"+a.Query)
			if ok {
				assert.Equal(c, pinsErrors+1, st.held, "%s: pins held (local %d, received %d)", a.Node, st.local, st.received)
			}
		}
	}, pinBound, 200*time.Millisecond, "every node holds the %d error traces' and the alert trace's pins", pinsErrors)
	for _, a := range agents {
		st, _ := readPinsStatus(t, "http://"+a.Query)
		t.Logf("%s: pins held %d, set here %d, received %d", a.Node, st.held, st.local, st.received)
		// Every pin so far came while the node held its records of the
		// trace (the burst was the last traffic): none came too late.
		for _, sig := range []string{"spans", "logs"} {
			assert.Zero(t, st.pinned[sig][5], "%s %s: pins after eviction", a.Node, sig)
		}
	}

	t.Run("ExportSampling", func(t *testing.T) {
		// Quiescence: every waiting trace decided (at most decision_wait
		// plus one tick, decision_wait/20, after the last mesh batch; 5 s
		// slack for scheduling), then the agents' kept spans and log
		// records, from their self-metrics, all in Jaeger and the sink.
		var keptSpans, keptLogs float64
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			keptSpans, keptLogs = 0, 0
			for _, a := range agents {
				text, err := noisyGetText(t.Context(), "http://"+a.Metrics+"/metrics")
				if !assert.NoError(c, err) {
					return
				}
				assert.Zero(c, noisySum(text, "evidence_sampling_buffered_spans", nil), "%s buffered spans", a.Node)
				assert.Zero(c, noisySum(text, "evidence_sampling_buffered_log_records", nil), "%s buffered log records", a.Node)
				assert.Zero(c, noisySum(text, "evidence_sampling_spans_dropped", map[string]string{"reason": "refused"}), "%s refused", a.Node)
				keptSpans += noisySum(text, "evidence_sampling_spans_kept", nil)
				keptLogs += noisySum(text, "evidence_sampling_log_records_kept", nil)
			}
		}, max(time.Until(lastMesh.Add(pinsDecisionWait+pinsDecisionWait/20+5*time.Second)), time.Second), 200*time.Millisecond, "evidence_sampling buffers empty")
		t.Logf("kept by the agents: %.0f spans, %.0f log records", keptSpans, keptLogs)

		// Jaeger: spans of every mesh trace. Bound: the exporter sends at
		// once, Jaeger batches for 100 ms; 10 s for scheduling.
		jaegerSpans := map[pcommon.TraceID][]string{}
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			total := 0
			for _, tr := range mesh {
				var got struct{ Data []jaegerTrace }
				code, err := getJSON(t.Context(), "http://"+j.Query+"/api/traces/"+tr.id.String(), &got)
				if !assert.NoError(c, err) {
					return
				}
				var ids []string
				if code == http.StatusOK {
					for _, d := range got.Data {
						for _, s := range d.Spans {
							ids = append(ids, s.SpanID)
						}
					}
				}
				jaegerSpans[tr.id] = ids
				total += len(ids)
			}
			assert.Equal(c, int(keptSpans), total, "spans in Jaeger of the mesh's traces")
			assert.Equal(c, int(keptLogs), sink.total(), "log records in the sink")
		}, 10*time.Second, 500*time.Millisecond, "everything the agents kept is in Jaeger and the sink")

		complete := func(tr *pinsTrace) bool {
			ids := jaegerSpans[tr.id]
			if len(ids) != 3 {
				return false
			}
			want := map[string]bool{}
			for _, s := range tr.spans {
				want[s.String()] = true
			}
			for _, id := range ids {
				if !want[id] {
					return false
				}
				delete(want, id)
			}
			return len(want) == 0
		}
		for _, tr := range errTraces {
			assert.True(t, complete(tr), "error trace %s (error on %s): spans in Jaeger %v", tr.id, pinsServices[tr.errHop], jaegerSpans[tr.id])
			assert.Equal(t, 3, sink.count(tr.id), "error trace %s: log lines exported", tr.id)
		}
		var kept, fragments, wrong int
		for _, tr := range normal {
			n := len(jaegerSpans[tr.id])
			switch {
			case n == 0:
			case complete(tr):
				kept++
			default:
				fragments++
				t.Errorf("fragment: trace %s has %d of 3 spans in Jaeger: %v", tr.id, n, jaegerSpans[tr.id])
			}
			if l := sink.count(tr.id); l != 0 && l != 3 {
				fragments++
				t.Errorf("fragment: trace %s has %d of 3 log lines exported", tr.id, l)
			}
			if (n > 0) != tr.sampled() || (sink.count(tr.id) > 0) != tr.sampled() {
				wrong++
				if wrong <= 10 {
					t.Errorf("trace %s: sampled by its randomness %v, spans in Jaeger %d, log lines %d", tr.id, tr.sampled(), n, sink.count(tr.id))
				}
			}
		}
		mean := float64(len(normal)) * pinsP
		sigma := math.Sqrt(mean * (1 - pinsP))
		t.Logf("non-error traces: %d of %d complete in Jaeger (%.2f %%), expected %.1f ± 4σ = %.1f; %d fragments; %d decided otherwise than R ≥ T",
			kept, len(normal), 100*float64(kept)/float64(len(normal)), mean, 4*sigma, fragments, wrong)
		assert.Zero(t, fragments, "fragments")
		assert.Zero(t, wrong, "traces whose keep/drop differs from the consistent sampling rule")
		assert.InDelta(t, mean, float64(kept), 4*sigma, "complete non-error traces: binomial(n=%d, p=%.6f) within 4σ", len(normal), pinsP)
		// The alert's trace is pinned by the alert, which fires after its
		// spans arrived (within decision_wait only if the rule is fast
		// enough): not asserted, only reported.
		t.Logf("alert trace %s: %d spans in Jaeger, %d log lines", alertTrace.id, len(jaegerSpans[alertTrace.id]), sink.count(alertTrace.id))
	})

	// fill sends 10× each budget of other traffic to a: one-span traces
	// and log lines of 1 KiB each, no errors.
	fill := func(t *testing.T, a *pinsAgent) {
		payload := strings.Repeat("x", 1024)
		var spanBytes, logBytes int
		for spanBytes < 10*pinsBudget || logBytes < 10*pinsBudget {
			var batch []*pinsTrace
			for range pinsBatch {
				batch = append(batch, newTrace())
			}
			td, ld := hopData(batch, 1, time.Now())
			spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
			lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
			for i := range spans.Len() {
				spans.At(i).Attributes().PutStr("filler", payload)
				lrs.At(i).Body().SetStr(payload)
			}
			sb, lb := sendOTLP(t, a.OTLP, td, ld)
			spanBytes += sb
			logBytes += lb
		}
		t.Logf("%s: sent %d span bytes and %d log bytes of other traffic (OTLP protobuf; budget %d each)", a.Node, spanBytes, logBytes, pinsBudget)
	}
	type corrJSON struct {
		Trace *struct {
			Spans []struct {
				SpanID string `json:"spanID"`
			} `json:"spans"`
		} `json:"trace"`
		Logs []struct {
			SpanID string `json:"spanID"`
		} `json:"logs"`
		Alerts []map[string]any `json:"alerts"`
	}
	// evicted reports whether a no longer holds anything of trace id.
	evicted := func(t *testing.T, a *pinsAgent, id pcommon.TraceID) bool {
		code, err := getJSON(t.Context(), "http://"+a.Query+"/api/v1/correlate/"+id.String(), &map[string]any{})
		require.NoError(t, err)
		return code == http.StatusNotFound
	}

	t.Run("PinnedSurviveEviction", func(t *testing.T) {
		// 10× each budget of other traffic to every node.
		for _, a := range agents {
			fill(t, a)
		}

		pinned := append(append([]*pinsTrace{}, errTraces...), alertTrace)
		for h, a := range agents {
			st, _ := readPinsStatus(t, "http://"+a.Query)
			t.Logf("%s store: spans %v, logs %v (records, bytes, budget, evicted); pinned spans %v, pinned logs %v (records, bytes, moved in, evicted full, evicted expired, pins after eviction)",
				a.Node, st.store["spans"], st.store["logs"], st.pinned["spans"], st.pinned["logs"])
			// The store's own accounting: what it evicted is at least 9
			// budgets (10 sent, at most one held), at its mean record size.
			for _, sig := range []string{"spans", "logs"} {
				s := st.store[sig]
				if assert.Positive(t, s[0], "%s %s records", a.Node, sig) {
					evictedBytes := float64(s[3]) * float64(s[1]) / float64(s[0])
					assert.GreaterOrEqual(t, evictedBytes, 9.0*pinsBudget, "%s %s: evicted bytes (store accounting)", a.Node, sig)
				}
				assert.Zero(t, st.pinned[sig][3], "%s %s: pinned records evicted for a full pinned budget", a.Node, sig)
			}
			for _, tr := range pinned {
				var corr corrJSON
				thanosGetDataC(t, "http://"+a.Query+"/api/v1/correlate/"+tr.id.String(), &corr)
				what := "alert trace"
				if tr != alertTrace {
					what = "error trace (error on " + pinsServices[tr.errHop] + ")"
				}
				if assert.NotNil(t, corr.Trace, "%s: %s %s: spans", a.Node, what, tr.id) {
					assert.Len(t, corr.Trace.Spans, 1, "%s: %s %s: spans", a.Node, what, tr.id)
					if len(corr.Trace.Spans) == 1 {
						assert.Equal(t, tr.spans[h].String(), corr.Trace.Spans[0].SpanID)
					}
				}
				if assert.Len(t, corr.Logs, 1, "%s: %s %s: log lines", a.Node, what, tr.id) {
					assert.Equal(t, tr.spans[h].String(), corr.Logs[0].SpanID)
				}
				if tr == alertTrace && a.Node == "n1" {
					assert.NotEmpty(t, corr.Alerts, "n1 cites the alert trace in an active alert")
				}
			}
			// Control: the mesh's other traces, as old as the pinned ones,
			// were evicted.
			var kept int
			for _, tr := range normal {
				if !evicted(t, a, tr.id) {
					kept++
				}
			}
			assert.Zero(t, kept, "%s: unpinned mesh traces still held after 10× the budget", a.Node)
		}
	})

	n1, n2, n3 := agents[0], agents[1], agents[2]
	statusOf := func(c assert.TestingT, a *pinsAgent) (pinsStatus, bool) { return readPinsStatus(c, "http://"+a.Query) }

	t.Run("PinAfterEvictionCounted", func(t *testing.T) {
		// A mesh trace every node evicted (the control above), pinned on n1
		// by a late error span of its hop: on every node, the pin comes
		// after that node dropped its span and log line of the trace.
		before := map[string][2]int{}
		for _, a := range agents {
			st, ok := statusOf(t, a)
			require.True(t, ok)
			before[a.Node] = [2]int{st.pinned["spans"][5], st.pinned["logs"][5]}
		}
		late := *normal[0]
		late.errHop = 0
		td, ld := hopData([]*pinsTrace{&late}, 0, time.Now())
		sendOTLP(t, n1.OTLP, td, ld)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			for _, a := range agents {
				if st, ok := statusOf(c, a); ok {
					assert.Equal(c, before[a.Node][0]+1, st.pinned["spans"][5], "%s: spans, pins after eviction", a.Node)
					assert.Equal(c, before[a.Node][1]+1, st.pinned["logs"][5], "%s: logs, pins after eviction", a.Node)
				}
			}
		}, pinBound, 200*time.Millisecond, "the late pin of trace %s counted on every node", late.id)
		// The self-metric says what the status page says.
		for _, a := range agents {
			text, err := noisyGetText(t.Context(), "http://"+a.Metrics+"/metrics")
			require.NoError(t, err)
			st, _ := statusOf(t, a)
			for _, sig := range []string{"spans", "logs"} {
				assert.Equal(t, float64(st.pinned[sig][5]), noisySum(text, "weft_store_pins_after_eviction", map[string]string{"signal": sig}),
					"%s %s: weft_store.pins_after_eviction", a.Node, sig)
			}
			t.Logf("%s: pins after eviction: spans %d, logs %d", a.Node, st.pinned["spans"][5], st.pinned["logs"][5])
		}
	})

	// A node down while a pin is spread. n3 leaves (SIGTERM: weft_pins
	// leaves the cluster gracefully, so n1 and n2 stop gossiping to it).
	n3.proc.stop(t)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, a := range []*pinsAgent{n1, n2} {
			if st, ok := statusOf(c, a); ok {
				assert.Equal(c, 2, st.members, "%s: cluster members without n3", a.Node)
			}
		}
	}, 10*time.Second, 200*time.Millisecond, "n3 left")
	st2, ok := statusOf(t, n2)
	require.True(t, ok)
	// n1 pins a new trace: its hop fails; n2 holds its own hop.
	down := newTrace()
	down.errHop = 0
	for h, a := range []*pinsAgent{n1, n2} {
		td, ld := hopData([]*pinsTrace{down}, h, time.Now())
		sendOTLP(t, a.OTLP, td, ld)
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		if st, ok := statusOf(c, n2); ok {
			assert.Equal(c, st2.held+1, st.held, "n2: pins held")
		}
	}, pinBound, 200*time.Millisecond, "n1's pin of trace %s reaches n2", down.id)
	// The broadcasts end: each of n1 and n2 sends a pin in
	// retransmit_mult × ⌈log10(members+1)⌉ = 4 × 1 gossip rounds (0.8 s)
	// after it has it, then drops it from its queue; after that only a
	// push/pull state carries it. There is nothing to observe (the
	// queue's length is not published, and n1's firing alert re-pins its
	// trace every resend_delay), so the test waits 25 rounds (5 s), 6×
	// the retransmissions, with slack for a loaded machine.
	time.Sleep(25 * pinsGossipInterval)
	n3.proc.start(t)
	st1, ok := statusOf(t, n1)
	require.True(t, ok)
	// n3 rejoins (its join list names n1 and n2) and its join's push/pull
	// brings every pin n1 holds (state_pins 4096 ≥ the pins held).
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, a := range agents {
			if st, ok := statusOf(c, a); ok {
				assert.Equal(c, 3, st.members, "%s: cluster members after n3's return", a.Node)
			}
		}
		if st, ok := statusOf(c, n3); ok {
			assert.Equal(c, st1.held, st.held, "n3: pins held after its return (n1 holds %d)", st1.held)
			assert.Positive(c, st.received, "n3: pins received from peers")
			assert.Zero(c, st.local, "n3: pins set here")
		}
	}, 20*time.Second, 200*time.Millisecond, "n3 is back and caught up")
	st3, _ := statusOf(t, n3)
	t.Logf("n3 after its return: pins held %d (n1: %d), received from peers %d, set here %d, cluster members %d",
		st3.held, st1.held, st3.received, st3.local, st3.members)

	// Peers without the key. n4 has another key, n5 gossips in plaintext
	// (insecure: true); both try to join n1..n3.
	otherKey := filepath.Join(work, "other.key")
	_, _ = rand.Read(key)
	require.NoError(t, os.WriteFile(otherKey, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600))
	refused := func(c assert.TestingT) (float64, bool) {
		var n float64
		for _, a := range agents {
			text, err := noisyGetText(context.Background(), "http://"+a.Metrics+"/metrics")
			if !assert.NoError(c, err) {
				return 0, false
			}
			n += noisySum(text, "weft_pins_refused_messages", map[string]string{"reason": "undecryptable"})
		}
		return n, true
	}
	refusedBefore, ok := refused(t)
	require.True(t, ok)
	outsideGossip, err := loopback.FreeAddrs(2)
	require.NoError(t, err)
	var outsiders []*pinsAgent
	for i, o := range []struct{ node, keyFile string }{{"n4", otherKey}, {"n5", ""}} {
		outsiders = append(outsiders, startAgent(o.node, outsideGossip[i], o.keyFile, gossip))
	}
	// Each outsider fails an error trace of its own, so it pins it and
	// would gossip it; n1..n3 see the same traces without an error.
	var outsiderTraces []*pinsTrace
	for i, o := range outsiders {
		tr := newTrace()
		outsiderTraces = append(outsiderTraces, tr)
		failed := *tr
		failed.errHop = 0
		td, ld := hopData([]*pinsTrace{&failed}, 0, time.Now())
		sendOTLP(t, o.OTLP, td, ld)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			if st, ok := statusOf(c, o); ok {
				assert.Equal(c, 1, st.local, "%s: pins set here", o.Node)
				assert.Equal(c, 1, st.members, "%s: cluster members", o.Node)
			}
		}, pinBound, 200*time.Millisecond, "%s pinned its error trace %d", o.Node, i)
	}
	for h, a := range agents {
		td, ld := hopData(outsiderTraces, h, time.Now())
		sendOTLP(t, a.OTLP, td, ld)
	}
	// n3's hop of the pinned trace, after its return, and of a trace
	// nobody pins (the control).
	control := newTrace()
	td, ld := hopData([]*pinsTrace{down, control}, 2, time.Now())
	sendOTLP(t, n3.OTLP, td, ld)
	// The outsiders keep trying (rejoin_interval 2s), now with their pins
	// in their state: n1..n3 refuse at least one more attempt of each
	// after both pinned.
	afterPins, ok := refused(t)
	require.True(t, ok)
	require.Greater(t, afterPins, refusedBefore, "n1..n3 refused the outsiders' join attempts")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		if n, ok := refused(c); ok {
			assert.GreaterOrEqual(c, n, afterPins+2, "undecryptable messages refused by n1..n3")
		}
	}, 15*time.Second, 500*time.Millisecond, "the outsiders try again with their pins")
	for _, a := range agents {
		fill(t, a)
	}

	t.Run("DownNodeCatchesUp", func(t *testing.T) {
		var corr corrJSON
		thanosGetDataC(t, "http://"+n3.Query+"/api/v1/correlate/"+down.id.String(), &corr)
		if assert.NotNil(t, corr.Trace, "n3: trace %s pinned while it was down: spans", down.id) &&
			assert.Len(t, corr.Trace.Spans, 1, "n3: trace %s: spans", down.id) {
			assert.Equal(t, down.spans[2].String(), corr.Trace.Spans[0].SpanID)
		}
		if assert.Len(t, corr.Logs, 1, "n3: trace %s: log lines", down.id) {
			assert.Equal(t, down.spans[2].String(), corr.Logs[0].SpanID)
		}
		assert.True(t, evicted(t, n3, control.id), "n3: the unpinned control trace %s sent with it is evicted", control.id)
		st, ok := statusOf(t, n3)
		if assert.True(t, ok) {
			assert.Positive(t, st.received, "n3: pins received from peers")
			assert.Zero(t, st.local, "n3: pins set here")
			t.Logf("n3 store: spans %v, logs %v; pinned spans %v, pinned logs %v", st.store["spans"], st.store["logs"], st.pinned["spans"], st.pinned["logs"])
		}
	})

	t.Run("OutsidersKeptOut", func(t *testing.T) {
		for _, a := range agents {
			st, ok := statusOf(t, a)
			if assert.True(t, ok) {
				assert.Equal(t, 3, st.members, "%s: cluster members", a.Node)
				assert.Equal(t, st3.held, st.held, "%s: pins held (none from the outsiders)", a.Node)
			}
			for i, tr := range outsiderTraces {
				assert.True(t, evicted(t, a, tr.id), "%s: %s's error trace %s is evicted like any other", a.Node, outsiders[i].Node, tr.id)
			}
		}
		for _, o := range outsiders {
			st, ok := statusOf(t, o)
			if assert.True(t, ok) {
				assert.Equal(t, 1, st.members, "%s: cluster members", o.Node)
				assert.Zero(t, st.received, "%s: pins received", o.Node)
			}
		}
		n, _ := refused(t)
		t.Logf("undecryptable gossip messages refused by n1..n3: %.0f (%.0f before the outsiders started)", n, refusedBefore)
	})
}
