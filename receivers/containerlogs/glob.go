package containerlogs

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// dirLister globs like filepath.Glob but keeps each directory's listing
// while the directory's modification time is unchanged: a rescan of an
// unchanged /var/log/pods costs one stat per directory instead of an open,
// a read of its entries and a close. Only the discovery goroutine uses it.
type dirLister struct {
	dirs map[string]*dirEntry
	gen  uint64
}

type dirEntry struct {
	mtime time.Time
	ino   uint64
	names []string
	gen   uint64
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

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
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		delete(l.dirs, dir)
		return nil
	}
	ino := idOf(st).ino
	if e, ok := l.dirs[dir]; ok && e.mtime.Equal(st.ModTime()) && e.ino == ino {
		e.gen = l.gen
		return e.names
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil
	}
	names, err := f.Readdirnames(-1)
	_ = f.Close()
	if err != nil {
		return nil
	}
	sort.Strings(names)
	l.dirs[dir] = &dirEntry{mtime: st.ModTime(), ino: ino, names: names, gen: l.gen}
	return names
}
