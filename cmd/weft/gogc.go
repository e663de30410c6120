package main

import "runtime/debug"

// defaultGCPercent is the garbage collector's target when the environment
// sets no GOGC: 75, as Prometheus has shipped since 2.53, rather than Go's
// 100. Most of the agent's heap is long-lived (the TSDB head's series and
// chunks, exemplars, the span and log indexes), and at 100 the garbage of
// the scrapes and batches between two collections may grow to as much
// again before the next one: the process's RSS is that high-water mark.
// At 75, store-memory's RSS slope (bench/compare, 10k → 100k series) was
// 1,906–1,918 B per series in three runs against 1,748–2,094 B at 100,
// and scrape-agent's CPU per sample 6.40–6.65 µs against 6.0–6.8 µs
// (bench/RESULTS.md, issue #21 session 13).
const defaultGCPercent = 75

// setGCPercent sets the garbage collector's target to defaultGCPercent
// unless the environment sets GOGC (any value, "off" included, is the
// operator's choice; the runtime has read it already), and says whether it
// did. lookup is os.LookupEnv.
func setGCPercent(lookup func(string) (string, bool)) bool {
	if _, ok := lookup("GOGC"); ok {
		return false
	}
	debug.SetGCPercent(defaultGCPercent)
	return true
}
