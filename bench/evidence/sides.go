package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/weftobs/weft/internal/loopback"
)

// telemetryBlock is the self-metrics pull endpoint both sides expose (the
// collector's :8888, here on a free loopback port).
const telemetryBlock = `  telemetry:
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

// weftConfig is side A's agent: weft_pins gossiping with its peers
// (encrypted with the run's generated key), evidence_sampling at 10 %,
// OTLP/HTTP out to the sink. Gossip off (.Gossip empty) and no
// evidence_sampling (.Sampling false) are the memory runs' variants.
const weftConfig = `extensions:
  weft_pins:
    gossip:
{{- if .Gossip}}
      bind: {{.Gossip}}
      join: [{{.Join}}]
      node_name: {{.Node}}
      secret_key_file: {{.KeyFile}}
      rejoin_interval: 2s
{{- else}}
      enabled: false
{{- end}}
receivers:
  otlp:
    protocols:
      http:
        endpoint: {{.OTLP}}
{{- if .Sampling}}
processors:
  evidence_sampling:
    sampling_percentage: 10
    decision_wait: {{.Wait}}
{{- end}}
exporters:
  otlp_http/sink:
    traces_endpoint: {{.Sink}}/v1/traces
    compression: none
service:
  extensions: [weft_pins]
  pipelines:
    traces:
      receivers: [otlp]
{{- if .Sampling}}
      processors: [evidence_sampling]
{{- end}}
      exporters: [otlp_http/sink]
` + telemetryBlock

// peerConfig is side B's collector: contrib's tail_sampling with the
// policy weft's rule is compared with (status ERROR, 5xx, or 10 %
// probabilistic on the trace ID), room for every trace of the wait.
const peerConfig = `receivers:
  otlp:
    protocols:
      http:
        endpoint: {{.OTLP}}
processors:
  tail_sampling:
    decision_wait: {{.Wait}}
    num_traces: {{.NumTraces}}
    expected_new_traces_per_sec: {{.Rate}}
    policies:
      - name: errors
        type: status_code
        status_code:
          status_codes: [ERROR]
      - name: http_5xx
        type: numeric_attribute
        numeric_attribute:
          key: http.response.status_code
          min_value: 500
          max_value: 599
      - name: ten_percent
        type: probabilistic
        probabilistic:
          sampling_percentage: 10
exporters:
  otlp_http/sink:
    traces_endpoint: {{.Sink}}/v1/traces
    compression: none
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [tail_sampling]
      exporters: [otlp_http/sink]
` + telemetryBlock

// childVars fills both templates.
type childVars struct {
	Node, OTLP, Sink, Gossip, Join, KeyFile string
	MetricsPort                             int
	Wait                                    time.Duration
	Sampling                                bool
	NumTraces, Rate                         int
}

// newChildVars picks the child's OTLP and self-metrics addresses.
func newChildVars(node string, s *sink) (childVars, string, error) {
	addrs, err := loopback.FreeAddrs(2)
	if err != nil {
		return childVars{}, "", err
	}
	_, port, _ := strings.Cut(addrs[1], ":")
	p, err := strconv.Atoi(port)
	if err != nil {
		return childVars{}, "", err
	}
	return childVars{Node: node, OTLP: addrs[0], Sink: s.endpoint(), MetricsPort: p}, addrs[1], nil
}

// writeKey writes a fresh 32-byte gossip key (base64, as weft_pins'
// secret_key_file takes it) into dir.
func writeKey(dir string) (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "gossip.key")
	return path, os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
}

// startWeftCluster starts n weft agents that gossip pins with each
// other, and waits until every one counts n members.
func startWeftCluster(ctx context.Context, o options, dir string, s *sink) ([]*child, error) {
	keyFile, err := writeKey(dir)
	if err != nil {
		return nil, err
	}
	gossip, err := loopback.FreeAddrs(hops)
	if err != nil {
		return nil, err
	}
	var agents []*child
	fail := func(err error) ([]*child, error) {
		stopAll(agents)
		return nil, err
	}
	for i := range hops {
		node := fmt.Sprintf("n%d", i+1)
		v, metrics, err := newChildVars(node, s)
		if err != nil {
			return fail(err)
		}
		v.Gossip, v.KeyFile, v.Sampling, v.Wait = gossip[i], keyFile, true, o.DecisionWait
		var join []string
		for k, g := range gossip {
			if k != i {
				join = append(join, g)
			}
		}
		v.Join = strings.Join(join, ", ")
		cfg, err := render(weftConfig, v)
		if err != nil {
			return fail(err)
		}
		a, err := startChild(ctx, dir, "weft-"+node, o.WeftBin, cfg, v.OTLP, metrics)
		if err != nil {
			return fail(err)
		}
		agents = append(agents, a)
	}
	// The cluster forms within a few rejoin intervals (2 s).
	deadline := time.Now().Add(30 * time.Second)
	for {
		formed := true
		var last error
		for _, a := range agents {
			m, err := a.scrape(ctx)
			if err != nil {
				formed, last = false, err
				break
			}
			if n, _ := m.sum("weft_pins.members", nil); int(n) != hops {
				formed, last = false, fmt.Errorf("%s counts %d gossip members, want %d", a.name, int(n), hops)
				break
			}
		}
		if formed {
			return agents, nil
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("gossip cluster not formed after 30 s: %w", last))
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func stopAll(cs []*child) {
	for _, c := range cs {
		c.stop()
	}
}

// runWeft is side A: three weft agents, the workload, the drain, the
// sink's counts and the agents' self-metrics.
func runWeft(ctx context.Context, o options, logw io.Writer) (*sideResult, error) {
	dir := filepath.Join(o.WorkDir, "weft")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s, err := startSink()
	if err != nil {
		return nil, err
	}
	defer s.stop()
	agents, err := startWeftCluster(ctx, o, dir, s)
	if err != nil {
		return nil, err
	}
	defer stopAll(agents)
	fmt.Fprintf(logw, "weft: %d agents in one gossip cluster; sending %d requests/s for %s ...\n", len(agents), o.Rate, o.Duration)

	before, err := scrapeAll(ctx, agents)
	if err != nil {
		return nil, err
	}
	cpu0, err := cpuAll(agents)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	p := newPoster()
	defer p.close()
	m := newMesh(o.Seed)
	sendTime, err := drive(ctx, p, m, otlpAddrs(agents), o.Rate, o.Duration)
	if err != nil {
		return nil, err
	}
	// Drain: every waiting trace is decided at most decision_wait plus
	// one tick (decision_wait/20) after its first span; then the kept
	// spans leave the exporters' queues.
	var after []metricsText
	var kept float64
	deadline := time.Now().Add(o.DecisionWait + o.DecisionWait/20 + 60*time.Second)
	for {
		after, err = scrapeAll(ctx, agents)
		if err != nil {
			return nil, err
		}
		var buffered float64
		kept = 0
		for _, t := range after {
			b, err := t.must("evidence_sampling.buffered_spans", nil)
			if err != nil {
				return nil, err
			}
			buffered += b
			k, err := t.must("evidence_sampling.spans_kept", nil)
			if err != nil {
				return nil, err
			}
			kept += k
		}
		if got, _ := s.snapshot(); buffered == 0 && float64(got) >= kept {
			break
		}
		if time.Now().After(deadline) {
			got, _ := s.snapshot()
			return nil, fmt.Errorf("weft did not drain: %.0f spans buffered, %.0f kept, %d at the sink", buffered, kept, got)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err := s.waitQuiet(ctx, time.Second, 30*time.Second); err != nil {
		return nil, err
	}
	window := time.Since(t0)
	cpu1, err := cpuAll(agents)
	if err != nil {
		return nil, err
	}
	after, err = scrapeAll(ctx, agents)
	if err != nil {
		return nil, err
	}

	r := tally("weft", s, m.reqs, weftP, func(q *request) bool { return q.errHop >= 0 || weftSampled(q.id) })
	r.SendSeconds = sendTime.Seconds()
	r.Refused, r.LastRefusal = p.refused, p.lastErr
	r.WeftKeptSpans = kept
	r.GossipWindowSeconds = window.Seconds()
	for i, a := range agents {
		var sent, recv [2]float64
		for k, t := range []metricsText{before[i], after[i]} {
			if sent[k], err = t.must("weft_pins.gossip_bytes", map[string]string{"direction": "sent"}); err != nil {
				return nil, err
			}
			if recv[k], err = t.must("weft_pins.gossip_bytes", map[string]string{"direction": "received"}); err != nil {
				return nil, err
			}
		}
		local, _ := after[i].sum("weft_pins.local", nil)
		received, _ := after[i].sum("weft_pins.received", nil)
		late, _ := after[i].sum("evidence_sampling.late_pins", nil)
		full, _ := after[i].sum("evidence_sampling.spans_dropped", map[string]string{"reason": "buffer_full"})
		refused, _ := after[i].sum("evidence_sampling.spans_dropped", map[string]string{"reason": "refused"})
		hwm, err := a.procKiB("VmHWM:")
		if err != nil {
			return nil, err
		}
		r.Nodes = append(r.Nodes, nodeResult{
			Node:           a.name,
			CPUSeconds:     cpu1[i] - cpu0[i],
			HWMKiB:         hwm,
			GossipSent:     sent[1] - sent[0],
			GossipReceived: recv[1] - recv[0],
			PinsLocal:      local,
			PinsReceived:   received,
			LatePins:       late,
			BufferFull:     full,
			Refused:        refused,
		})
	}
	return r, nil
}

// runPeer is side B: three tailpeer collectors with tail_sampling, the
// same workload, the drain.
func runPeer(ctx context.Context, o options, logw io.Writer) (*sideResult, error) {
	dir := filepath.Join(o.WorkDir, "tailpeer")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s, err := startSink()
	if err != nil {
		return nil, err
	}
	defer s.stop()
	var peers []*child
	defer func() { stopAll(peers) }()
	for i := range hops {
		node := fmt.Sprintf("n%d", i+1)
		v, metrics, err := newChildVars(node, s)
		if err != nil {
			return nil, err
		}
		v.Wait, v.Rate = o.DecisionWait, o.Rate
		// Room for every trace that waits, twice over: a trace evicted
		// from a full map is decided early, which would blame the peer
		// for its size rather than its design.
		v.NumTraces = max(2*o.Rate*int(o.DecisionWait/time.Second+2), 1000)
		cfg, err := render(peerConfig, v)
		if err != nil {
			return nil, err
		}
		c, err := startChild(ctx, dir, "tailpeer-"+node, o.PeerBin, cfg, v.OTLP, metrics)
		if err != nil {
			return nil, err
		}
		peers = append(peers, c)
	}
	fmt.Fprintf(logw, "tail_sampling: %d collectors; sending %d requests/s for %s ...\n", len(peers), o.Rate, o.Duration)
	cpu0, err := cpuAll(peers)
	if err != nil {
		return nil, err
	}
	p := newPoster()
	defer p.close()
	m := newMesh(o.Seed ^ 0x7065657273)
	sendTime, err := drive(ctx, p, m, otlpAddrs(peers), o.Rate, o.Duration)
	if err != nil {
		return nil, err
	}
	// Drain: tail_sampling decides once a second, decision_wait after a
	// trace's first span; then no span for 3 s.
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(o.DecisionWait + 2*time.Second):
	}
	if err := s.waitQuiet(ctx, 3*time.Second, 60*time.Second); err != nil {
		return nil, err
	}
	cpu1, err := cpuAll(peers)
	if err != nil {
		return nil, err
	}
	r := tally("tail_sampling", s, m.reqs, 0.10, nil)
	r.SendSeconds = sendTime.Seconds()
	r.Refused, r.LastRefusal = p.refused, p.lastErr
	for i, c := range peers {
		t, err := c.scrape(ctx)
		if err != nil {
			return nil, err
		}
		hwm, err := c.procKiB("VmHWM:")
		if err != nil {
			return nil, err
		}
		early, _ := t.sum("otelcol_processor_tail_sampling_sampling_trace_dropped_too_early", nil)
		r.Nodes = append(r.Nodes, nodeResult{Node: c.name, CPUSeconds: cpu1[i] - cpu0[i], HWMKiB: hwm, DroppedTooEarly: early})
	}
	return r, nil
}

func otlpAddrs(cs []*child) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.otlp)
	}
	return out
}

func scrapeAll(ctx context.Context, cs []*child) ([]metricsText, error) {
	var out []metricsText
	for _, c := range cs {
		t, err := c.scrape(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// weftThreshold is evidence_sampling's rejection threshold at 10 %,
// rounded to 4 significant hex digits (th:e666): a trace is sampled iff
// the last 56 bits of its ID are at least this (the processor's README,
// "The decision rule").
const weftThreshold = uint64(0xe666) << 40

// weftP is the sampling probability of weftThreshold: 0x199a/0x10000.
var weftP = 1 - float64(weftThreshold)/float64(uint64(1)<<56)

func weftSampled(id [16]byte) bool {
	r := uint64(0)
	for _, b := range id[9:] {
		r = r<<8 | uint64(b)
	}
	return r >= weftThreshold
}

// runMemory is the decision buffer's memory: one agent (gossip off), the
// workload's spans at o.MemRate spans/s for o.MemDuration (all three hops
// to the one agent), with evidence_sampling (10 %, decision_wait) or
// without it; buffer gauges and RSS sampled every second.
func runMemory(ctx context.Context, o options, sampling bool, logw io.Writer) (*memResult, error) {
	name := "memory-without"
	if sampling {
		name = "memory-with"
	}
	dir := filepath.Join(o.WorkDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s, err := startSink()
	if err != nil {
		return nil, err
	}
	defer s.stop()
	v, metrics, err := newChildVars("n1", s)
	if err != nil {
		return nil, err
	}
	v.Sampling, v.Wait = sampling, o.DecisionWait
	cfg, err := render(weftConfig, v)
	if err != nil {
		return nil, err
	}
	a, err := startChild(ctx, dir, "weft", o.WeftBin, cfg, v.OTLP, metrics)
	if err != nil {
		return nil, err
	}
	defer a.stop()
	fmt.Fprintf(logw, "memory (%s): %d spans/s into one agent for %s ...\n", name, o.MemRate, o.MemDuration)
	r := &memResult{Sampling: sampling, SpansPerSecond: o.MemRate, Seconds: o.MemDuration.Seconds()}
	if r.ReadyRSSKiB, err = a.procKiB("VmRSS:"); err != nil {
		return nil, err
	}

	// Sample once a second while the workload runs.
	stop := make(chan struct{})
	sampled := make(chan error, 1)
	start := time.Now()
	steady := start.Add(o.DecisionWait + 2*time.Second)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				sampled <- nil
				return
			case <-tick.C:
			}
			rss, err := a.procKiB("VmRSS:")
			if err != nil {
				sampled <- err
				return
			}
			r.MaxRSSKiB = max(r.MaxRSSKiB, rss)
			if !sampling || time.Now().Before(steady) {
				continue
			}
			t, err := a.scrape(ctx)
			if err != nil {
				sampled <- err
				return
			}
			spans, err1 := t.must("evidence_sampling.buffered_spans", nil)
			bytes, err2 := t.must("evidence_sampling.buffered_span_bytes", nil)
			if err := errors.Join(err1, err2); err != nil {
				sampled <- err
				return
			}
			r.Samples++
			r.BufferedSpansMax = max(r.BufferedSpansMax, spans)
			r.BufferedBytesMax = max(r.BufferedBytesMax, bytes)
			r.BufferedSpansSum += spans
			r.BufferedBytesSum += bytes
		}
	}()
	p := newPoster()
	defer p.close()
	m := newMesh(o.Seed ^ 0x6d656d)
	sendTime, err := drive(ctx, p, m, []string{a.otlp}, o.MemRate/hops, o.MemDuration)
	close(stop)
	if serr := <-sampled; err == nil {
		err = serr
	}
	if err != nil {
		return nil, err
	}
	r.SpansSent = len(m.reqs) * hops
	r.SendSeconds = sendTime.Seconds()
	r.Refused = p.refused
	if r.EndRSSKiB, err = a.procKiB("VmRSS:"); err != nil {
		return nil, err
	}
	if r.HWMKiB, err = a.procKiB("VmHWM:"); err != nil {
		return nil, err
	}
	return r, nil
}
