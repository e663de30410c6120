// Package weftremotewriteextension implements the weft_remote_write
// extension: Prometheus agent mode's write path inside the collector.
// Writers that speak Prometheus series (pod_scrape) append into
// Appendable; the samples go to a tsdb/agent write-ahead log in
// wal::directory, and storage/remote's queue managers (sharding, retries,
// exemplars, native histograms) tail that log and remote-write it to every
// endpoint. What a previous run left unsent, even after SIGKILL, is sent
// again by a catch-up reader before an endpoint's queue starts (see
// README: restarts). The catch-up's parts (WAL reader, sender, progress
// file) live in internal/catchup.
package weftremotewriteextension
