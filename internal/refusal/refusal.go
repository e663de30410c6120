// Package refusal counts samples a component refuses on purpose (too far
// in the future, over a limit) by reason and by source, and decides when a
// refusal is worth a log line: the first one of a (reason, source) pair,
// then at most one per LogInterval. weft_store and the clock_guard
// processor share it, so a source is named the same way everywhere.
package refusal

import (
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// LogInterval is the least time between two log lines about the refusals
// of one source for one reason.
const LogInterval = time.Minute

// MaxKeys bounds the (reason, source) pairs counted apart; refusals of
// further sources are counted under OverflowSource, so a node full of
// short-lived pods cannot grow the counts without bound.
const (
	MaxKeys        = 1000
	OverflowSource = "other"
)

// Source names where a batch of samples came from: the scrape target
// (pod_scrape sets the resource attributes job and instance) or the OTLP
// sender (service.namespace/service.name and service.instance.id, else its
// pod).
type Source struct {
	// ID is "job@instance", "job", "@instance" or "unknown".
	ID, Job, Instance string
}

// SourceOf names the source of a resource.
func SourceOf(attrs pcommon.Map) Source {
	job := attrString(attrs, "job")
	if job == "" {
		job = attrString(attrs, "service.name")
		if ns := attrString(attrs, "service.namespace"); ns != "" && job != "" {
			job = ns + "/" + job
		}
	}
	inst := attrString(attrs, "instance")
	if inst == "" {
		inst = attrString(attrs, "service.instance.id")
	}
	if inst == "" {
		if pod := attrString(attrs, "k8s.pod.name"); pod != "" {
			inst = attrString(attrs, "k8s.namespace.name") + "/" + pod
		}
	}
	id := job
	switch {
	case id == "" && inst == "":
		id = "unknown"
	case inst != "":
		id += "@" + inst
	}
	return Source{ID: id, Job: job, Instance: inst}
}

func attrString(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}

// Counts counts refusals by reason and source. The zero value is not
// usable; call New.
type Counts struct {
	mu     sync.Mutex
	counts map[key]*count
}

type key struct{ reason, source string }

type count struct {
	n       int64
	sinceLn int64     // refused since the last log line
	lastLn  time.Time // zero: no line yet
}

// New returns empty counts.
func New() *Counts { return &Counts{counts: make(map[key]*count)} }

// Note counts n samples of source refused for reason at now. It reports
// whether a log line is due (the first refusal, then at most one per
// LogInterval) and how many were refused since the previous line.
func (c *Counts) Note(now time.Time, reason, source string, n int64) (logNow bool, refused int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key{reason, source}
	e, ok := c.counts[k]
	if !ok {
		if len(c.counts) >= MaxKeys {
			k.source = OverflowSource
			e = c.counts[k]
		}
		if e == nil {
			e = &count{}
			c.counts[k] = e
		}
	}
	e.n += n
	e.sinceLn += n
	if !e.lastLn.IsZero() && now.Sub(e.lastLn) < LogInterval {
		return false, 0
	}
	refused, e.sinceLn, e.lastLn = e.sinceLn, 0, now
	return true, refused
}

// Snapshot returns the counts by reason, then source.
func (c *Counts) Snapshot() map[string]map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]map[string]int64)
	for k, e := range c.counts {
		if out[k.reason] == nil {
			out[k.reason] = make(map[string]int64)
		}
		out[k.reason][k.source] = e.n
	}
	return out
}

// Total returns the refusals for reason over all sources.
func (c *Counts) Total(reason string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for k, e := range c.counts {
		if k.reason == reason {
			n += e.n
		}
	}
	return n
}
