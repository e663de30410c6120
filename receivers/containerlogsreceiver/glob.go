package containerlogsreceiver

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
// remote filesystem's, or a clock stepped back).
//
// With change notifications (watch set), a watched directory is not even
// stat'ed while no entry event arrived since it was listed or checked (the
// token taken before that stat is unchanged), for up to trust; after that
// it is stat'ed as without notifications. Only the discovery goroutine uses
// it.
type dirLister struct {
	maxAge time.Duration               // relist every directory at least this often (0: no limit)
	now    func() time.Time            // the clock; nil is time.Now
	failed func(dir string, err error) // a directory that exists but cannot be listed
	// listed, when set, runs after each fresh listing (tests change the
	// directory right after it was listed, as a racing writer would).
	listed func(dir string, mtime, at time.Time)
	// watch, when set, makes sure dir is watched and returns a token that
	// changes whenever an entry of dir may have changed; ok is false when
	// dir is not watched. unwatch is called for a directory forgotten.
	watch   func(dir string) (token uint64, ok bool)
	unwatch func(dir string)
	trust   time.Duration // how long a watched directory goes without a stat (fallback_poll_interval)

	dirs map[string]*dirEntry
	gen  uint64
	seq  uint64     // fresh listings so far
	at   time.Time  // the clock at the start of this glob, before every stat of it
	bufs [][]string // the directories matched at each level, reused
}

type dirEntry struct {
	mtime     time.Time // the directory's mtime when it was listed
	listedAt  time.Time // when the listing began (before the stat)
	ino       uint64
	names     []string
	gen       uint64
	seq       uint64    // this listing's number: the same while the listing is reused
	watched   bool      // token is valid: taken from a watch before checkedAt's stat
	token     uint64    // the watch token when last stat'ed or listed
	checkedAt time.Time // when last stat'ed or listed
	// The paths of the names matching pattern (the last file pattern this
	// listing was matched against), kept while the listing is reused.
	pattern string
	paths   []string
	matched bool
}

// match returns the paths in dir of the listed names that match the file
// pattern. Callers must not modify the result.
func (e *dirEntry) match(dir, file string) []string {
	if e.matched && e.pattern == file {
		return e.paths
	}
	var paths []string
	for _, n := range e.names {
		if ok, _ := filepath.Match(file, n); ok {
			paths = append(paths, filepath.Join(dir, n))
		}
	}
	e.pattern, e.paths, e.matched = file, paths, true
	return paths
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
	return l.globInto(nil, pattern)
}

// globInto appends the paths matching pattern to dst.
func (l *dirLister) globInto(dst []string, pattern string) ([]string, error) {
	if _, err := filepath.Match(pattern, ""); err != nil {
		return nil, err
	}
	if l.dirs == nil {
		l.dirs = map[string]*dirEntry{}
	}
	l.gen++
	l.at = l.clock()
	out := l.globAt(dst, pattern, 0)
	for d, e := range l.dirs {
		if e.gen+16 < l.gen { // not visited for 16 scans: gone
			delete(l.dirs, d)
			if l.unwatch != nil {
				l.unwatch(d)
			}
		}
	}
	return out, nil
}

// seqOf is the number of dir's current listing (0: none). It stays the same
// while the listing is reused, so that a name found in it still leads to
// the same file.
func (l *dirLister) seqOf(dir string) uint64 {
	if e, ok := l.dirs[dir]; ok {
		return e.seq
	}
	return 0
}

// globAt appends the paths matching pattern to dst; depth is the level of
// the pattern (0: the whole pattern, 1: its directory, ...).
func (l *dirLister) globAt(dst []string, pattern string, depth int) []string {
	if !hasMeta(pattern) {
		if _, err := os.Lstat(pattern); err != nil {
			return dst
		}
		return append(dst, pattern)
	}
	dir, file := filepath.Split(pattern)
	dir = filepath.Clean(dir)
	for len(l.bufs) <= depth {
		l.bufs = append(l.bufs, nil)
	}
	var dirs []string
	if hasMeta(dir) {
		dirs = l.globAt(l.bufs[depth][:0], dir, depth+1)
	} else {
		dirs = append(l.bufs[depth][:0], dir)
	}
	l.bufs[depth] = dirs
	for _, d := range dirs {
		if e := l.list(d); e != nil {
			dst = append(dst, e.match(d, file)...)
		}
	}
	return dst
}

// list returns dir's listing, nil when it cannot be listed.
func (l *dirLister) list(dir string) *dirEntry {
	now := l.at // before the stat: any change after it gets a later stamp
	var token uint64
	var watched bool
	if l.watch != nil {
		// Before the stat: an entry changed after it changes the token.
		token, watched = l.watch(dir)
	}
	e, ok := l.dirs[dir]
	if ok && watched && e.watched && e.token == token && now.Sub(e.checkedAt) < l.trust &&
		(l.maxAge <= 0 || now.Sub(e.listedAt) < l.maxAge) {
		e.gen = l.gen // watched, and no entry event since the last check
		return e
	}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		delete(l.dirs, dir)
		if l.unwatch != nil {
			l.unwatch(dir)
		}
		l.fail(dir, err)
		return nil
	}
	ino := idOf(st).ino
	notified := ok && watched && e.watched && e.token != token // an entry event since: list again
	if ok && !notified && e.reusable(st.ModTime(), ino, now, l.maxAge) {
		e.gen = l.gen
		e.watched, e.token, e.checkedAt = watched, token, now
		return e
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
	l.seq++
	e = &dirEntry{mtime: st.ModTime(), listedAt: now, ino: ino, names: names, gen: l.gen, seq: l.seq,
		watched: watched, token: token, checkedAt: now}
	l.dirs[dir] = e
	if l.listed != nil {
		l.listed(dir, st.ModTime(), now)
	}
	return e
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
