package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// sideResult is what the sink saw of one side's run, by trace.
type sideResult struct {
	Side        string
	P           float64 // the side's probability of keeping a non-error trace
	Requests    int     // traces sent (3 spans each, one per node)
	SendSeconds float64

	ErrorTraces   int // traces with an error on one hop
	ErrorComplete int // … of which all 3 spans reached the sink
	ErrorFragment int // … 1 or 2 spans
	ErrorMissing  int // … none

	NonError         int // traces without an error
	NonErrorComplete int
	NonErrorFragment int

	Exported  int // traces with at least one span at the sink
	Fragments int // … with 1 or 2 of their 3 spans

	SinkSpans     int // spans the sink received, duplicates included
	WorkloadSpans int // distinct (trace, hop) spans of the workload at the sink
	Duplicates    int // spans of a (trace, hop) received again
	Foreign       int // spans that are not the workload's

	// Mismatched counts traces whose spans at the sink differ from the
	// side's rule (weft: complete iff error or sampled by the trace ID,
	// else none); -1 when the side has no exact rule (tail_sampling).
	Mismatched int

	Refused     int // OTLP requests the side refused
	LastRefusal string

	// weft only.
	WeftKeptSpans       float64 // evidence_sampling.spans_kept over the agents
	GossipWindowSeconds float64 // from the first scrape before the workload to the last after the drain

	Nodes []nodeResult
}

// nodeResult is one node's self-metrics over the run.
type nodeResult struct {
	Node string
	// both sides, from /proc: CPU from the workload's start to the end of
	// the drain, and peak RSS
	CPUSeconds float64
	HWMKiB     int
	// weft
	GossipSent, GossipReceived float64 // Δ weft_pins.gossip_bytes
	PinsLocal, PinsReceived    float64 // weft_pins.local, weft_pins.received
	LatePins                   float64 // evidence_sampling.late_pins
	BufferFull, Refused        float64 // evidence_sampling.spans_dropped{reason}
	// tail_sampling
	DroppedTooEarly float64 // traces evicted from a full num_traces map before their decision
}

// tally counts the sink's traces of reqs. expect, when given, is the
// side's exact rule (kept whole, or not at all).
func tally(side string, s *sink, reqs []request, p float64, expect func(*request) bool) *sideResult {
	r := &sideResult{Side: side, P: p, Requests: len(reqs), Mismatched: -1}
	if expect != nil {
		r.Mismatched = 0
	}
	for i := range reqs {
		q := &reqs[i]
		n := s.hopsOf(q.id)
		r.WorkloadSpans += n
		if n > 0 {
			r.Exported++
			if n < hops {
				r.Fragments++
			}
		}
		if q.errHop >= 0 {
			r.ErrorTraces++
			switch {
			case n == hops:
				r.ErrorComplete++
			case n > 0:
				r.ErrorFragment++
			default:
				r.ErrorMissing++
			}
		} else {
			r.NonError++
			switch {
			case n == hops:
				r.NonErrorComplete++
			case n > 0:
				r.NonErrorFragment++
			}
		}
		if expect != nil {
			want := 0
			if expect(q) {
				want = hops
			}
			if n != want {
				r.Mismatched++
			}
		}
	}
	s.mu.Lock()
	r.SinkSpans, r.Duplicates, r.Foreign = s.spans, s.duplicates, s.foreign
	s.mu.Unlock()
	return r
}

// binomial is the mean and standard deviation of the complete non-error
// traces if each is kept with probability P.
func (r *sideResult) binomial() (mean, sigma float64) {
	n := float64(r.NonError)
	return n * r.P, math.Sqrt(n * r.P * (1 - r.P))
}

// withinTolerance says whether the complete non-error traces are within
// 4 σ of n·p.
func (r *sideResult) withinTolerance() bool {
	mean, sigma := r.binomial()
	return math.Abs(float64(r.NonErrorComplete)-mean) <= 4*sigma
}

// cpuTotal is the CPU seconds of all the side's nodes.
func (r *sideResult) cpuTotal() float64 {
	var sum float64
	for _, n := range r.Nodes {
		sum += n.CPUSeconds
	}
	return sum
}

// gossipPerNodePerSecond is the pin payload each node sent and received
// per second, averaged over the nodes.
func (r *sideResult) gossipPerNodePerSecond() float64 {
	if len(r.Nodes) == 0 || r.GossipWindowSeconds <= 0 {
		return 0
	}
	var sum float64
	for _, n := range r.Nodes {
		sum += n.GossipSent + n.GossipReceived
	}
	return sum / float64(len(r.Nodes)) / r.GossipWindowSeconds
}

// memResult is one memory run.
type memResult struct {
	Sampling       bool
	SpansPerSecond int
	Seconds        float64
	SpansSent      int
	SendSeconds    float64
	Refused        int

	ReadyRSSKiB, EndRSSKiB, MaxRSSKiB, HWMKiB int

	// Buffer gauges sampled once a second after decision_wait + 2 s.
	Samples                            int
	BufferedSpansMax, BufferedBytesMax float64
	BufferedSpansSum, BufferedBytesSum float64
}

// results is one harness run.
type results struct {
	Options     options
	Started     time.Time
	BuildWeft   time.Duration
	BuildPeer   time.Duration
	Weft, Peer  *sideResult
	MemWith     *memResult
	MemWithout  *memResult
	LoadAverage string // /proc/loadavg when the runs ended
}

func pct(a, b int) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f %%", 100*float64(a)/float64(b))
}

func mib(kib int) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// markdown renders the results.
func (res *results) markdown() string {
	var b strings.Builder
	o := res.Options
	fmt.Fprintf(&b, "# Evidence across nodes: weft pins vs tail_sampling (#20)\n\n")
	fmt.Fprintf(&b, "Run %s UTC. Workload: %d requests/s through 3 nodes (n1 → n2 → n3; each node sees one hop: one span per request), %s of sending, seed %d; every %dth request fails on one hop (rotating over the hops; status ERROR or http.response.status_code 500, alternating). decision_wait %s on both sides. One OTLP/HTTP sink counts spans per trace ID (exact).\n\n",
		res.Started.UTC().Format("2006-01-02 15:04"), o.Rate, o.Duration, o.Seed, errorEvery, o.DecisionWait)
	fmt.Fprintf(&b, "- weft: three agents, `weft_pins` gossip (memberlist, generated AES key), `evidence_sampling` 10 %% (th:e666, p = %.6f).\n", weftP)
	fmt.Fprintf(&b, "- tail_sampling: three `bench/tailpeer` collectors (contrib tailsamplingprocessor v0.161.0), policies status_code ERROR, numeric_attribute http.response.status_code 500–599, probabilistic 10 %%.\n\n")

	sides := []*sideResult{res.Weft, res.Peer}
	fmt.Fprintf(&b, "| | weft (pins + evidence_sampling) | tail_sampling on every node |\n|---|---|---|\n")
	row := func(label string, f func(*sideResult) string) {
		fmt.Fprintf(&b, "| %s |", label)
		for _, s := range sides {
			if s == nil {
				fmt.Fprintf(&b, " not run |")
				continue
			}
			fmt.Fprintf(&b, " %s |", f(s))
		}
		b.WriteString("\n")
	}
	row("traces sent (3 spans each)", func(s *sideResult) string {
		return fmt.Sprintf("%d in %.1f s (%.0f/s)", s.Requests, s.SendSeconds, float64(s.Requests)/s.SendSeconds)
	})
	row("error traces sent", func(s *sideResult) string { return fmt.Sprintf("%d", s.ErrorTraces) })
	row("error traces complete (3/3 spans)", func(s *sideResult) string {
		return fmt.Sprintf("**%s** (%d)", pct(s.ErrorComplete, s.ErrorTraces), s.ErrorComplete)
	})
	row("error traces as fragments (1–2 spans) / missing", func(s *sideResult) string {
		return fmt.Sprintf("%d / %d", s.ErrorFragment, s.ErrorMissing)
	})
	row("exported traces that are fragments", func(s *sideResult) string {
		return fmt.Sprintf("**%s** (%d of %d)", pct(s.Fragments, s.Exported), s.Fragments, s.Exported)
	})
	row("non-error traces kept complete", func(s *sideResult) string {
		mean, sigma := s.binomial()
		in := "within"
		if !s.withinTolerance() {
			in = "outside"
		}
		return fmt.Sprintf("%s (%d of %d); expected n·p = %.0f ± 4σ = %.0f (p = %.6f): %s", pct(s.NonErrorComplete, s.NonError), s.NonErrorComplete, s.NonError, mean, 4*sigma, s.P, in)
	})
	row("non-error traces as fragments", func(s *sideResult) string { return fmt.Sprintf("%d", s.NonErrorFragment) })
	row("spans at the sink (duplicates, foreign)", func(s *sideResult) string {
		return fmt.Sprintf("%d (%d, %d)", s.SinkSpans, s.Duplicates, s.Foreign)
	})
	row("traces off the side's exact rule", func(s *sideResult) string {
		if s.Mismatched < 0 {
			return "— (no exact rule: its hash is its own)"
		}
		return fmt.Sprintf("%d (rule: complete iff error or R ≥ th:e666, else none)", s.Mismatched)
	})
	row("CPU per node, workload + drain (n1, n2, n3)", func(s *sideResult) string {
		var parts []string
		for _, n := range s.Nodes {
			parts = append(parts, fmt.Sprintf("%.2f s", n.CPUSeconds))
		}
		return fmt.Sprintf("%s = %.1f µs per span", strings.Join(parts, ", "), 1e6*s.cpuTotal()/float64(hops*s.Requests))
	})
	row("peak RSS per node, VmHWM (n1, n2, n3)", func(s *sideResult) string {
		var parts []string
		for _, n := range s.Nodes {
			parts = append(parts, mib(n.HWMKiB))
		}
		return strings.Join(parts, ", ")
	})
	row("OTLP requests refused by the side", func(s *sideResult) string {
		if s.Refused == 0 {
			return "0"
		}
		return fmt.Sprintf("%d (last: %s)", s.Refused, s.LastRefusal)
	})
	if res.Peer != nil {
		var early float64
		for _, n := range res.Peer.Nodes {
			early += n.DroppedTooEarly
		}
		fmt.Fprintf(&b, "\ntail_sampling traces dropped too early (num_traces full), all nodes: %.0f.\n", early)
	}

	if w := res.Weft; w != nil {
		fmt.Fprintf(&b, "\n### Pin network cost (weft)\n\n")
		fmt.Fprintf(&b, "`weft_pins.gossip_bytes` (pin payload before memberlist's framing and encryption, sent + received), increase over %.1f s (workload and drain) at %.1f error traces/s:\n\n",
			w.GossipWindowSeconds, float64(w.ErrorTraces)/w.SendSeconds)
		fmt.Fprintf(&b, "| node | sent B | received B | (sent+received)/s | pins set here | pins received | late pins | buffer_full drops | refused |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, n := range w.Nodes {
			fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f B/s | %.0f | %.0f | %.0f | %.0f | %.0f |\n", n.Node, n.GossipSent, n.GossipReceived,
				(n.GossipSent+n.GossipReceived)/w.GossipWindowSeconds, n.PinsLocal, n.PinsReceived, n.LatePins, n.BufferFull, n.Refused)
		}
		perPin := 0.0
		if w.ErrorTraces > 0 {
			perPin = w.gossipPerNodePerSecond() * w.GossipWindowSeconds / float64(w.ErrorTraces)
		}
		fmt.Fprintf(&b, "\nMean per node: **%.0f B/s** (sent + received), %.0f B per error trace per node. Spans kept by the agents (evidence_sampling.spans_kept): %.0f; at the sink: %d.\n",
			w.gossipPerNodePerSecond(), perPin, w.WeftKeptSpans, w.SinkSpans)
	}

	if res.MemWith != nil || res.MemWithout != nil {
		fmt.Fprintf(&b, "\n### Decision buffer memory (weft, one agent)\n\n")
		fmt.Fprintf(&b, "The workload's spans (all three hops into one agent, 1 %% error traces), target %d spans/s for %s, OTLP/HTTP out to the sink; evidence_sampling 10 %%, decision_wait %s; buffer gauges sampled each second after decision_wait + 2 s.\n\n",
			o.MemRate, o.MemDuration, o.DecisionWait)
		fmt.Fprintf(&b, "| agent | spans sent (rate) | buffered spans mean / max | buffered bytes mean / max | bytes/span | RSS ready | RSS max sampled | VmHWM |\n|---|---|---|---|---|---|---|---|\n")
		for _, m := range []*memResult{res.MemWith, res.MemWithout} {
			if m == nil {
				continue
			}
			label := "without evidence_sampling"
			buf, bytes, per := "—", "—", "—"
			if m.Sampling {
				label = "with evidence_sampling"
				if m.Samples > 0 {
					ms, mb := m.BufferedSpansSum/float64(m.Samples), m.BufferedBytesSum/float64(m.Samples)
					buf = fmt.Sprintf("%.0f / %.0f", ms, m.BufferedSpansMax)
					bytes = fmt.Sprintf("%.1f / %.1f MiB", mb/(1<<20), m.BufferedBytesMax/(1<<20))
					if ms > 0 {
						per = fmt.Sprintf("%.0f", mb/ms)
					}
				}
			}
			fmt.Fprintf(&b, "| %s | %d (%.0f/s) | %s | %s | %s | %s | %s | %s |\n", label, m.SpansSent, float64(m.SpansSent)/m.SendSeconds,
				buf, bytes, per, mib(m.ReadyRSSKiB), mib(m.MaxRSSKiB), mib(m.HWMKiB))
		}
		if res.MemWith != nil && res.MemWithout != nil {
			fmt.Fprintf(&b, "\nVmHWM with − without: **%s**; max sampled RSS with − without: %s.\n",
				mib(res.MemWith.HWMKiB-res.MemWithout.HWMKiB), mib(res.MemWith.MaxRSSKiB-res.MemWithout.MaxRSSKiB))
		}
	}
	fmt.Fprintf(&b, "\nBuilds: weft %.1f s, tailpeer %.1f s (0 when prebuilt binaries were given). Load average at the end: %s.\n",
		res.BuildWeft.Seconds(), res.BuildPeer.Seconds(), res.LoadAverage)
	return b.String()
}
