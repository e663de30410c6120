package containerlogsreceiver

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The cached glob finds what filepath.Glob finds, also after entries are
// added, removed and renamed.
func TestDirListerMatchesGlob(t *testing.T) {
	dir := t.TempDir()
	pattern := filepath.Join(dir, "*", "*", "*.log")
	var l dirLister
	check := func() {
		t.Helper()
		want, err := filepath.Glob(pattern)
		require.NoError(t, err)
		got, err := l.glob(pattern)
		require.NoError(t, err)
		sort.Strings(got)
		require.Equal(t, want, got)
	}
	check()
	a := podLogPath(t, dir, "ns", "a", "c")
	appendFile(t, a, "x\n")
	check()
	b := podLogPath(t, dir, "ns", "b", "c")
	appendFile(t, b, "x\n")
	appendFile(t, filepath.Join(filepath.Dir(b), "1.log"), "x\n")
	check()
	require.NoError(t, os.Rename(a, a+".20240101-000000"))
	check()
	appendFile(t, a, "y\n")
	check()
	require.NoError(t, os.RemoveAll(filepath.Dir(filepath.Dir(b))))
	check()
	_, err := l.glob("[")
	require.Error(t, err)
}

// forgeMtime sets a directory's mtime, as a filesystem clock coarser than
// the changes would have left it.
func forgeMtime(t *testing.T, dir string, mtime time.Time) {
	t.Helper()
	require.NoError(t, os.Chtimes(dir, time.Time{}, mtime))
}

// A listing is reused only when it was taken more than racyMargin after the
// directory's mtime and is younger than maxAge.
func TestDirEntryReusable(t *testing.T) {
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const maxAge = time.Minute
	tests := []struct {
		name     string
		listedAt time.Time
		now      time.Time
		mtime    time.Time // the directory's mtime now
		ino      uint64
		want     bool
	}{
		{"listed in the tick of the mtime", mtime, mtime.Add(time.Second), mtime, 1, false},
		{"listed within the margin", mtime.Add(racyMargin - time.Millisecond), mtime.Add(racyMargin), mtime, 1, false},
		{"listed exactly one margin after", mtime.Add(racyMargin), mtime.Add(2 * racyMargin), mtime, 1, false},
		{"listed more than a margin after", mtime.Add(racyMargin + time.Millisecond), mtime.Add(2 * racyMargin), mtime, 1, true},
		{"listed before the mtime (clock stepped back)", mtime.Add(-time.Hour), mtime.Add(time.Second), mtime, 1, false},
		{"mtime changed", mtime.Add(time.Hour), mtime.Add(time.Hour + time.Second), mtime.Add(time.Nanosecond), 1, false},
		{"directory replaced (inode)", mtime.Add(time.Hour), mtime.Add(time.Hour + time.Second), mtime, 2, false},
		{"just younger than max age", mtime.Add(time.Hour), mtime.Add(time.Hour + maxAge - time.Nanosecond), mtime, 1, true},
		{"max age reached: full relist", mtime.Add(time.Hour), mtime.Add(time.Hour + maxAge), mtime, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &dirEntry{mtime: mtime, listedAt: tt.listedAt, ino: 1}
			assert.Equal(t, tt.want, e.reusable(tt.mtime, tt.ino, tt.now, maxAge))
		})
	}
}

// A file created in the same clock tick as a listing leaves the
// directory's mtime unchanged. The lister's clock is injected and the
// directory's mtime forged, so the race happens every time: the listing
// taken in the mtime's tick is not reused and the file is found at the
// next rescan; a listing taken after the margin is reused (one stat per
// rescan) until full_rescan_interval.
func TestDirListerRacilyClean(t *testing.T) {
	dir := t.TempDir()
	pattern := filepath.Join(dir, "*.log")
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	now := mtime
	l := dirLister{maxAge: time.Minute, now: func() time.Time { return now }}
	names := func() []string {
		t.Helper()
		got, err := l.glob(pattern)
		require.NoError(t, err)
		for i := range got {
			got[i] = filepath.Base(got[i])
		}
		return got
	}
	create := func(name string) { // in the tick of mtime: the mtime stays
		t.Helper()
		appendFile(t, filepath.Join(dir, name), "x\n")
		forgeMtime(t, dir, mtime)
	}

	create("a.log")
	require.Equal(t, []string{"a.log"}, names(), "listed in the tick of the mtime")
	create("b.log") // right after that listing, in the same tick
	now = mtime.Add(time.Millisecond)
	require.Equal(t, []string{"a.log", "b.log"}, names(), "a listing from the mtime's tick was reused: b.log lost")
	create("c.log")
	now = mtime.Add(racyMargin)
	require.Equal(t, []string{"a.log", "b.log", "c.log"}, names(), "a listing within the margin was reused")

	// Listed more than a margin after the mtime: trusted. Any real change
	// from now on gets a later mtime; d.log below, forged into the old
	// tick, cannot happen on a real clock and shows that the listing is
	// reused rather than read again.
	now = mtime.Add(racyMargin + time.Millisecond)
	require.Equal(t, []string{"a.log", "b.log", "c.log"}, names())
	listedAt := now
	create("d.log")
	now = listedAt.Add(time.Minute - time.Millisecond)
	require.Equal(t, []string{"a.log", "b.log", "c.log"}, names(), "a trusted listing was not reused")
	now = listedAt.Add(time.Minute)
	require.Equal(t, []string{"a.log", "b.log", "c.log", "d.log"}, names(), "no full relist after full_rescan_interval")

	// A real change moves the mtime: listed again at once.
	now = now.Add(time.Second)
	appendFile(t, filepath.Join(dir, "e.log"), "x\n")
	require.Equal(t, []string{"a.log", "b.log", "c.log", "d.log", "e.log"}, names())
}

// With change notifications a quiet watched directory is not stat'ed: its
// listing is reused while the watch's token is unchanged, for up to trust
// (fallback_poll_interval). An entry event (a new token) makes it stale
// even when the mtime does not show the change; after trust the mtime is
// checked again, so a missed event costs at most trust. The clock, the
// token and the mtime are the test's.
func TestDirListerWatched(t *testing.T) {
	dir := t.TempDir()
	pattern := filepath.Join(dir, "*.log")
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	now := mtime.Add(time.Hour) // long after the mtime: not racily clean
	token := uint64(1)
	const trust = 10 * time.Second
	l := dirLister{maxAge: time.Hour, trust: trust, now: func() time.Time { return now },
		watch: func(string) (uint64, bool) { return token, true }}
	names := func() []string {
		t.Helper()
		got, err := l.glob(pattern)
		require.NoError(t, err)
		for i := range got {
			got[i] = filepath.Base(got[i])
		}
		return got
	}
	create := func(name string) { // a change the mtime does not show
		t.Helper()
		appendFile(t, filepath.Join(dir, name), "x\n")
		forgeMtime(t, dir, mtime)
	}

	create("a.log")
	require.Equal(t, []string{"a.log"}, names())
	create("b.log")
	now = now.Add(time.Second)
	require.Equal(t, []string{"a.log"}, names(), "a quiet watched directory was listed again")
	token++ // b.log's create event
	require.Equal(t, []string{"a.log", "b.log"}, names(), "an entry event did not make the listing stale")

	// A missed event: the directory's real mtime moves, and only the stat
	// after trust sees it.
	appendFile(t, filepath.Join(dir, "c.log"), "x\n")
	now = now.Add(trust - time.Millisecond)
	require.Equal(t, []string{"a.log", "b.log"}, names(), "a quiet watched directory was stat'ed within trust")
	now = now.Add(time.Millisecond)
	require.Equal(t, []string{"a.log", "b.log", "c.log"}, names(), "not stat'ed after trust")

	// Not watched (the watch failed): the mtime rules alone, as without
	// notifications.
	l.watch = func(string) (uint64, bool) { return 0, false }
	forgeMtime(t, dir, mtime)
	now = now.Add(time.Second)
	require.Equal(t, []string{"a.log", "b.log", "c.log"}, names())
	create("d.log")
	now = now.Add(time.Second)
	require.Equal(t, []string{"a.log", "b.log", "c.log"}, names(), "an unchanged mtime's listing was not reused")
}
