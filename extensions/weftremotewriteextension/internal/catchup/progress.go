package catchup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// File, in wal::directory, records for each endpoint a mark: every
// sample of the WAL stamped at or before it was sent to the endpoint (or
// refused by it). The next start's catch-up sends what is stamped after.
const File = "remote_write_progress.json"

type fileJSON struct {
	// Marks are milliseconds since the epoch, by endpoint name.
	Marks map[string]int64 `json:"marks"`
}

// Progress holds the marks. Safe for concurrent use.
type Progress struct {
	path    string
	Damaged error // why the file could not be read (then every mark is "nothing sent")

	mu    sync.Mutex
	marks map[string]int64
	dirty bool
}

// NothingSent is the mark of an endpoint that the WAL holds nothing of
// that is known to be sent.
const NothingSent = math.MinInt64

// LoadProgress reads the marks of names from dir. Without a file (first
// start, or a crash before the first record) every mark is NothingSent:
// whatever the WAL holds is sent. An endpoint the file does not know
// (added since) gets now: the WAL's older data is not sent to it, as
// Prometheus does not either.
func LoadProgress(dir string, names []string, now time.Time) (*Progress, error) {
	p := &Progress{path: filepath.Join(dir, File), marks: make(map[string]int64, len(names)), dirty: true}
	raw, err := os.ReadFile(p.path)
	var pj fileJSON
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read %q: %w", p.path, err)
	default:
		if err := json.Unmarshal(raw, &pj); err != nil || pj.Marks == nil {
			if err == nil {
				err = errors.New("no marks")
			}
			p.Damaged = fmt.Errorf("%q is damaged, sending all the WAL holds again: %w", p.path, err)
			pj.Marks = nil
		}
	}
	for _, n := range names {
		switch m, ok := pj.Marks[n]; {
		case pj.Marks == nil:
			p.marks[n] = NothingSent
		case ok:
			p.marks[n] = m
		default:
			p.marks[n] = now.UnixMilli()
		}
	}
	return p, nil
}

// Mark returns the mark of endpoint name.
func (p *Progress) Mark(name string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.marks[name]
}

// Advance moves the mark of name to t if t is later.
func (p *Progress) Advance(name string, t int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t > p.marks[name] {
		p.marks[name] = t
		p.dirty = true
	}
}

// Save writes the marks if they changed since the last save: a new file,
// synced, renamed over the old one.
func (p *Progress) Save() error {
	p.mu.Lock()
	if !p.dirty {
		p.mu.Unlock()
		return nil
	}
	raw, err := json.Marshal(fileJSON{Marks: p.marks})
	p.dirty = false
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode progress: %w", err)
	}
	if err := writeFileSync(p.path, raw); err != nil {
		p.mu.Lock()
		p.dirty = true
		p.mu.Unlock()
		return fmt.Errorf("write %q: %w", p.path, err)
	}
	return nil
}

func writeFileSync(path string, raw []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(raw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
