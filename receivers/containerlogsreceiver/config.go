package containerlogsreceiver

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"go.opentelemetry.io/collector/component"
)

// Config is the configuration of the container_logs receiver.
type Config struct {
	// Include lists glob patterns (filepath.Match syntax) of the log files to
	// read. Default: the kubelet's /var/log/pods/*/*/*.log.
	Include []string `mapstructure:"include"`
	// Exclude lists glob patterns of files to skip even when Include matches.
	Exclude []string `mapstructure:"exclude"`
	// StartAt is where a file found at the first start of the agent (with no
	// checkpoint from an earlier run) is read from: "beginning" or "end".
	// Files that appear later are always read from their beginning.
	StartAt string `mapstructure:"start_at"`
	// PollInterval is how often each open file is checked for new data,
	// truncation and rotation when no change notification (inotify) covers
	// it, and while a file is being rotated away or holds a partial message.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// FallbackPollInterval is how often an idle file is checked although no
	// change notification woke it, when its directory is watched with
	// inotify: the safety net for a missed notification. At least
	// poll_interval, at most 1m.
	FallbackPollInterval time.Duration `mapstructure:"fallback_poll_interval"`
	// MinReadInterval is the shortest time between two reads of a file woken
	// by change notifications: notifications that arrive sooner wait for it
	// and are served by one read. A container that writes its log in many
	// small pieces is then read in fewer, larger reads and batches, at the
	// cost of up to this much delay. A file whose last read found lines is
	// read again on the next tick of a min_read_interval grid on the wall
	// clock at least half an interval away, without waiting for a
	// notification: every file being written is then read on the same
	// tick, in one wake of the agent. 0 reads at every notification; above
	// poll_interval, poll_interval applies (a notified file is never read
	// less often than a polled one). At most 1s.
	MinReadInterval time.Duration `mapstructure:"min_read_interval"`
	// RescanInterval is how often the include patterns are globbed again
	// for new files (at most 1s, so that a new file is found within 1s).
	RescanInterval time.Duration `mapstructure:"rescan_interval"`
	// FullRescanInterval is how often every directory the include patterns
	// pass through is listed again even though its mtime did not change. A
	// rescan reuses a directory's listing while its mtime is unchanged and
	// was taken well (2s) after that mtime; this relist is the safety net for
	// clocks that check cannot see (a remote filesystem's, a clock stepped
	// back). At least rescan_interval, at most 1h.
	FullRescanInterval time.Duration `mapstructure:"full_rescan_interval"`
	// MaxLogSize is the largest message, in bytes, after partial lines are
	// joined; the rest of a longer message is dropped, flagged and counted.
	MaxLogSize int `mapstructure:"max_log_size"`
	// FlushTimeout is how long a partial message (a CRI P line without its F,
	// or an unfinished multi-line message) waits for its end before it is
	// emitted on its own and flagged incomplete.
	FlushTimeout time.Duration `mapstructure:"flush_timeout"`
	// MaxBatchRecords is the most records sent to the next consumer in one
	// call. A file's checkpoint advances once per acknowledged batch, so this
	// also bounds the duplicates after a crash.
	MaxBatchRecords int `mapstructure:"max_batch_records"`
	// MaxBatchBytes bounds the message bytes held in one file's batch; with
	// max_log_size it bounds the memory in flight per file.
	MaxBatchBytes int `mapstructure:"max_batch_bytes"`
	// MaxInFlightBytes bounds the message bytes held in unacknowledged
	// batches across all files. A file whose next record would pass it sends
	// what it holds first (and waits while the next consumer refuses), so
	// the memory in flight stays near this bound however many files there are.
	MaxInFlightBytes int `mapstructure:"max_in_flight_bytes"`
	// Storage is the ID of a storage extension (e.g. file_storage) that keeps
	// the checkpoints. When empty, CheckpointDirectory is used.
	Storage *component.ID `mapstructure:"storage"`
	// CheckpointDirectory, used when Storage is empty, is a directory where
	// the checkpoints are kept in one file written atomically (temp file,
	// fsync, rename). When both are empty the checkpoints live in memory only
	// and a restart begins every existing file at start_at.
	CheckpointDirectory string `mapstructure:"checkpoint_directory"`
	// Multiline joins consecutive records of a stream into one message.
	Multiline MultilineConfig `mapstructure:"multiline"`
}

// MultilineConfig configures the joining of multi-line messages such as
// stack traces.
type MultilineConfig struct {
	// LineStartPattern is a regular expression (RE2) that matches the first
	// line of a message; lines that do not match are appended to the message
	// before them. Empty disables joining.
	LineStartPattern string `mapstructure:"line_start_pattern"`
}

const (
	startAtBeginning = "beginning"
	startAtEnd       = "end"
)

// Validate checks the configuration; every error names its YAML key.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Include) == 0 {
		errs = append(errs, errors.New("include: at least one glob pattern is required"))
	}
	for _, p := range append(append([]string{}, c.Include...), c.Exclude...) {
		if _, err := filepath.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("include/exclude: bad glob pattern %q: %w", p, err))
		}
	}
	if c.StartAt != startAtBeginning && c.StartAt != startAtEnd {
		errs = append(errs, fmt.Errorf("start_at: %q is not one of beginning, end", c.StartAt))
	}
	if c.PollInterval <= 0 || c.PollInterval > time.Second {
		errs = append(errs, fmt.Errorf("poll_interval: %s must be > 0 and at most 1s", c.PollInterval))
	}
	if c.FallbackPollInterval < c.PollInterval || c.FallbackPollInterval <= 0 || c.FallbackPollInterval > time.Minute {
		errs = append(errs, fmt.Errorf("fallback_poll_interval: %s must be at least poll_interval (%s) and at most 1m", c.FallbackPollInterval, c.PollInterval))
	}
	if c.MinReadInterval < 0 || c.MinReadInterval > time.Second {
		errs = append(errs, fmt.Errorf("min_read_interval: %s must be between 0 and 1s", c.MinReadInterval))
	}
	if c.RescanInterval <= 0 || c.RescanInterval > time.Second {
		errs = append(errs, fmt.Errorf("rescan_interval: %s must be > 0 and at most 1s (new files are found within 1s)", c.RescanInterval))
	}
	if c.FullRescanInterval <= 0 || c.FullRescanInterval < c.RescanInterval || c.FullRescanInterval > time.Hour {
		errs = append(errs, fmt.Errorf("full_rescan_interval: %s must be > 0, at least rescan_interval (%s) and at most 1h", c.FullRescanInterval, c.RescanInterval))
	}
	if c.MaxLogSize < 1024 {
		errs = append(errs, fmt.Errorf("max_log_size: %d must be at least 1024 bytes", c.MaxLogSize))
	}
	if c.FlushTimeout <= 0 {
		errs = append(errs, fmt.Errorf("flush_timeout: %s must be > 0", c.FlushTimeout))
	}
	if c.MaxBatchRecords < 1 {
		errs = append(errs, fmt.Errorf("max_batch_records: %d must be at least 1", c.MaxBatchRecords))
	}
	if c.MaxBatchBytes < 1024 {
		errs = append(errs, fmt.Errorf("max_batch_bytes: %d must be at least 1024", c.MaxBatchBytes))
	}
	if c.MaxInFlightBytes < c.MaxBatchBytes {
		errs = append(errs, fmt.Errorf("max_in_flight_bytes: %d must be at least max_batch_bytes (%d)", c.MaxInFlightBytes, c.MaxBatchBytes))
	}
	if c.Multiline.LineStartPattern != "" {
		if _, err := regexp.Compile(c.Multiline.LineStartPattern); err != nil {
			errs = append(errs, fmt.Errorf("multiline.line_start_pattern: %w", err))
		}
	}
	return errors.Join(errs...)
}
