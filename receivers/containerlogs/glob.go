package containerlogs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// racyMargin is how long after a directory's mtime a listing must have been
// taken before it may be reused while the mtime stays the same. Timestamps
// on files come from a clock coarser than time.Now (the kernel's tick, 1–10
// ms; whole seconds on ext3 or HFS+, 2 s on FAT): an entry added in the same
// tick as an earlier change leaves the mtime as it was. A listing taken more
// than one tick after the mtime is safe, because any later change is stamped
// with a later tick. This is git's "racily clean" index entry; 2 s covers
// every local filesystem. A directory changed in the last 2 s is simply
// listed again on each rescan.
const racyMargin = 2 * time.Second

// dirLister globs like filepath.Glob but keeps each directory's listing
// while the directory's modification time is unchanged: a rescan of an
// unchanged /var/log/pods costs one stat per directory instead of an open,
// a read of its entries and a close. A listing is reused only when it was
// taken more than racyMargin after the mtime it was taken at, and never when
// it is older than maxAge (a safety net for clocks this cannot see: a
// remote filesystem's, or a clock stepped back). Only the discovery
// goroutine uses it.
type dirLister struct {
	maxAge time.Duration               // relist every directory at least this often (0: no limit)
	now    func() time.Time            // the clock; nil is time.Now
	failed func(dir string, err error) // a directory that exists but cannot be listed
	// listed, when set, runs after each fresh listing (tests change the
	// directory right after it was listed, as a racing writer would).
	listed func(dir string, mtime, at time.Time)

	dirs map[string]*dirEntry
	gen  uint64
}

type dirEntry struct {
	mtime    time.Time // the directory's mtime when it was listed
	listedAt time.Time // when the listing began (before the stat)
	ino      uint64
	names    []string
	gen      uint64
}

// reusable reports whether the listing still holds for a directory that now
// has mtime and ino, at time now.
func (e *dirEntry) reusable(mtime time.Time, ino uint64, now time.Time, maxAge time.Duration) bool {
	switch {
	case e.ino != ino || !e.mtime.Equal(mtime):
		return false // changed
	case e.listedAt.Sub(e.mtime) <= racyMargin:
		return false // racily clean: an entry added in the listing's tick left the mtime as it was
	case maxAge > 0 && now.Sub(e.listedAt) >= maxAge:
		return false // periodic full relist
	default:
		return true
	}
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

func (l *dirLister) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}

func (l *dirLister) glob(pattern string) ([]string, error) {
	if _, err := filepath.Match(pattern, ""); err != nil {
		return nil, err
	}
	if l.dirs == nil {
		l.dirs = map[string]*dirEntry{}
	}
	l.gen++
	out := l.globAt(pattern)
	for d, e := range l.dirs {
		if e.gen+16 < l.gen { // not visited for 16 scans: gone
			delete(l.dirs, d)
		}
	}
	return out, nil
}

func (l *dirLister) globAt(pattern string) []string {
	if !hasMeta(pattern) {
		if _, err := os.Lstat(pattern); err != nil {
			return nil
		}
		return []string{pattern}
	}
	dir, file := filepath.Split(pattern)
	dir = filepath.Clean(dir)
	var dirs []string
	if hasMeta(dir) {
		dirs = l.globAt(dir)
	} else {
		dirs = []string{dir}
	}
	var out []string
	for _, d := range dirs {
		for _, n := range l.list(d) {
			if ok, _ := filepath.Match(file, n); ok {
				out = append(out, filepath.Join(d, n))
			}
		}
	}
	return out
}

func (l *dirLister) list(dir string) []string {
	now := l.clock() // before the stat: any change after it gets a later stamp
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		delete(l.dirs, dir)
		l.fail(dir, err)
		return nil
	}
	ino := idOf(st).ino
	if e, ok := l.dirs[dir]; ok && e.reusable(st.ModTime(), ino, now, l.maxAge) {
		e.gen = l.gen
		return e.names
	}
	f, err := os.Open(dir)
	if err != nil {
		l.fail(dir, err)
		return nil
	}
	names, err := f.Readdirnames(-1)
	_ = f.Close()
	if err != nil {
		l.fail(dir, err)
		return nil
	}
	sort.Strings(names)
	l.dirs[dir] = &dirEntry{mtime: st.ModTime(), listedAt: now, ino: ino, names: names, gen: l.gen}
	if l.listed != nil {
		l.listed(dir, st.ModTime(), now)
	}
	return names
}

// fail reports a directory that exists (or loops) but cannot be listed. A
// path that is gone, or is a file where the pattern expects a directory, is
// not reported: both are normal (a pod deleted, a stray file).
func (l *dirLister) fail(dir string, err error) {
	if err == nil || l.failed == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return
	}
	l.failed(dir, err)
}
