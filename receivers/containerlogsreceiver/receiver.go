package containerlogsreceiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"

	"github.com/weftobs/weft/internal/nodestatus"
)

// logsReceiver finds container log files and runs one tailer per file
// identity.
type logsReceiver struct {
	set     receiver.Settings
	cfg     *Config
	next    consumer.Logs
	tel     *telemetry
	startRe *regexp.Regexp

	inFlight atomic.Int64 // message bytes in unacknowledged batches, all files
	ckpt     *checkpoints // every file's checkpoint and the index of them
	tenv     tailerEnv    // what every tailer shares (see newTailer)

	cancel     context.CancelFunc
	unregister func() // withdraws the files from the status boards
	wg         sync.WaitGroup
	closeOnce  sync.Once

	lister    dirLister                      // used by the discovery goroutine only
	open      func(string) (*os.File, error) // os.Open; tests make it fail
	skipped   map[string]skipMark            // paths counted in paths_skipped; discovery goroutine only
	known     map[string]knownFile           // followed paths as last checked; discovery goroutine only
	scanGen   uint64                         // rescans so far; discovery goroutine only
	bufPool   sync.Pool                      // read buffers of readBufSize, held by tailers only while reading
	watch     *watcher                       // change notifications
	rescanNow chan struct{}                  // a create the include patterns may match was notified
	prefixes  []string                       // the include patterns and their directory parts with wildcards
	globBuf   []string                       // a rescan's matches, reused; discovery goroutine only
	pathBuf   []string                       // a rescan's paths, reused; discovery goroutine only

	mu     sync.Mutex
	active map[fileID]*tailer
	byPath map[string]*tailer // the newest tailer of each path
	tombs  map[fileID]tomb    // released files that still exist

	logMu    sync.Mutex
	lastWarn map[string]time.Time
}

// knownFile is a followed path as discovery last found it: the file it
// named, and the listing of its directory it was found in.
type knownFile struct {
	id  fileID
	seq uint64 // dirLister listing sequence number
	gen uint64 // scanGen when last seen
}

// tomb remembers a released file that still exists (renamed within the
// include patterns), so that finding it again does not read it twice.
type tomb struct {
	fp  []byte
	off int64
	at  time.Time
}

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (*logsReceiver, error) {
	tel, err := newTelemetry(set.MeterProvider)
	if err != nil {
		return nil, err
	}
	r := &logsReceiver{
		set: set, cfg: cfg, next: next, tel: tel,
		active: map[fileID]*tailer{}, byPath: map[string]*tailer{}, tombs: map[fileID]tomb{},
		ckpt: newCheckpoints(set.Logger), lastWarn: map[string]time.Time{},
		open: os.Open, skipped: map[string]skipMark{}, known: map[string]knownFile{},
		rescanNow: make(chan struct{}, 1),
	}
	r.bufPool.New = func() any { b := make([]byte, 0, readBufSize); return &b }
	r.tenv = tailerEnv{
		cfg: cfg, tel: tel, logger: set.Logger,
		emit: next.ConsumeLogs, save: r.ckpt.save,
		bufs: &r.bufPool, inFlight: &r.inFlight,
		limited: r.rateLimited, skipped: r.countSkip,
		watched:  func(t *tailer) bool { return r.watch.covers(t) },
		timed:    func(t *tailer, on bool) { r.watch.setTimed(t, on) },
		pathTok:  func(t *tailer) (uint64, bool) { return r.watch.pathToken(t) },
		released: r.forget,
	}
	r.watch = newWatcher(r)
	for _, p := range cfg.Include {
		for ; hasMeta(p); p = filepath.Dir(p) {
			r.prefixes = append(r.prefixes, p)
		}
	}
	r.lister.maxAge = cfg.FullRescanInterval
	r.lister.trust = cfg.FallbackPollInterval
	r.lister.watch = r.watch.listDir
	r.lister.unwatch = r.watch.unlistDir
	r.lister.failed = func(dir string, err error) { r.skip(dir, skipReason(dir, err), err) }
	if cfg.Multiline.LineStartPattern != "" {
		if r.startRe, err = regexp.Compile(cfg.Multiline.LineStartPattern); err != nil {
			return nil, fmt.Errorf("multiline.line_start_pattern: %w", err)
		}
	}
	return r, nil
}

// Start opens the checkpoint store and starts discovery in the background.
func (r *logsReceiver) Start(ctx context.Context, host component.Host) error {
	store, err := r.openStore(ctx, host)
	if err != nil {
		return err
	}
	r.ckpt.store = store
	r.unregister = nodestatus.PublishFiles(host, r.set.ID.String(), r.fileStatus)
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.watch.start(runCtx, &r.wg)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.run(runCtx)
	}()
	return nil
}

func (r *logsReceiver) openStore(ctx context.Context, host component.Host) (kvStore, error) {
	switch {
	case r.cfg.Storage != nil:
		ext, ok := host.GetExtensions()[*r.cfg.Storage]
		if !ok {
			return nil, fmt.Errorf("storage: extension %q not found", r.cfg.Storage)
		}
		se, ok := ext.(storage.Extension)
		if !ok {
			return nil, fmt.Errorf("storage: extension %q is not a storage extension", r.cfg.Storage)
		}
		c, err := se.GetClient(ctx, component.KindReceiver, r.set.ID, "")
		if err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		return c, nil
	case r.cfg.CheckpointDirectory != "":
		name := strings.NewReplacer("/", "_", ":", "_").Replace(r.set.ID.String())
		return openFileStore(r.cfg.CheckpointDirectory, name)
	default:
		r.set.Logger.Info("no storage or checkpoint_directory: checkpoints are kept in memory only")
		return newMemStore(), nil
	}
}

// Shutdown stops every tailer (a blocked send is cancelled, its offset not
// advanced) and closes the checkpoint store. It is safe without Start and
// safe twice.
func (r *logsReceiver) Shutdown(ctx context.Context) error {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	var err error
	r.closeOnce.Do(func() {
		if r.unregister != nil {
			r.unregister()
		}
		err = r.ckpt.close(ctx)
	})
	return err
}

// fileStatus lists the files being read, by path, for the status page.
func (r *logsReceiver) fileStatus() []nodestatus.File {
	r.mu.Lock()
	out := make([]nodestatus.File, 0, len(r.active))
	for _, t := range r.active {
		out = append(out, t.status())
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b nodestatus.File) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func (r *logsReceiver) run(ctx context.Context) {
	firstStart := r.restore(ctx)
	r.scan(ctx, firstStart)
	ticker := time.NewTicker(r.cfg.RescanInterval)
	defer ticker.Stop()
	gap := time.NewTimer(eventRescanGap)
	gap.Stop()
	defer gap.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-r.rescanNow:
			// A new file or directory was notified: rescan now, but not
			// more often than eventRescanGap (a storm of creates).
			gap.Reset(eventRescanGap - time.Since(last))
			select {
			case <-ctx.Done():
				return
			case <-gap.C:
			}
		}
		r.scan(ctx, false)
		last = time.Now()
	}
}

// eventRescanGap is the shortest time between two rescans started by
// notified creates.
const eventRescanGap = 50 * time.Millisecond

// rescanSoon asks the discovery goroutine for a rescan (a pending request
// is enough).
func (r *logsReceiver) rescanSoon() {
	select {
	case r.rescanNow <- struct{}{}:
	default:
	}
}

// mayMatch reports whether a created path matches an include pattern or
// a directory part of one: a new file, or a new directory new files may
// appear in.
func (r *logsReceiver) mayMatch(name string) bool {
	for _, p := range r.prefixes {
		if ok, _ := filepath.Match(p, name); ok {
			return true
		}
	}
	return false
}

// restore loads the checkpoints of an earlier run and resumes each file
// where it was acknowledged: at its path when identity and fingerprint match
// and the offset is within the file, else among its rotated siblings (plain
// or gzipped), which are then read to their end. It reports whether this is
// the first start (no checkpoint index at all).
func (r *logsReceiver) restore(ctx context.Context) bool {
	cps, first := r.ckpt.load(ctx)
	// Keys sort by creation time: an older file of a path is resumed first.
	for i := range cps {
		if !cps[i].claimed {
			r.resume(ctx, cps, i)
		}
	}
	return first
}

// claim finds an unclaimed checkpoint of path whose fingerprint the file
// at p (plain or gzip) starts with.
func claim(cps []keyed, path, p string) (int, bool) {
	for i := range cps {
		c := &cps[i]
		if c.claimed || c.cp.Path != path || len(c.cp.FP) == 0 {
			continue
		}
		if f, _, _, ok := openSibling(p, c.cp.FP); ok {
			_ = f.Close()
			c.claimed = true
			return i, true
		}
	}
	return 0, false
}

// resume continues the file of cps[idx]: at its path if it is still there,
// else among its rotated siblings; a file found in neither is counted lost.
func (r *logsReceiver) resume(ctx context.Context, cps []keyed, idx int) {
	key, cp := cps[idx].key, cps[idx].cp
	cps[idx].claimed = true
	if r.resumeAtPath(ctx, key, cp) {
		return
	}
	// Not at its path: find it among the rotated siblings, then read it and
	// every newer sibling to their ends before the live file.
	sibs := siblings(cp.Path)
	found, first, firstSrc := findSibling(sibs, cp)
	if found < 0 {
		r.tel.bytesLost.Add(ctx, max(0, cp.Size-cp.Offset), reasonAttr(fileAttrOf(cp.Path), reasonRotation))
		r.set.Logger.Warn("checkpointed file not found at its path nor among its rotated siblings; its unread rest is lost",
			zap.String("path", cp.Path), zap.Int64("offset", cp.Offset), zap.Int64("known_unread_bytes", max(0, cp.Size-cp.Offset)))
		_ = r.ckpt.forget(ctx, key)
		return
	}
	if err := skipTo(firstSrc, first, cp.Offset); err != nil {
		_ = first.Close()
		r.set.Logger.Warn("seek in rotated file", zap.String("path", sibs[found]), zap.Error(err))
		return
	}
	r.resumeChain(ctx, cps, key, cp, first, firstSrc, sibs[found+1:])
}

// resumeAtPath starts a follower of the checkpointed file at its path when
// the file there is the same (identity, fingerprint) and long enough.
func (r *logsReceiver) resumeAtPath(ctx context.Context, key string, cp checkpoint) bool {
	f, err := os.Open(cp.Path)
	if err != nil {
		return false
	}
	want := fileID{dev: cp.Dev, ino: cp.Ino}
	st, err := f.Stat()
	if err != nil || idOf(st) != want || cp.Offset > st.Size() || !fileHasPrefix(f, cp.FP) {
		_ = f.Close()
		return false
	}
	if _, err := f.Seek(cp.Offset, io.SeekStart); err != nil {
		_ = f.Close()
		return false
	}
	t := r.newTailer(cp.Path, key, f, f, want, cp.Offset, true)
	t.fp = cp.FP
	r.mu.Lock()
	if prev := r.byPath[cp.Path]; prev != nil {
		t.after = prev.done // an older file of this path is still being read
	}
	r.active[want], r.byPath[cp.Path] = t, t
	r.mu.Unlock()
	r.startTailer(ctx, t)
	return true
}

// findSibling finds the checkpointed file among the rotated siblings: the
// first that starts with its fingerprint and reaches its offset. found is
// -1 when none does.
func findSibling(sibs []string, cp checkpoint) (found int, f *os.File, src io.Reader) {
	for i, p := range sibs {
		f, src, size, ok := openSibling(p, cp.FP)
		if ok && (size < 0 || cp.Offset <= size) {
			return i, f, src
		}
		if f != nil {
			_ = f.Close()
		}
	}
	return -1, nil, nil
}

// resumeChain reads the rotated file first (positioned at the checkpoint)
// and then every newer sibling to their ends, one after the other, before
// the live file of the path.
func (r *logsReceiver) resumeChain(ctx context.Context, cps []keyed, key string, cp checkpoint, first *os.File, firstSrc io.Reader, newer []string) {
	r.mu.Lock()
	prev := r.byPath[cp.Path]
	r.mu.Unlock()
	chain := func(t *tailer) {
		if prev != nil {
			t.after = prev.done
		}
		prev = t
		r.mu.Lock()
		if t.id != (fileID{}) {
			r.active[t.id] = t
		}
		r.byPath[cp.Path] = t
		r.mu.Unlock()
		r.startTailer(ctx, t)
	}
	t := r.newTailer(cp.Path, key, first, firstSrc, statIDOrZero(first, firstSrc), cp.Offset, false)
	t.fp = cp.FP
	chain(t)
	for _, p := range newer {
		// A newer sibling that is the file of another checkpoint starts at
		// that checkpoint's offset, not at 0.
		k, off := r.ckpt.newKey(), int64(0)
		var fp []byte
		if j, ok := claim(cps, cp.Path, p); ok {
			k, off, fp = cps[j].key, cps[j].cp.Offset, cps[j].cp.FP
		}
		f, src, _, ok := openSibling(p, nil)
		if !ok {
			continue
		}
		if err := skipTo(src, f, off); err != nil {
			_ = f.Close()
			continue
		}
		t := r.newTailer(cp.Path, k, f, src, statIDOrZero(f, src), off, false)
		t.fp = fp
		chain(t)
	}
}

// statIDOrZero is the identity of a plain file; a gzip stream has none.
func statIDOrZero(f *os.File, src io.Reader) fileID {
	if io.Reader(f) != src {
		return fileID{}
	}
	if st, err := f.Stat(); err == nil {
		return idOf(st)
	}
	return fileID{}
}

// skipTo positions src at off (a seek for a file, a discard for gzip).
func skipTo(src io.Reader, f *os.File, off int64) error {
	if io.Reader(f) == src {
		_, err := f.Seek(off, io.SeekStart)
		return err
	}
	_, err := io.CopyN(io.Discard, src, off)
	return err
}

// openSibling opens a rotated file (gzipped or not) and checks that it
// starts with fp. size is -1 for gzip (unknown without reading it).
func openSibling(path string, fp []byte) (*os.File, io.Reader, int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, 0, false
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			_ = f.Close()
			return nil, nil, 0, false
		}
		if len(fp) > 0 {
			head := make([]byte, len(fp))
			if _, err := io.ReadFull(zr, head); err != nil || !bytes.Equal(head, fp) {
				_ = f.Close()
				return nil, nil, 0, false
			}
			// Start again so that offsets count from the file's beginning.
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				_ = f.Close()
				return nil, nil, 0, false
			}
			if err := zr.Reset(f); err != nil {
				_ = f.Close()
				return nil, nil, 0, false
			}
		}
		return f, zr, -1, true
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || (len(fp) > 0 && !fileHasPrefix(f, fp)) {
		_ = f.Close()
		return nil, nil, 0, false
	}
	return f, f, st.Size(), true
}

// siblings lists the rotated files of path (path.*), oldest first: the
// kubelet's timestamp suffixes sort by time, with or without ".gz".
func siblings(path string) []string {
	m, _ := filepath.Glob(escapeGlob(path) + ".*")
	sort.Slice(m, func(i, j int) bool {
		return strings.TrimSuffix(m[i], ".gz") < strings.TrimSuffix(m[j], ".gz")
	})
	return m
}

func escapeGlob(p string) string {
	return strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`).Replace(p)
}

// scan globs the include patterns and starts a tailer for each file
// identity not yet followed.
func (r *logsReceiver) scan(ctx context.Context, firstStart bool) {
	r.scanGen++
	defer r.pruneKnown()
	defer r.pruneSkipped()
	paths := r.pathBuf[:0]
	defer func() { r.pathBuf = paths[:0] }()
	var seen map[string]bool // one pattern's matches are unique
	if len(r.cfg.Include) > 1 {
		seen = map[string]bool{}
	}
	for _, pat := range r.cfg.Include {
		m, err := r.lister.globInto(r.globBuf[:0], pat)
		r.globBuf = m[:0]
		if err != nil {
			continue
		}
		for _, p := range m {
			if seen != nil {
				if seen[p] {
					continue
				}
				seen[p] = true
			}
			if !r.excluded(p) {
				paths = append(paths, p)
			}
		}
	}
	if !sort.StringsAreSorted(paths) { // the usual case: already sorted
		sort.Strings(paths)
	}
	now := time.Now()
	r.mu.Lock()
	for id, tb := range r.tombs {
		if now.Sub(tb.at) > time.Minute {
			delete(r.tombs, id)
		}
	}
	r.mu.Unlock()
	for _, p := range paths {
		if ctx.Err() != nil {
			return
		}
		if r.unchanged(p) {
			continue
		}
		r.consider(ctx, p, firstStart)
	}
}

// unchanged reports whether p is followed and its directory still has the
// listing p was last found followed in. Which file a name leads to changes
// only with an entry of the directory (create, remove, rename), which a
// reused listing rules out (an unchanged mtime, or no notification, see
// dirLister): p need not be stat'ed again.
func (r *logsReceiver) unchanged(p string) bool {
	k, ok := r.known[p]
	if !ok {
		return false
	}
	if seq := r.lister.seqOf(filepath.Dir(p)); seq == 0 || seq != k.seq {
		return false
	}
	r.mu.Lock()
	t := r.active[k.id]
	r.mu.Unlock()
	if t == nil || t.path != p {
		return false
	}
	k.gen = r.scanGen
	r.known[p] = k
	return true
}

// markKnown records that p was found leading to the followed file id.
func (r *logsReceiver) markKnown(p string, id fileID) {
	r.known[p] = knownFile{id: id, seq: r.lister.seqOf(filepath.Dir(p)), gen: r.scanGen}
}

// pruneKnown forgets the paths not found in this rescan.
func (r *logsReceiver) pruneKnown() {
	for p, k := range r.known {
		if k.gen != r.scanGen {
			delete(r.known, p)
		}
	}
}

func (r *logsReceiver) excluded(p string) bool {
	for _, pat := range r.cfg.Exclude {
		if ok, _ := filepath.Match(pat, p); ok {
			return true
		}
	}
	return false
}

func (r *logsReceiver) consider(ctx context.Context, path string, firstStart bool) {
	st, err := os.Stat(path)
	if err != nil {
		r.skipOrRotating(path, err)
		return
	}
	if !st.Mode().IsRegular() {
		if st.IsDir() {
			r.skip(path, skipDirectory, errors.New("is a directory"))
		} else {
			r.skip(path, skipSpecial, fmt.Errorf("not a regular file but a %s", fileKind(st.Mode())))
		}
		return
	}
	r.mu.Lock()
	_, known := r.active[idOf(st)]
	r.mu.Unlock()
	if known {
		delete(r.skipped, path)
		r.markKnown(path, idOf(st))
		return
	}
	// Open and stat here, and count a refusal instead of failing later.
	f, err := r.open(path)
	if err != nil {
		r.skipOrRotating(path, err)
		return
	}
	st, err = f.Stat()
	if err != nil {
		_ = f.Close()
		r.skip(path, skipOpenError, err)
		return
	}
	if !st.Mode().IsRegular() { // replaced between the stat and the open
		_ = f.Close()
		return
	}
	delete(r.skipped, path)
	id := idOf(st)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, known := r.active[id]; known {
		_ = f.Close()
		return
	}
	off := int64(0)
	if tb, ok := r.tombs[id]; ok && tb.off <= st.Size() && fileHasPrefix(f, tb.fp) {
		off = tb.off
	} else if firstStart && r.cfg.StartAt == startAtEnd {
		off = lastLineEnd(f, st.Size())
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		_ = f.Close()
		return
	}
	t := r.newTailer(path, r.ckpt.newKey(), f, f, id, off, true)
	if prev := r.byPath[path]; prev != nil {
		select {
		case <-prev.done:
		default:
			t.after = prev.done // keep the order of a path across rotations
		}
	}
	r.active[id], r.byPath[path] = t, t
	r.markKnown(path, id)
	r.startTailer(ctx, t)
}

// lastLineEnd is the offset just after the last newline before size, so that
// start_at: end never begins in the middle of a line.
func lastLineEnd(f *os.File, size int64) int64 {
	const window = 64 * 1024
	buf := make([]byte, window)
	for end := size; end > 0; {
		from := max(0, end-window)
		n, _ := f.ReadAt(buf[:end-from], from)
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return from + int64(i) + 1
		}
		end = from
	}
	return 0
}

func (r *logsReceiver) startTailer(ctx context.Context, t *tailer) {
	r.tel.openFiles.Add(ctx, 1)
	if t.follow {
		r.watch.subscribe(t)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t.run(ctx)
		r.watch.unsubscribe(t)
		r.mu.Lock()
		if r.active[t.id] == t {
			delete(r.active, t.id)
		}
		if r.byPath[t.path] == t {
			delete(r.byPath, t.path)
		}
		r.mu.Unlock()
	}()
}

// forget is called by a tailer that read its file to the end and released
// it: its checkpoint is deleted, and a tomb is kept if the file still exists.
func (r *logsReceiver) forget(ctx context.Context, t *tailer) {
	if t.f != nil && t.id != (fileID{}) {
		if st, err := t.f.Stat(); err == nil && linksOf(st) > 0 {
			r.mu.Lock()
			r.tombs[t.id] = tomb{fp: t.fp, off: t.consumed, at: time.Now()}
			r.mu.Unlock()
		}
	}
	if err := r.ckpt.forget(ctx, t.key); err != nil {
		r.set.Logger.Warn("delete checkpoint", zap.String("path", t.path), zap.Error(err))
	}
}

// skipMark remembers that a path was counted as skipped, and in which scan
// it was last found so.
type skipMark struct {
	reason string
	gen    uint64
}

// skip counts and logs a path that is not read, once while the reason lasts:
// a path found skipped in every rescan is counted once; one that was read,
// or not found, in between is counted again. Discovery goroutine only.
func (r *logsReceiver) skip(path, reason string, err error) {
	m, ok := r.skipped[path]
	r.skipped[path] = skipMark{reason: reason, gen: r.scanGen}
	if !ok || m.reason != reason {
		r.countSkip(path, reason, err)
	}
}

// pruneSkipped forgets the paths not found skipped in this rescan.
func (r *logsReceiver) pruneSkipped() {
	for p, m := range r.skipped {
		if m.gen != r.scanGen {
			delete(r.skipped, p)
		}
	}
}

// countSkip counts and logs one skipped path (callers log once per path).
func (r *logsReceiver) countSkip(path, reason string, err error) {
	ctx := context.Background()
	r.tel.pathsSkipped.Add(ctx, 1, reasonAttr(fileAttrOf(path), reason))
	if reason == skipPermission {
		r.tel.permissionErrors.Add(ctx, 1, reasonAttr(fileAttrOf(path), reason))
	}
	r.set.Logger.Warn("path matched by include is not read; counted in paths_skipped",
		zap.String("path", path), zap.String("reason", reason), zap.Error(err))
}

// skipOrRotating handles a failed stat or open. A path that is gone while a
// file read at it is still followed is a rotation in progress (renamed, the
// new file not yet created): not a skip.
func (r *logsReceiver) skipOrRotating(path string, err error) {
	reason := skipReason(path, err)
	if reason == skipVanished {
		r.mu.Lock()
		_, following := r.byPath[path]
		r.mu.Unlock()
		if following {
			return
		}
	}
	r.skip(path, reason, err)
}

// skipReason classifies the error of a stat, open or read of path.
func skipReason(path string, err error) string {
	switch {
	case errors.Is(err, syscall.ELOOP):
		return skipSymlinkLoop
	case errors.Is(err, fs.ErrPermission):
		return skipPermission
	case errors.Is(err, fs.ErrNotExist):
		if st, lerr := os.Lstat(path); lerr == nil && st.Mode()&fs.ModeSymlink != 0 {
			return skipDangling
		}
		return skipVanished
	default:
		return skipOpenError
	}
}

// fileKind names the type of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	default:
		return "irregular file"
	}
}

// rateLimited reports whether a message for key was logged less than 10 s
// ago (then it is not logged again); otherwise it notes that it is logged now.
func (r *logsReceiver) rateLimited(key string) bool {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	now := time.Now()
	if now.Sub(r.lastWarn[key]) < 10*time.Second {
		return true
	}
	r.lastWarn[key] = now
	return false
}
