package weftstoreextension

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/weftobs/weft/extensions/weftpinsextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/internal/exemplars"
)

// Config is the configuration of the weft_store extension.
type Config struct {
	// Directory holds the metrics write-ahead log. Empty keeps metrics in
	// memory only (no WAL; the TSDB head still needs a scratch directory for
	// its memory-mapped chunks, created in os.TempDir and removed at shutdown).
	Directory string `mapstructure:"directory"`
	// MetricsRetention is how long metric samples are kept (default 30m).
	MetricsRetention time.Duration `mapstructure:"metrics_retention"`
	// MaxExemplars is how many exemplars are kept, the newest, whatever
	// their series, as Prometheus's max_exemplars (default 100000). They
	// take 72 bytes each, plus their labels when these are not just a
	// trace_id and a span_id in lowercase hex.
	MaxExemplars int64 `mapstructure:"max_exemplars"`
	// TracesMaxBytes bounds the memory of the recent-spans index; the oldest
	// spans are evicted first (default 64 MiB).
	TracesMaxBytes int64 `mapstructure:"traces_max_bytes"`
	// LogsMaxBytes bounds the memory of the recent-logs index; the oldest
	// records are evicted first (default 64 MiB).
	LogsMaxBytes int64 `mapstructure:"logs_max_bytes"`
	// Pins names the weft_pins extension whose pinned traces are exempt
	// from eviction: "" (default) the first weft_pins extension configured,
	// by ID (none configured: no exemption); "none" turns the exemption
	// off; an ID names one (not configured: Start fails).
	Pins string `mapstructure:"pins"`
	// PinnedTracesMaxBytes bounds the spans of pinned traces kept after
	// traces_max_bytes evicted them, until their pin ends; past it the
	// spans of the trace whose pin ends soonest go first (default 16 MiB;
	// 0 = no exemption for spans).
	PinnedTracesMaxBytes int64 `mapstructure:"pinned_traces_max_bytes"`
	// PinnedLogsMaxBytes is the same budget for log records (default
	// 16 MiB; 0 = no exemption for log records).
	PinnedLogsMaxBytes int64 `mapstructure:"pinned_logs_max_bytes"`
	// AppendableWindow is how far behind the newest sample of the store a
	// sample may still be appended, as long as it is in order for its own
	// series (default 1h, the TSDB's own default; Prometheus's PromQL test
	// storage uses 12h). Older samples are rejected as out_of_bounds.
	AppendableWindow time.Duration `mapstructure:"appendable_window"`
	// StartTimestamps stores each sample's start timestamp (the start time
	// of a cumulative series, as OTLP carries it) in start-timestamp-capable
	// chunks, so rate() and increase() see counter resets that fall between
	// two samples. Writers pass it through Store.AppendableV2 (default false).
	StartTimestamps bool `mapstructure:"start_timestamps"`
	// MaxFutureSkew is how far ahead of the node's clock a sample (or
	// exemplar) may be stamped; later ones are refused before they reach
	// the TSDB and counted as too_far_in_future (default 10m).
	MaxFutureSkew time.Duration `mapstructure:"max_future_skew"`
	// MaxSeries caps the series in the TSDB head: samples of new series
	// beyond it are refused and counted as series_limit; samples of
	// existing series are still accepted (default 100000; 0 = unlimited).
	MaxSeries int64 `mapstructure:"max_series"`
	// NewSeriesPerCommit lets a writer of Prometheus samples (pod_scrape's
	// native path) commit a scrape that creates more new series than this
	// in several transactions of at most this many new series each (see
	// promappend.Splittable): the TSDB encodes a commit's new series into
	// one WAL record and keeps the buffer it grew for the largest one.
	// Queries may then see such a scrape's new series in parts for the
	// milliseconds between its commits; a scrape that creates fewer stays
	// one transaction (default 4096; 0 = every scrape one transaction).
	NewSeriesPerCommit int `mapstructure:"new_series_per_commit"`
	// Query configures the store's PromQL engine, the one engine of the
	// process: weft_query's API and weft_rules' evaluations share it
	// (Store.Engine).
	Query QueryConfig `mapstructure:"query"`
	// ExternalLabels name this node's data among all nodes' (e.g. cluster,
	// node), as Prometheus's global external_labels do. They are not stored
	// with the series: readers that serve the data beyond the node (the
	// StoreAPI, remote write) add them (Store.ExternalLabels). Names are
	// Prometheus label names not starting with "__"; values are not empty
	// (default none).
	ExternalLabels map[string]string `mapstructure:"external_labels"`
}

// QueryConfig configures the PromQL engine of the store.
type QueryConfig struct {
	// MaxSamples bounds the samples one query may hold in memory at once;
	// past it the query fails with the engine's "query processing would
	// load too many samples into memory" error (weft_query answers 422
	// "execution"). Sized to the DaemonSet's memory (default 1000000).
	MaxSamples int `mapstructure:"max_samples"`
	// Timeout bounds one query's evaluation whoever runs it: the longest
	// any reader may take; each reader's own context deadline (weft_query
	// timeout, a rule group's evaluation) is shorter (default 2m).
	Timeout time.Duration `mapstructure:"timeout"`
	// LookbackDelta is how far back an instant selector looks for a
	// series' latest sample (default 5m, Prometheus's).
	LookbackDelta time.Duration `mapstructure:"lookback_delta"`
}

// minIndexBytes is the smallest allowed traces_max_bytes / logs_max_bytes:
// below it a single large span or record would not fit.
const minIndexBytes = 64 << 10

// maxFutureSkewLimit is the largest allowed max_future_skew: a sample that
// far ahead blocks its own series (out_of_order) until the clock catches up.
const maxFutureSkewLimit = 24 * time.Hour

// Validate checks the configuration and names the offending keys.
func (c *Config) Validate() error {
	var errs []error
	if c.MetricsRetention < time.Minute {
		errs = append(errs, fmt.Errorf("metrics_retention: must be at least 1m, got %s", c.MetricsRetention))
	}
	if c.MaxExemplars < 1 || c.MaxExemplars > exemplars.MaxCapacity {
		errs = append(errs, fmt.Errorf("max_exemplars: must be from 1 to %d, got %d", exemplars.MaxCapacity, c.MaxExemplars))
	}
	if c.TracesMaxBytes < minIndexBytes {
		errs = append(errs, fmt.Errorf("traces_max_bytes: must be at least %d, got %d", minIndexBytes, c.TracesMaxBytes))
	}
	if c.LogsMaxBytes < minIndexBytes {
		errs = append(errs, fmt.Errorf("logs_max_bytes: must be at least %d, got %d", minIndexBytes, c.LogsMaxBytes))
	}
	if err := weftpinsextension.CheckKey(c.Pins); err != nil {
		errs = append(errs, err)
	}
	if c.PinnedTracesMaxBytes != 0 && c.PinnedTracesMaxBytes < minIndexBytes {
		errs = append(errs, fmt.Errorf("pinned_traces_max_bytes: must be 0 (no exemption) or at least %d, got %d", minIndexBytes, c.PinnedTracesMaxBytes))
	}
	if c.PinnedLogsMaxBytes != 0 && c.PinnedLogsMaxBytes < minIndexBytes {
		errs = append(errs, fmt.Errorf("pinned_logs_max_bytes: must be 0 (no exemption) or at least %d, got %d", minIndexBytes, c.PinnedLogsMaxBytes))
	}
	if c.AppendableWindow < time.Minute {
		errs = append(errs, fmt.Errorf("appendable_window: must be at least 1m, got %s", c.AppendableWindow))
	}
	if c.MaxFutureSkew < time.Second || c.MaxFutureSkew > maxFutureSkewLimit {
		errs = append(errs, fmt.Errorf("max_future_skew: must be between 1s and %s, got %s", maxFutureSkewLimit, c.MaxFutureSkew))
	}
	if c.MaxSeries < 0 {
		errs = append(errs, fmt.Errorf("max_series: must be 0 (unlimited) or more, got %d", c.MaxSeries))
	}
	if c.NewSeriesPerCommit < 0 {
		errs = append(errs, fmt.Errorf("new_series_per_commit: must be 0 (every scrape one transaction) or more, got %d", c.NewSeriesPerCommit))
	}
	if c.Query.MaxSamples < 1 {
		errs = append(errs, fmt.Errorf("query::max_samples: must be at least 1, got %d", c.Query.MaxSamples))
	}
	if c.Query.Timeout < time.Second {
		errs = append(errs, fmt.Errorf("query::timeout: must be at least 1s, got %s", c.Query.Timeout))
	}
	if c.Query.LookbackDelta < time.Second {
		errs = append(errs, fmt.Errorf("query::lookback_delta: must be at least 1s, got %s", c.Query.LookbackDelta))
	}
	errs = append(errs, validateExternalLabels(c.ExternalLabels)...)
	return errors.Join(errs...)
}

// validateExternalLabels checks external_labels, in name order so that
// the errors come out the same way every time.
func validateExternalLabels(ext map[string]string) []error {
	var errs []error
	names := make([]string, 0, len(ext))
	for n := range ext {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		switch {
		case !model.LegacyValidation.IsValidLabelName(n):
			errs = append(errs, fmt.Errorf("external_labels: %q is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)", n))
		case strings.HasPrefix(n, "__"):
			errs = append(errs, fmt.Errorf("external_labels: %q: names starting with \"__\" are reserved", n))
		case ext[n] == "":
			errs = append(errs, fmt.Errorf("external_labels::%s: value must not be empty", n))
		}
	}
	return errs
}
