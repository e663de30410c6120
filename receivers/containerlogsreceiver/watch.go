package containerlogsreceiver

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// watcher wakes tailers on change notifications (inotify: notifier) so
// that idle files need not be polled. It holds one watch per
// directory, never one per file: the directories of the tailed files and
// those the include patterns are listed through. An event for a name wakes
// the tailers of that name; an entry event (create, remove, rename) also
// makes the directory's listing stale, and a create that the include
// patterns may match starts a rescan at once. A queue overflow wakes every
// file and makes every listing stale. Notifications are read in batches,
// every notifySettle at most (see notifier): a file being written is read
// every min_read_interval however often it is written, so one wake per
// write would buy nothing; while every file of a directory is read on its
// timer, the directory's watch leaves writes out altogether (setTimed).
//
// Polling stays the fallback: a file whose directory is not watched (no
// inotify instance, a watch refused, a network filesystem) is polled every
// poll_interval as without notifications, and a watched idle file is still
// checked every fallback_poll_interval in case a notification was missed.
type watcher struct {
	r *logsReceiver
	// newFS creates the inotify instance (newNotifier); addDir adds one
	// directory to it (addDirWatch). Tests make them fail.
	newFS  func() (*notifier, error)
	addDir func(*notifier, string) error
	// setWrites turns the write notifications of a directory's watch on or
	// off (notifier.setWrites); tests make it fail.
	setWrites func(*notifier, string, bool) error
	settle    time.Duration // the notifier's wait between reads (notifySettle)

	addMu sync.Mutex // serialises adding and removing watches; never held with mu
	mu    sync.Mutex
	fs    *notifier // nil: no notifications, every file is polled
	// closed is set at shutdown, before fs is closed.
	closed    bool
	dirs      map[string]*watchDir
	overflows uint64          // queue overflows so far: part of every token
	logged    map[string]bool // fallback reasons already logged (once each)
}

// watchDir is one directory's watch and the tailers it wakes.
type watchDir struct {
	watched  bool                 // the inotify watch is in place
	failed   string               // why the last attempt to watch failed (counted once until it works)
	failedAt time.Time            // when; retried after full_rescan_interval
	changes  uint64               // entry events seen and watches lost: part of the token
	listed   bool                 // the lister lists it
	files    map[string][]*tailer // the tailers of each name (nil: none yet)
	refs     int                  // tailers subscribed
	timed    int                  // of those, the ones reading on their own timer (tailer.timed)
	quiet    bool                 // the watch reports no writes (setWrites off)
}

// wantQuiet reports whether the directory's watch may leave writes out:
// every tailer subscribed reads on its own timer, so a write notification
// would wake no one. Entries and attributes are still reported.
func (d *watchDir) wantQuiet() bool { return d.watched && d.refs > 0 && d.timed == d.refs }

// watchRef is a tailer's subscription: a name in a watched directory.
type watchRef struct {
	d    *watchDir
	dir  string
	base string
}

var errUnsupportedFS = errors.New("network or FUSE filesystem: inotify does not see changes made elsewhere")

func newWatcher(r *logsReceiver) *watcher {
	return &watcher{
		r: r, newFS: newNotifier, addDir: addDirWatch, settle: notifySettle,
		setWrites: func(n *notifier, dir string, on bool) error { return n.setWrites(dir, on) },
		dirs:      map[string]*watchDir{}, logged: map[string]bool{},
	}
}

// start creates the inotify watcher and its event loop. When it cannot be
// created every file is polled as without it; that is counted and logged.
func (w *watcher) start(ctx context.Context, wg *sync.WaitGroup) {
	fsw, err := w.newFS()
	if err != nil {
		w.mu.Lock()
		w.fallbackLocked("", watchUnavailable, err)
		w.mu.Unlock()
		return
	}
	w.mu.Lock()
	w.fs = fsw
	w.mu.Unlock()
	wg.Add(2)
	go func() {
		defer wg.Done()
		w.loop(ctx, fsw)
	}()
	go func() {
		defer wg.Done()
		fsw.run(w.settle, w.event, w.overflow, w.error)
	}()
}

// notifySettle is how long the notifier waits after a read before the
// next: at most one wake per notifySettle for notifications, at most that
// much later for the first write to an idle file after a busy moment.
const notifySettle = 20 * time.Millisecond

// notification is one inotify event: the directory's path with the
// entry's name, or the directory alone for its own events.
type notification struct {
	name string
	op   op
}

// op is what happened to a name.
type op uint8

const (
	opCreate op = 1 << iota // created, or moved here
	opWrite                 // written to
	opRemove                // removed (the watched directory itself included)
	opRename                // moved away (the watched directory itself included)
	opChmod                 // attributes changed
)

func (o op) has(x op) bool { return o&x != 0 }

// loop wakes every file of a watched directory every
// fallback_poll_interval (the safety poll: woken together, they cost one
// burst instead of a timer each) and closes the notifier at the end (the
// notifier's run hands the notifications to event meanwhile).
func (w *watcher) loop(ctx context.Context, fsw *notifier) {
	defer func() {
		w.mu.Lock()
		w.closed = true
		for _, d := range w.dirs {
			// Nothing wakes them any more: back to polling (only matters
			// if the watcher ended before shutdown).
			d.watched = false
			d.wakeAll()
		}
		w.mu.Unlock()
		w.addMu.Lock()
		_ = fsw.closeNotifier() // also ends its run
		w.addMu.Unlock()
	}()
	sweep := time.NewTicker(w.r.cfg.FallbackPollInterval)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			w.mu.Lock()
			for _, d := range w.dirs {
				if d.watched {
					d.wakeAll()
				}
			}
			w.mu.Unlock()
		}
	}
}

// event wakes the tailers of the event's name and marks the listing of its
// directory stale when an entry was created, removed or renamed.
func (w *watcher) event(ev notification) {
	dir, base := filepath.Dir(ev.name), filepath.Base(ev.name)
	entry := ev.op.has(opCreate | opRemove | opRename)
	w.mu.Lock()
	if d := w.dirs[ev.name]; d != nil && ev.op.has(opRemove|opRename) {
		// The watched directory itself was removed or moved: inotify
		// dropped its watch. It is watched again when listed again.
		d.watched = false
		d.changes++
		d.wakeAll()
	}
	if d := w.dirs[dir]; d != nil {
		if entry {
			d.changes++
		}
		for _, t := range d.files[base] {
			t.wakeUp()
		}
	}
	w.mu.Unlock()
	if ev.op.has(opCreate) && w.r.mayMatch(ev.name) {
		w.r.rescanSoon()
	}
}

// error handles the notifier's end by a read error: every file is woken,
// every directory counts as unwatched (polled) from then on; counted and
// logged as a fall back (watch_error).
func (w *watcher) error(err error) {
	w.mu.Lock()
	w.fallbackLocked("", watchError, err)
	for _, d := range w.dirs {
		d.watched = false
		d.changes++
		d.wakeAll()
	}
	w.fs = nil
	w.mu.Unlock()
	w.r.rescanSoon()
}

// overflow handles a queue overflow: notifications were lost, so every
// file is woken and every listing is taken again.
func (w *watcher) overflow() {
	w.r.tel.watchOverflows.Add(context.Background(), 1)
	if !w.r.rateLimited("watch overflow") {
		w.r.set.Logger.Warn("change notification queue overflowed (fs.inotify.max_queued_events); every file is checked")
	}
	w.mu.Lock()
	w.overflows++
	for _, d := range w.dirs {
		d.wakeAll()
	}
	w.mu.Unlock()
	w.r.rescanSoon()
}

func (d *watchDir) wakeAll() {
	for _, ts := range d.files {
		for _, t := range ts {
			t.wakeUp()
		}
	}
}

// listDir makes sure a directory the lister lists is watched. token changes
// whenever the directory's entries may have changed since; ok is false when
// the directory is not watched (the lister then relies on its mtime).
func (w *watcher) listDir(dir string) (token uint64, ok bool) {
	w.mu.Lock()
	if d := w.dirs[dir]; d != nil && d.watched { // the usual case
		d.listed = true
		token = d.changes + w.overflows
		w.mu.Unlock()
		return token, true
	}
	w.mu.Unlock()
	d := w.ensure(dir)
	w.mu.Lock()
	defer w.mu.Unlock()
	d.listed = true
	return d.changes + w.overflows, d.watched
}

// unlistDir is called when the lister forgets a directory (gone or no
// longer matched): its watch is removed unless a tailer still needs it.
func (w *watcher) unlistDir(dir string) {
	w.mu.Lock()
	d := w.dirs[dir]
	if d == nil {
		w.mu.Unlock()
		return
	}
	d.listed = false
	drop := w.dropLocked(dir, d)
	w.mu.Unlock()
	w.remove(drop)
}

// ensure returns the directory's entry, adding its watch if it has none
// (a failed one is tried again after full_rescan_interval).
func (w *watcher) ensure(dir string) *watchDir {
	w.mu.Lock()
	d := w.dirLocked(dir)
	if d.watched || w.fs == nil || w.closed || (d.failed != "" && time.Since(d.failedAt) < w.r.cfg.FullRescanInterval) {
		w.mu.Unlock()
		return d
	}
	fsw := w.fs
	w.mu.Unlock()
	w.addMu.Lock()
	err := w.addDir(fsw, dir)
	w.addMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	d = w.dirLocked(dir)
	switch {
	case err == nil:
		// Watched, unless the notifier ended meanwhile (error).
		d.watched, d.failed, d.quiet = w.fs == fsw, "", false
	case w.closed || errors.Is(err, errNotifierClosed):
		// shutting down
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		// gone: the lister or the tailer finds out by itself
	default:
		d.failedAt = time.Now()
		reason := watchFailReason(err)
		if d.failed != reason {
			d.failed = reason
			w.fallbackLocked(dir, reason, err)
		}
	}
	return d
}

func (w *watcher) dirLocked(dir string) *watchDir {
	d := w.dirs[dir]
	if d == nil {
		d = &watchDir{}
		w.dirs[dir] = d
	}
	return d
}

// dropLocked forgets a directory no one needs any more and returns the
// watch to remove (outside mu), if any.
func (w *watcher) dropLocked(dir string, d *watchDir) (remove string) {
	if d.listed || d.refs > 0 {
		return ""
	}
	delete(w.dirs, dir)
	if d.watched && !w.closed {
		return dir
	}
	return ""
}

func (w *watcher) remove(dir string) {
	if dir == "" {
		return
	}
	w.mu.Lock()
	fsw := w.fs
	w.mu.Unlock()
	if fsw == nil {
		return
	}
	w.addMu.Lock()
	defer w.addMu.Unlock()
	fsw.remove(dir)
}

// subscribe registers a following tailer under its path and, when the path
// is a symbolic link, under the file it leads to (writes are reported in
// that file's directory), and makes sure both directories are watched.
func (w *watcher) subscribe(t *tailer) {
	names := []string{t.path}
	if real, err := filepath.EvalSymlinks(t.path); err == nil && real != t.path {
		names = append(names, real)
	}
	for _, n := range names {
		dir, base := filepath.Dir(n), filepath.Base(n)
		w.mu.Lock()
		d := w.dirLocked(dir)
		if d.files == nil {
			d.files = map[string][]*tailer{}
		}
		d.files[base] = append(d.files[base], t)
		d.refs++
		t.watches = append(t.watches, watchRef{d: d, dir: dir, base: base})
		w.mu.Unlock()
		w.ensure(dir)
		w.applyQuiet(dir) // it waits for notifications until it reads on its timer
	}
}

// setTimed records whether t reads on its own timer (its file being
// written: tailer.run) and makes the watches of its directories report
// writes only while a tailer there waits for them. Turning it off
// returns once writes are reported again; the tailer then reads once
// more before it waits, for a write made before that.
func (w *watcher) setTimed(t *tailer, on bool) {
	w.mu.Lock()
	if t.timed == on {
		w.mu.Unlock()
		return
	}
	t.timed = on
	dirs := make([]string, 0, len(t.watches))
	for _, ref := range t.watches {
		if on {
			ref.d.timed++
		} else {
			ref.d.timed--
		}
		if w.dirs[ref.dir] == ref.d {
			dirs = append(dirs, ref.dir)
		}
	}
	w.mu.Unlock()
	for _, dir := range dirs {
		w.applyQuiet(dir)
	}
}

// applyQuiet brings the directory's watch in line with wantQuiet. Under
// addMu, so the last call applies the latest state. A watch whose writes
// cannot be turned back on no longer counts as watched: its files are
// polled (and the failure counted and logged, as for a refused watch).
func (w *watcher) applyQuiet(dir string) {
	w.addMu.Lock()
	defer w.addMu.Unlock()
	w.mu.Lock()
	d, fsw := w.dirs[dir], w.fs
	if d == nil || fsw == nil || w.closed || !d.watched || d.wantQuiet() == d.quiet {
		w.mu.Unlock()
		return
	}
	quiet := d.wantQuiet()
	w.mu.Unlock()
	err := w.setWrites(fsw, dir, !quiet)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dirs[dir] != d {
		return // forgotten meanwhile
	}
	switch {
	case err == nil:
		d.quiet = quiet
	case w.closed || errors.Is(err, errNotifierClosed):
	case quiet:
		// Still reporting writes: harmless, tried again at the next change.
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		// Gone, and its watch with it: polled until listed again.
		d.watched = false
		d.changes++
		d.wakeAll()
	default:
		d.watched = false
		d.changes++
		d.failedAt = time.Now()
		d.failed = watchFailReason(err)
		w.fallbackLocked(dir, d.failed, err)
		d.wakeAll()
	}
}

// unsubscribe removes a tailer that ended.
func (w *watcher) unsubscribe(t *tailer) {
	var drop []string
	w.mu.Lock()
	for _, ref := range t.watches {
		ts := ref.d.files[ref.base]
		for i, x := range ts {
			if x == t {
				ts = append(ts[:i], ts[i+1:]...)
				break
			}
		}
		if len(ts) == 0 {
			delete(ref.d.files, ref.base)
		} else {
			ref.d.files[ref.base] = ts
		}
		ref.d.refs--
		if t.timed {
			ref.d.timed--
		}
		if w.dirs[ref.dir] == ref.d {
			if r := w.dropLocked(ref.dir, ref.d); r != "" {
				drop = append(drop, r)
			}
		}
	}
	t.watches, t.timed = nil, false
	w.mu.Unlock()
	for _, d := range drop {
		w.remove(d)
	}
}

// pathToken changes whenever an entry of one of the tailer's directories
// may have changed (created, removed, renamed; a watch lost; a queue
// overflow); ok is false unless every one of them is watched. Taken
// before a stat of the tailer's path, an unchanged token later means the
// path still leads where that stat found it.
func (w *watcher) pathToken(t *tailer) (token uint64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(t.watches) == 0 || w.fs == nil {
		return 0, false
	}
	token = w.overflows
	for _, ref := range t.watches {
		if !ref.d.watched || w.dirs[ref.dir] != ref.d {
			return 0, false
		}
		token += ref.d.changes
	}
	return token, true
}

// covers reports whether every directory the tailer is registered in is
// watched, so that a change to its file wakes it.
func (w *watcher) covers(t *tailer) bool {
	if len(t.watches) == 0 {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ref := range t.watches {
		if !ref.d.watched {
			return false
		}
	}
	return true
}

// fallbackLocked counts a fall back to polling and logs the first of each
// reason.
func (w *watcher) fallbackLocked(dir, reason string, err error) {
	w.r.tel.watchFallbacks.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", reason)))
	if w.logged[reason] {
		return
	}
	w.logged[reason] = true
	fields := []zap.Field{zap.String("reason", reason), zap.Error(err)}
	if dir != "" {
		fields = append(fields, zap.String("directory", dir))
	}
	w.r.set.Logger.Warn("no change notifications; files are polled every poll_interval instead (counted in watch_fallbacks, logged once per reason)", fields...)
}

func watchFailReason(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return watchLimit
	case errors.Is(err, errUnsupportedFS):
		return watchUnsupported
	default:
		return watchError
	}
}

// addDirWatch watches dir, unless it is on a filesystem where inotify only
// sees the changes made through this machine's kernel (network and FUSE
// filesystems): there files are polled.
func addDirWatch(fsw *notifier, dir string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil && remoteFS(uint32(st.Type)) { //nolint:gosec // magic numbers are 32-bit
		return errUnsupportedFS
	}
	return fsw.add(dir)
}

// remoteFS reports whether a statfs f_type is a network or FUSE filesystem
// (linux/magic.h).
func remoteFS(magic uint32) bool {
	switch magic {
	case 0x6969, // NFS
		0x517B,     // SMB
		0xFF534D42, // CIFS
		0xFE534D42, // SMB2
		0x65735546, // FUSE
		0x01021997, // 9P
		0x00C36400, // Ceph
		0x5346414F, // AFS
		0x0BD00BD0: // Lustre
		return true
	}
	return false
}

// drainWake takes a pending wake: the read that follows serves it.
func (t *tailer) drainWake() {
	select {
	case <-t.wake:
	default:
	}
}

// wakeUp makes the tailer read now; a wake already pending is enough.
func (t *tailer) wakeUp() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}
