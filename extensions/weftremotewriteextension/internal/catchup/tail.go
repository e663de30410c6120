package catchup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"

	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
)

// NewTail returns a Tail of the WAL in dir (the agent's wal/ folder).
func NewTail(dir string, logger *slog.Logger) *Tail {
	return &Tail{dir: dir, logger: logger, metrics: wlog.NewLiveReaderMetrics(nil)}
}

// Tail reads the agent WAL from its last checkpoint on, following the
// segment being written: read returns at the end of what is written and
// the next read goes on from there.
type Tail struct {
	dir     string
	logger  *slog.Logger
	metrics *wlog.LiveReaderMetrics // not registered: the queues' readers are

	started bool
	seg     int // segment being read
	f       *wlog.Segment
	lr      *wlog.LiveReader
}

// Close closes the segment being read; the next Read starts over from
// the last checkpoint.
func (w *Tail) Close() {
	if w.f != nil {
		_ = w.f.Close()
	}
	w.f, w.lr, w.started = nil, nil, false
}

// Segment is the number of the segment the records Read passes come from
// (checkpoint records: the segment the checkpoint ends before).
func (w *Tail) Segment() int { return w.seg }

// Read passes every record written since the last call to fn, from the
// segments numbered below below (math.MaxInt: all). caughtUp is true when
// it stopped at the end of the newest segment or at segment below.
func (w *Tail) Read(below int, fn func([]byte) error) (caughtUp bool, err error) {
	if !w.started {
		first, _, err := wlog.Segments(w.dir)
		if err != nil {
			return false, fmt.Errorf("list WAL segments: %w", err)
		}
		w.seg = first
		cp, idx, err := wlog.LastCheckpoint(w.dir)
		switch {
		case errors.Is(err, record.ErrNotFound):
		case err != nil:
			return false, fmt.Errorf("find WAL checkpoint: %w", err)
		default:
			if err := readCheckpoint(cp, fn); err != nil {
				return false, err
			}
			w.seg = max(w.seg, idx+1)
		}
		w.started = true
	}
	for {
		_, last, err := wlog.Segments(w.dir)
		if err != nil {
			return false, fmt.Errorf("list WAL segments: %w", err)
		}
		if last < 0 || w.seg > last || w.seg >= below {
			return true, nil
		}
		if w.seg < 0 {
			w.seg = 0
		}
		if w.lr == nil {
			f, err := wlog.OpenReadSegment(wlog.SegmentName(w.dir, w.seg))
			if errors.Is(err, fs.ErrNotExist) && w.seg < last {
				w.seg++ // removed by a checkpoint since listed
				continue
			}
			if err != nil {
				return false, fmt.Errorf("open WAL segment %d: %w", w.seg, err)
			}
			w.f, w.lr = f, wlog.NewLiveReader(w.logger, w.metrics, f)
		}
		if err := w.drain(fn); err != nil {
			return false, err
		}
		if w.seg >= last {
			// Re-list: a segment started since the listing means this one
			// is complete; read what was flushed to it before that.
			if _, last2, err := wlog.Segments(w.dir); err != nil || last2 <= w.seg {
				return err == nil, err
			}
			if err := w.drain(fn); err != nil {
				return false, err
			}
		}
		_ = w.f.Close()
		w.f, w.lr = nil, nil
		w.seg++
	}
}

// drain reads the current segment to its end as written so far.
func (w *Tail) drain(fn func([]byte) error) error {
	for w.lr.Next() {
		if err := fn(w.lr.Record()); err != nil {
			return err
		}
	}
	if err := w.lr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read WAL segment %d: %w", w.seg, err)
	}
	return nil
}

func readCheckpoint(dir string, fn func([]byte) error) error {
	rc, err := wlog.NewSegmentsReader(dir)
	if err != nil {
		return fmt.Errorf("open WAL checkpoint %q: %w", dir, err)
	}
	defer rc.Close()
	r := wlog.NewReader(rc)
	for r.Next() {
		if err := fn(r.Record()); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("read WAL checkpoint %q: %w", dir, err)
	}
	return nil
}
