package weftfilestorageextension

import (
	"errors"
	"fmt"
)

// Config is the configuration of the weft_file_storage extension.
type Config struct {
	// Directory holds one log file per client (component and signal). It
	// must exist unless create_directory is set. Required.
	Directory string `mapstructure:"directory"`

	// CreateDirectory creates the directory (and its parents, mode 0750) at
	// start when it does not exist. Default false.
	CreateDirectory bool `mapstructure:"create_directory"`

	// Fsync flushes every write to the disk before it returns, so that an
	// acknowledged write survives a power loss. Without it a write survives
	// a crash of the process (kill -9) but not of the machine. Default true.
	Fsync bool `mapstructure:"fsync"`

	// Preallocate is the step, in bytes, by which a log file is extended
	// with zeros ahead of the writes. Default 4 MiB.
	Preallocate int64 `mapstructure:"preallocate"`

	// Reserve is how many preallocated bytes only small writes (at most
	// 4 KiB: a persistent queue's bookkeeping, deletes) may use. When the
	// disk is full, new items are refused while items already stored can
	// still be read, delivered and removed. Default 1 MiB.
	Reserve int64 `mapstructure:"reserve"`

	// CompactionMinDead: a log file is rewritten with only its live values
	// once its dead bytes (overwritten or deleted values) exceed both this
	// and the live bytes. Default 8 MiB.
	CompactionMinDead int64 `mapstructure:"compaction_min_dead"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Directory == "" {
		errs = append(errs, errors.New("directory: required"))
	}
	if c.Preallocate < 0 {
		errs = append(errs, fmt.Errorf("preallocate: must be 0 or more bytes, got %d", c.Preallocate))
	}
	if c.Reserve < 0 {
		errs = append(errs, fmt.Errorf("reserve: must be 0 or more bytes, got %d", c.Reserve))
	}
	if c.CompactionMinDead < 0 {
		errs = append(errs, fmt.Errorf("compaction_min_dead: must be 0 or more bytes, got %d", c.CompactionMinDead))
	}
	return errors.Join(errs...)
}
