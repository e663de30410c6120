// Package walsalvage opens weft_store's TSDB so that a damaged metrics
// write-ahead log never stops the store: before tsdb.Open replays the WAL,
// every file the replay will read is checked with the replay's own reader,
// and a damaged one is set aside and replaced by its records before the
// damage. What could not be read is returned as losses.
package walsalvage

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/fileutil"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
)

// Reasons of a storage loss at start.
const (
	// CheckpointCorrupt: a checkpoint segment had a damaged or torn
	// record: the records before it were kept, the file was set aside.
	CheckpointCorrupt = "checkpoint_corrupt"
	// SegmentCorrupt: a WAL segment had a damaged or torn record (a torn
	// last record after a crash included): the records before it were
	// kept, the file was set aside, the later segments are replayed as
	// usual. Also: what the TSDB's own repair cut or deleted (see
	// repairLosses).
	SegmentCorrupt = "segment_corrupt"
	// WALUnreadable: tsdb.Open failed replaying the WAL even so (a
	// checkpoint record that passes its checksum but does not decode): the
	// whole WAL was set aside and the store started empty.
	WALUnreadable = "wal_unreadable"
)

// Reasons are the reasons of a loss, in a stable order.
var Reasons = []string{CheckpointCorrupt, SegmentCorrupt, WALUnreadable}

// Loss is metrics data a start could not read, as weftstoreextension.StorageLoss
// (its public form, converted) describes it.
type Loss struct {
	Reason, File string
	Bytes        int64
	MovedTo, Err string
}

// walPageSize is the wlog page size (its pageSize, unexported): records
// never straddle a page boundary without a fragment header, and a page is
// padded with zeros to its end.
const walPageSize = 32 << 10

// Open opens the TSDB in dir. tsdb.Open treats a damaged WAL by
// deleting every segment after the damaged one, and a damaged checkpoint
// by deleting all segments and failing. So before it runs, every file the
// replay will read (the last checkpoint's segments, then the WAL segments
// after it) is read with the replay's own reader; a damaged one is moved
// into damaged-<time>/ and replaced by a copy of its records before the
// damage. What tsdb.Open's own repair still cuts (a record that passes its
// checksum but does not decode) is counted after it. Should the open fail
// on the WAL all the same, the WAL is moved aside as a whole and the store
// starts empty. Losses are returned; only errors that leave no store are
// returned as errors.
func Open(dir string, opts *tsdb.Options, logger *zap.Logger, now time.Time) (*tsdb.DB, []Loss, error) {
	if opts.WALSegmentSize < 0 {
		db, err := tsdb.Open(dir, slogFor(logger), nil, opts, nil)
		return db, nil, err
	}
	// Hold the TSDB's directory lock while checking: a WAL another
	// process is writing must not be taken for a torn one.
	lockPath := filepath.Join(dir, "lock")
	_, statErr := os.Stat(lockPath)
	lock, _, err := fileutil.Flock(lockPath)
	if err != nil {
		db, err := tsdb.Open(dir, slogFor(logger), nil, opts, nil) // reports the lock
		return db, nil, err
	}
	aside := &damagedDir{root: dir, now: now}
	walDir := filepath.Join(dir, "wal")
	losses, files, err := salvageWAL(walDir, aside)
	if err != nil {
		// The check could not run to the end (permissions, I/O): let the
		// open decide, and fall back below if it fails.
		logger.Warn("weft_store: checking the metrics WAL", zap.Error(err))
	}
	if err := lock.Release(); err != nil {
		return nil, losses, fmt.Errorf("release lock: %w", err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// As tsdb.Open found it: a lock file left behind means an
		// unclean shutdown to it.
		_ = os.Remove(lockPath)
	}
	walBytes := dirBytes(walDir)
	db, err := tsdb.Open(dir, slogFor(logger), nil, opts, nil)
	if err == nil {
		return db, append(losses, repairLosses(dir, files)...), nil
	}
	if !walOpenError(err) {
		return nil, losses, err
	}
	moved, merr := aside.move(walDir)
	if merr != nil {
		return nil, losses, errors.Join(err, merr)
	}
	// The head's memory-mapped chunks are only valid with their WAL.
	if _, serr := os.Stat(filepath.Join(dir, "chunks_head")); serr == nil {
		if _, merr := aside.move(filepath.Join(dir, "chunks_head")); merr != nil {
			return nil, losses, errors.Join(err, merr)
		}
	}
	losses = append(losses, Loss{Reason: WALUnreadable, File: "wal", Bytes: walBytes, MovedTo: moved, Err: err.Error()})
	db, err2 := tsdb.Open(dir, slogFor(logger), nil, opts, nil)
	if err2 != nil {
		return nil, losses, fmt.Errorf("after moving the unreadable WAL aside (%w): %w", err, err2)
	}
	return db, losses, nil
}

// walOpenError reports whether tsdb.Open failed replaying the WAL (its
// wording in v0.315.1, pinned by weftstore's TestWALUnreadable) rather
// than on the directory itself (lock, permissions), where moving data
// would be wrong.
func walOpenError(err error) bool {
	var cerr *wlog.CorruptionErr
	return errors.As(err, &cerr) || strings.Contains(err.Error(), "repair corrupted WAL")
}

// walFile is a file the replay reads, as the salvage left it.
type walFile struct {
	path   string
	reason string // loss reason if it is damaged
	info   os.FileInfo
}

// salvageWAL checks the files the WAL replay reads and salvages the
// damaged ones (see Open). It returns the losses and the files.
func salvageWAL(walDir string, aside *damagedDir) ([]Loss, []walFile, error) {
	if _, err := os.Stat(walDir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	var (
		losses []Loss
		files  []walFile
	)
	check := func(fn, reason string) error {
		l, info, err := salvageSegment(fn, reason, aside)
		if err != nil {
			return err
		}
		if l != nil {
			losses = append(losses, *l)
		}
		files = append(files, walFile{path: fn, reason: reason, info: info})
		return nil
	}
	startFrom := 0
	cpDir, cpIdx, err := wlog.LastCheckpoint(walDir)
	switch {
	case err == nil:
		first, last, err := wlog.Segments(cpDir)
		if err != nil {
			return nil, nil, fmt.Errorf("list checkpoint %q: %w", cpDir, err)
		}
		for i := first; i >= 0 && i <= last; i++ {
			if err := check(wlog.SegmentName(cpDir, i), CheckpointCorrupt); err != nil {
				return losses, files, err
			}
		}
		startFrom = cpIdx + 1
	case !errors.Is(err, record.ErrNotFound):
		return nil, nil, fmt.Errorf("find last checkpoint: %w", err)
	}
	first, last, err := wlog.Segments(walDir)
	if err != nil {
		return losses, files, fmt.Errorf("list WAL segments: %w", err)
	}
	for i := max(first, startFrom); first >= 0 && i <= last; i++ {
		if err := check(wlog.SegmentName(walDir, i), SegmentCorrupt); err != nil {
			return losses, files, err
		}
	}
	return losses, files, nil
}

// salvageSegment reads the segment file fn record by record. If a record
// is damaged or torn, the file is moved aside and replaced by its bytes
// before that record, padded with zeros to the end of the page (a valid
// segment the replay reads to the end). It returns the loss (nil if none)
// and the file as it is now.
func salvageSegment(fn, reason string, aside *damagedDir) (*Loss, os.FileInfo, error) {
	good, info, rerr, err := readSegment(fn)
	if err != nil || rerr == nil {
		return nil, info, err
	}
	moved, err := aside.move(fn)
	if err != nil {
		return nil, nil, err
	}
	if err := writePrefix(filepath.Join(aside.root, moved), fn, good); err != nil {
		return nil, nil, err
	}
	now, err := os.Stat(fn)
	if err != nil {
		return nil, nil, err
	}
	rel, _ := filepath.Rel(aside.root, fn)
	return &Loss{Reason: reason, File: rel, Bytes: info.Size() - good, MovedTo: moved, Err: rerr.Error()}, now, nil
}

// repairLosses counts what tsdb.Open's own WAL repair cut from the files
// the salvage checked: a record that passes its checksum but does not
// decode makes it rewrite that segment up to the record (a new file) and
// delete the later ones.
func repairLosses(root string, files []walFile) []Loss {
	var losses []Loss
	for _, f := range files {
		var lost int64
		info, err := os.Stat(f.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			lost = f.info.Size()
		case err != nil, os.SameFile(f.info, info):
			continue
		default:
			good, _, rerr, err := readSegment(f.path)
			if err != nil || rerr != nil {
				continue
			}
			lost = f.info.Size() - good
		}
		if lost <= 0 {
			continue
		}
		rel, _ := filepath.Rel(root, f.path)
		losses = append(losses, Loss{Reason: f.reason, File: rel, Bytes: lost,
			Err: "cut or deleted by the TSDB's WAL repair (a record that passed its checksum but did not decode)"})
	}
	return losses
}

// readSegment returns the offset after the last good record of the segment
// file fn, its file info, and the reader's error (nil: it reads cleanly).
func readSegment(fn string) (good int64, info os.FileInfo, readErr, err error) {
	f, err := os.Open(fn)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("open segment %q: %w", fn, err)
	}
	defer f.Close()
	info, err = f.Stat()
	if err != nil {
		return 0, nil, nil, fmt.Errorf("stat segment %q: %w", fn, err)
	}
	r := wlog.NewReader(bufio.NewReaderSize(f, walPageSize))
	for r.Next() {
		good = r.Offset()
	}
	return good, info, r.Err(), nil
}

// writePrefix writes the first n bytes of src to dst, padded with zeros to
// a page boundary, through a temporary file.
func writePrefix(src, dst string, n int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".salvage" // not a segment name: the WAL ignores it
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	_, err = io.CopyN(out, in, n)
	if pad := (walPageSize - n%walPageSize) % walPageSize; err == nil && pad > 0 {
		_, err = out.Write(make([]byte, pad))
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write salvaged segment %q: %w", dst, err)
	}
	return nil
}

// damagedDir is the damaged-<time> folder of one start, created on first
// use.
type damagedDir struct {
	root string // the store directory
	now  time.Time
	name string // relative to root; "" until created
}

// move moves path (inside root) into the folder, keeping its path
// relative to root, and returns its new path relative to root.
func (d *damagedDir) move(path string) (string, error) {
	if d.name == "" {
		dir, err := os.MkdirTemp(d.root, "damaged-"+d.now.UTC().Format("20060102T150405Z")+"-")
		if err != nil {
			return "", fmt.Errorf("create folder for damaged files: %w", err)
		}
		d.name = filepath.Base(dir)
	}
	rel, err := filepath.Rel(d.root, path)
	if err != nil {
		return "", err
	}
	to := filepath.Join(d.name, rel)
	if err := os.MkdirAll(filepath.Join(d.root, filepath.Dir(to)), 0o750); err != nil {
		return "", err
	}
	if err := os.Rename(path, filepath.Join(d.root, to)); err != nil {
		return "", fmt.Errorf("move damaged %q aside: %w", rel, err)
	}
	return to, nil
}

// dirBytes returns the bytes of the regular files under dir (0 if absent).
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// slogFor bridges the TSDB's slog output to the component's zap logger.
func slogFor(l *zap.Logger) *slog.Logger { return slog.New(zapslog.NewHandler(l.Core())) }
