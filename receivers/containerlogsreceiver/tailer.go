package containerlogsreceiver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/weftobs/weft/internal/backoff"
	"github.com/weftobs/weft/internal/nodestatus"
)

// fingerprintSize is how many of a file's first bytes identify it together
// with its device and inode (an inode number is reused after a delete; the
// first bytes of a container log carry a nanosecond timestamp).
const fingerprintSize = 256

// readBufSize is the read buffer of a file being read. It comes from the
// receiver's pool and goes back while the file is idle, so that thousands
// of quiet files do not hold 64 KiB each.
const readBufSize = 64 * 1024

// maxIdleRest is the most unprocessed bytes (an unterminated line) an idle
// file keeps in a copy of their own when its read buffer goes back.
const maxIdleRest = 4 * 1024

const scopeName = "github.com/weftobs/weft/receivers/containerlogsreceiver"

// Record attributes set by this receiver beyond the semantic conventions.
const (
	attrTruncated  = "weft.log.truncated"
	attrIncomplete = "weft.log.incomplete"
)

// fileID is a file's identity on this node.
type fileID struct {
	dev, ino uint64
}

func idOf(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{dev: uint64(st.Dev), ino: st.Ino} //nolint:unconvert // Dev is int32 on some platforms
	}
	return fileID{}
}

func linksOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink) //nolint:unconvert
	}
	return 1
}

// emitFunc hands a batch of records to the next consumer (its ConsumeLogs):
// nil means accepted, a permanent error rejected, any other error refused
// for now.
type emitFunc func(ctx context.Context, ld plog.Logs) error

// tailerEnv is what the tailers of one receiver share and all a tailer knows
// of the receiver that runs it: settings, self-metrics, pooled read buffers,
// and a few functions by which it hands records on and reports back. The
// receiver makes one and keeps it for the tailers' lifetime.
type tailerEnv struct {
	cfg      *Config
	tel      *telemetry
	logger   *zap.Logger
	emit     emitFunc
	save     func(ctx context.Context, key string, cp checkpoint) error // stores the file's checkpoint (checkpoints.save)
	bufs     *sync.Pool                                                 // read buffers of readBufSize
	inFlight *atomic.Int64                                              // message bytes in unacknowledged batches, all files

	limited  func(key string) bool                // a warning for key was logged recently: do not log it again
	skipped  func(path, reason string, err error) // counts and logs a path that cannot be read
	watched  func(t *tailer) bool                 // change notifications cover t's file
	timed    func(t *tailer, on bool)             // t reads on its own timer, or waits for notifications again (watcher.setTimed)
	pathTok  func(t *tailer) (uint64, bool)       // changes when an entry of t's directories may have (watcher.pathToken)
	released func(ctx context.Context, t *tailer) // t read its file to the end and gave it up
}

// tailer reads one file identity from an offset, turns its lines into log
// records, sends them in batches and saves the offset after each batch the
// next consumer accepted. One goroutine owns a tailer.
type tailer struct {
	env    *tailerEnv
	key    string // checkpoint key
	path   string // the path the file was found at (log.file.path)
	id     fileID
	f      *os.File  // the open file (held so that its inode cannot be reused)
	src    io.Reader // what is read: f, or a gzip reader over f
	follow bool      // false: read to the current end once, then release
	after  <-chan struct{}
	done   chan struct{}
	wake   chan struct{} // a change notification for the file (buffered: one pending wake is enough)
	// waits counts the times it began to wait for a notification, its file
	// read to the end (tests: it reads nothing more until woken).
	waits atomic.Int64

	watches []watchRef // where change notifications for the file arrive (watcher.mu)
	timed   bool       // reads on its own timer: its directories need not report writes (watcher.mu)
	onTimer bool       // the same, for the tailer's goroutine
	// sized: lastSize is from this read cycle's stat, and the cycle reads
	// up to it without another stat, nor a read to confirm the end.
	sized bool
	// pathTok is the directories' token (watcher.pathToken) taken before
	// the last stat that found the file at its path, at pathAt; pathOK:
	// there was one.
	pathTok uint64
	pathAt  time.Time
	pathOK  bool

	fp        []byte
	format    format
	docker    dockerParser
	asm       assembler
	join      *joiner
	buf       []byte    // read buffer: pooled (bufp), grown for one long line, or a small idle rest
	bufp      *[]byte   // the pool's handle of buf, nil when buf is not from the pool
	probe     [64]byte  // what an idle file is read into, so that a poll finding nothing takes no buffer
	start     int       // first unprocessed byte of buf
	consumed  int64     // file offset of buf[start]
	readOff   int64     // file offset just after buf's last byte
	skipping  bool      // dropping the rest of an over-long physical line
	skipFrom  int64     // where that line began
	acked     int64     // offset of the last saved checkpoint (-1: none)
	lastSize  int64     // file size at the last check
	lastMtime time.Time // file mtime at the last check
	moved     bool      // the file left its path (renamed or deleted) and no data came since
	movedAt   time.Time // when that was first seen
	released  bool      // read to its end and given up (not stopped by shutdown)
	denied    bool      // a read was refused for lack of permission (counted once)

	now      time.Time
	nowTS    pcommon.Timestamp
	resource pcommon.Map
	logs     plog.Logs
	lrs      plog.LogRecordSlice
	batched  bool // logs holds a batch (made at the first record, not while idle)
	bytes    int
	fileAttr attribute.KeyValue
	mopt     metric.MeasurementOption

	pub published // what the status page shows, read by other goroutines
}

// published is a tailer's progress for nodestatus: written by the tailer's
// goroutine, read by whoever renders the status.
type published struct {
	size, offset, acked, records, lastRead atomic.Int64
}

// publish makes the tailer's offsets visible to nodestatus readers.
func (t *tailer) publish() {
	t.pub.offset.Store(t.readOff)
	t.pub.size.Store(max(t.lastSize, t.readOff))
	t.pub.acked.Store(t.acked)
}

// status is the tailer's nodestatus entry.
func (t *tailer) status() nodestatus.File {
	f := nodestatus.File{
		Path: t.path, Size: t.pub.size.Load(), Offset: t.pub.offset.Load(), Acked: t.pub.acked.Load(),
		Records: t.pub.records.Load(), Following: t.follow,
	}
	if ns := t.pub.lastRead.Load(); ns > 0 {
		f.LastRead = time.Unix(0, ns)
	}
	return f
}

func (r *logsReceiver) newTailer(path, key string, f *os.File, src io.Reader, id fileID, off int64, follow bool) *tailer {
	t := &tailer{
		env: &r.tenv, key: key, path: path, id: id, f: f, src: src, follow: follow,
		done:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
		asm:      assembler{maxLen: r.cfg.MaxLogSize},
		consumed: off, readOff: off, acked: -1, lastSize: off,
		resource: pcommon.NewMap(),
		fileAttr: attribute.String("log.file.path", path),
	}
	t.mopt = metric.WithAttributes(t.fileAttr)
	t.publish()
	if r.startRe != nil {
		t.join = &joiner{start: r.startRe, maxLen: r.cfg.MaxLogSize}
	}
	if m, ok := metaFromPath(path); ok {
		m.putResource(t.resource)
	}
	return t
}

func (t *tailer) newBatch() {
	t.logs = plog.NewLogs()
	rl := t.logs.ResourceLogs().AppendEmpty()
	t.resource.CopyTo(rl.Resource().Attributes())
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(scopeName)
	t.lrs = sl.LogRecords()
	t.lrs.EnsureCapacity(min(t.env.cfg.MaxBatchRecords, 1024))
	t.bytes = 0
	t.batched = true
}

// getBuf makes buf a pooled read buffer that starts with what buf held.
func (t *tailer) getBuf() {
	bp := t.env.bufs.Get().(*[]byte)
	t.buf, t.start, t.bufp = append((*bp)[:0], t.buf[t.start:]...), 0, bp
}

// putBuf gives the read buffer back (or to the collector when it grew for a
// long line) while the file is idle, keeping a small unprocessed rest in a
// copy. A rest longer than maxIdleRest (a long line being written) keeps it.
func (t *tailer) putBuf() {
	rest := t.buf[t.start:]
	if cap(t.buf) <= maxIdleRest || len(rest) > maxIdleRest {
		return
	}
	var keep []byte
	if len(rest) > 0 {
		keep = append([]byte(nil), rest...)
	}
	t.dropBuf()
	t.buf, t.start = keep, 0
}

// dropBuf returns a pooled buffer to the pool; buf must not be used after.
func (t *tailer) dropBuf() {
	if t.bufp != nil {
		*t.bufp = t.buf[:0]
		t.env.bufs.Put(t.bufp)
	}
	t.buf, t.bufp, t.start = nil, nil, 0
}

var errStopped = errors.New("receiver stopped")

// run reads until the file is released or ctx is cancelled.
func (t *tailer) run(ctx context.Context) {
	defer close(t.done)
	defer t.closeFile()
	defer t.dropBuf()
	if t.after != nil {
		select {
		case <-t.after:
		case <-ctx.Done():
			return
		}
	}
	t.initFP()
	if t.readOff > 0 && t.key != "" {
		// Remember a start past 0 (start_at: end) before reading anything, so
		// that a crash does not turn it into a start at 0.
		if t.save(ctx, t.readOff) != nil {
			return
		}
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	cycle := time.Now() // start of this read cycle
	read := false       // this cycle read something
	for {
		atEnd := false
		sized := t.follow && t.sized
		switch {
		case sized:
			// Read up to this cycle's stat; what was written since waits
			// for the next cycle.
			atEnd = t.readOff >= t.lastSize
		case t.follow:
			var err error
			if atEnd, err = t.checkTruncation(ctx); err != nil {
				return
			}
		}
		var n int
		err := io.EOF
		if !atEnd || (!sized && cap(t.buf) >= readBufSize) {
			n, err = t.readChunk(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		if n > 0 {
			t.moved, read = false, true
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, errStopped) {
				return
			}
			t.logReadError(t.path, err)
		}
		if !t.idle(ctx) {
			return
		}
		minRead := min(t.env.cfg.MinReadInterval, t.env.cfg.PollInterval)
		switch {
		case t.polled():
			timer.Reset(t.env.cfg.PollInterval)
		case read && minRead > 0:
			// Being written: read again min_read_interval after this
			// cycle's start without waiting for a notification (one is
			// all but certain by then, and the wait for the rest of the
			// interval after it would cost a second wake). Meanwhile its
			// writes need not be notified.
			if !t.onTimer {
				t.onTimer = true
				t.env.timed(t, true)
			}
			timer.Reset(time.Until(alignedRead(cycle, minRead)))
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			t.drainWake() // served by the read that follows
			cycle, read, t.sized = time.Now(), false, false
			continue
		case t.onTimer:
			// Writes are notified again from here on; one more read for a
			// write made before.
			t.onTimer, t.sized = false, false
			t.env.timed(t, false)
			continue
		default:
			timer.Stop()
			t.waits.Add(1)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
			// Notifications within min_read_interval of the last cycle's
			// start wait for its end, and the one read serves them all.
			if d := minRead - time.Since(cycle); d > 0 && !backoff.Sleep(ctx, d) {
				return
			}
		case <-timer.C:
		}
		cycle, read, t.sized = time.Now(), false, false
	}
}

// alignedRead is when a file being written whose read cycle began at
// cycle is read again: the first multiple of every (on the wall clock)
// at least every/2 after cycle, so between every/2 and 3*every/2 later
// and every on average. The files being written are then read together,
// one wake of the process for all of them instead of one each.
func alignedRead(cycle time.Time, every time.Duration) time.Time {
	t := cycle.Add(every / 2).Round(0)
	n := t.Truncate(every)
	if n.Before(t) {
		n = n.Add(every)
	}
	return n
}

// polled reports whether an idle file is read again after poll_interval.
// Otherwise it waits to be woken: by a change notification for its name,
// or by the watcher's safety poll every fallback_poll_interval. A file is
// polled when its directory is not watched, when it left its path (its
// writer may still append through an open descriptor, which inotify
// reports under another name or not at all), and while it holds a partial
// message waiting for flush_timeout.
func (t *tailer) polled() bool {
	return t.moved || t.asm.minStart() >= 0 || (t.join != nil && t.join.minStart() >= 0) || !t.env.watched(t)
}

// checkTruncation runs before each read: a copytruncate may have happened
// during the wait and the file been written past our offset again. A file
// that shrank, or that changed and no longer starts with the fingerprint,
// was truncated. The fingerprint is only re-read when size or mtime moved.
// atEnd reports that the file holds nothing past what was read (an idle
// file then skips its read).
func (t *tailer) checkTruncation(ctx context.Context) (atEnd bool, err error) {
	fi, err := t.f.Stat()
	if err != nil {
		t.logReadError(t.path, err)
		return false, nil
	}
	size, mtime := fi.Size(), fi.ModTime()
	changed := size != t.lastSize || !mtime.Equal(t.lastMtime)
	if size < t.readOff || (changed && !t.prefixMatches()) {
		return false, t.truncated(ctx, size)
	}
	t.lastSize, t.lastMtime, t.sized = size, mtime, true
	t.publish()
	return size == t.readOff, nil
}

func (t *tailer) closeFile() {
	if t.f != nil {
		_ = t.f.Close()
		t.env.tel.openFiles.Add(context.Background(), -1)
		t.f = nil
	}
}

// maxLine is the longest physical line kept whole; the rest is skipped.
func (t *tailer) maxLine() int { return t.env.cfg.MaxLogSize + 64*1024 }

// readChunk reads once from the file and processes the complete lines.
func (t *tailer) readChunk(ctx context.Context) (int, error) {
	if cap(t.buf) < readBufSize {
		// Idle (the read buffer went back to the pool): a small read tells
		// whether there is anything before a buffer is taken.
		n, err := t.src.Read(t.probe[:])
		if n > 0 {
			t.getBuf()
			copy(t.buf[len(t.buf):cap(t.buf)], t.probe[:n])
		}
		return t.readDone(ctx, n, err)
	}
	if t.start > 0 && (len(t.buf) == cap(t.buf) || t.start == len(t.buf)) {
		n := copy(t.buf, t.buf[t.start:])
		t.buf, t.start = t.buf[:n], 0
	}
	if len(t.buf) == cap(t.buf) {
		if cap(t.buf) >= t.maxLine() {
			// A physical line longer than maxLine: keep its start as a
			// truncated line, skip the rest up to the next newline.
			t.now = time.Now()
			t.nowTS = pcommon.NewTimestampFromTime(t.now)
			off := t.consumed
			line := t.buf
			t.consumed += int64(len(line))
			t.buf = t.buf[:0]
			t.skipping, t.skipFrom = true, off
			if err := t.processLine(ctx, line, off, true); err != nil {
				return 0, err
			}
		} else {
			nb := make([]byte, len(t.buf), min(2*cap(t.buf), t.maxLine()))
			copy(nb, t.buf)
			t.dropBuf()
			t.buf = nb
		}
	}
	n, err := t.src.Read(t.buf[len(t.buf):cap(t.buf)])
	return t.readDone(ctx, n, err)
}

// readDone processes n bytes just read into buf after its end.
func (t *tailer) readDone(ctx context.Context, n int, err error) (int, error) {
	if n > 0 {
		data := t.buf[len(t.buf) : len(t.buf)+n]
		if t.readOff < fingerprintSize && int64(len(t.fp)) == t.readOff {
			// The fingerprint is taken from the bytes as read, never re-read
			// later from a file that may have been truncated meanwhile.
			t.fp = append(t.fp, data[:min(int64(n), fingerprintSize-t.readOff)]...)
		}
		t.buf = t.buf[:len(t.buf)+n]
		t.readOff += int64(n)
		t.env.tel.bytesRead.Add(ctx, int64(n), t.mopt)
		t.now = time.Now()
		t.pub.lastRead.Store(t.now.UnixNano())
		t.publish()
		t.nowTS = pcommon.NewTimestampFromTime(t.now)
		if perr := t.processLines(ctx); perr != nil {
			return n, perr
		}
	}
	if err != nil && errors.Is(err, os.ErrPermission) && !t.denied {
		t.denied = true
		t.env.skipped(t.path, skipPermission, err)
	}
	return n, err
}

func (t *tailer) processLines(ctx context.Context) error {
	for {
		data := t.buf[t.start:]
		nl := bytes.IndexByte(data, '\n')
		if t.skipping {
			if nl < 0 {
				t.start += len(data)
				t.consumed += int64(len(data))
				return nil
			}
			t.start += nl + 1
			t.consumed += int64(nl + 1)
			t.skipping = false
			continue
		}
		if nl < 0 {
			return nil
		}
		line := data[:nl]
		off := t.consumed
		t.start += nl + 1
		t.consumed += int64(nl + 1)
		if err := t.processLine(ctx, line, off, false); err != nil {
			return err
		}
	}
}

// processLine parses one physical line that began at file offset off.
func (t *tailer) processLine(ctx context.Context, line []byte, off int64, cut bool) error {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1] // CR LF files (podman's conmon, Windows editors)
	}
	if t.format == formatUnknown {
		t.format = detectFormat(line)
	}
	var e entry
	var err error
	switch t.format {
	case formatCRI:
		err = parseCRI(line, &e)
	case formatDocker:
		err = t.docker.parse(line, &e)
	default:
		err = errCRIFields
	}
	if err != nil {
		t.env.tel.parseErrors.Add(ctx, 1, t.mopt)
		if !t.env.limited("parse " + t.path) {
			t.env.logger.Warn("line in neither CRI nor docker format; emitted as it is and counted",
				zap.String("path", t.path), zap.Int64("offset", off), zap.String("format", t.format.String()), zap.Error(err))
		}
		if len(line) == 0 {
			return nil // a blank line carries nothing; counted above
		}
		e = entry{stream: streamUnknown, msg: line}
	}
	if cut {
		e.partial = false
	}
	rec, ok := t.asm.add(&e, off, t.now)
	if !ok {
		return nil
	}
	rec.truncated = rec.truncated || cut
	return t.push(ctx, rec)
}

// push hands a record on: to the multiline joiner if there is one, else
// into the batch.
func (t *tailer) push(ctx context.Context, rec record) error {
	if t.join != nil {
		var ok bool
		if rec, ok = t.join.add(rec, t.now); !ok {
			return nil
		}
	}
	return t.append(ctx, rec)
}

func (t *tailer) append(ctx context.Context, rec record) error {
	if !t.batched {
		t.newBatch()
	}
	lr := t.lrs.AppendEmpty()
	if rec.ts != 0 {
		lr.SetTimestamp(pcommon.Timestamp(rec.ts))
	}
	lr.SetObservedTimestamp(t.nowTS)
	if utf8.Valid(rec.body) {
		lr.Body().SetStr(string(rec.body))
	} else {
		lr.Body().SetStr(strings.ToValidUTF8(string(rec.body), "\uFFFD"))
	}
	attrs := lr.Attributes()
	attrs.EnsureCapacity(2)
	if rec.stream != streamUnknown {
		attrs.PutStr("log.iostream", rec.stream.String())
	}
	attrs.PutStr("log.file.path", t.path)
	if rec.truncated {
		attrs.PutBool(attrTruncated, true)
		t.env.tel.truncatedLines.Add(ctx, 1, t.mopt)
		if !t.env.limited("truncated " + t.path) {
			t.env.logger.Warn("message longer than max_log_size cut; flagged and counted",
				zap.String("path", t.path), zap.Int("max_log_size", t.env.cfg.MaxLogSize))
		}
	}
	if rec.incomplete {
		attrs.PutBool(attrIncomplete, true)
		t.env.tel.incompleteLines.Add(ctx, 1, t.mopt)
	}
	t.bytes += len(rec.body)
	total := t.env.inFlight.Add(int64(len(rec.body)))
	if t.lrs.Len() >= t.env.cfg.MaxBatchRecords || t.bytes >= t.env.cfg.MaxBatchBytes ||
		total >= int64(t.env.cfg.MaxInFlightBytes) {
		return t.flush(ctx)
	}
	return nil
}

// safeOffset is the offset before which every byte has been emitted into
// this or an earlier batch: a restart from here loses nothing.
func (t *tailer) safeOffset() int64 {
	s := t.consumed
	if t.skipping {
		s = t.skipFrom
	}
	if m := t.asm.minStart(); m >= 0 && m < s {
		s = m
	}
	if t.join != nil {
		if m := t.join.minStart(); m >= 0 && m < s {
			s = m
		}
	}
	return s
}

// flush sends the batch, retrying with backoff while the next consumer
// refuses, and saves the checkpoint once it is accepted.
func (t *tailer) flush(ctx context.Context) error {
	safe := t.safeOffset()
	n := 0
	if t.batched {
		n = t.lrs.Len()
	}
	if n == 0 {
		if safe != t.acked {
			return t.save(ctx, safe)
		}
		return nil
	}
	logs := t.logs
	t.env.tel.recordsEmitted.Add(ctx, int64(n), t.mopt)
	t.pub.records.Add(int64(n))
	// Jittered, so the tailers of many files refused together (a memory
	// limiter at its limit) do not retry in step.
	wait := backoff.Backoff{Min: 50 * time.Millisecond, Max: 5 * time.Second}
	for {
		err := t.env.emit(ctx, logs)
		if err == nil {
			t.env.tel.recordsAcked.Add(ctx, int64(n), t.mopt)
			break
		}
		if ctx.Err() != nil {
			return errStopped
		}
		if consumererror.IsPermanent(err) {
			t.env.tel.recordsDropped.Add(ctx, int64(n), reasonAttr(t.fileAttr, reasonRejected))
			t.env.logger.Error("next consumer rejected log records permanently; dropped and counted",
				zap.String("path", t.path), zap.Int("records", n), zap.Error(err))
			break
		}
		t.logRetry(t.path, err)
		if !backoff.Sleep(ctx, wait.Next()) {
			return errStopped
		}
	}
	t.env.inFlight.Add(-int64(t.bytes))
	t.logs, t.lrs, t.bytes, t.batched = plog.Logs{}, plog.LogRecordSlice{}, 0, false
	return t.save(ctx, safe)
}

// save stores the checkpoint. A store error is logged, not fatal: the data
// was delivered, and the worst outcome is a duplicate after a crash.
func (t *tailer) save(ctx context.Context, off int64) error {
	if ctx.Err() != nil {
		return errStopped
	}
	cp := checkpoint{Path: t.path, Dev: t.id.dev, Ino: t.id.ino, FP: t.fp, Offset: off, Size: max(t.lastSize, t.readOff)}
	if err := t.env.save(ctx, t.key, cp); err != nil {
		t.env.logger.Warn("save checkpoint", zap.String("path", t.path), zap.Error(err))
		return nil
	}
	t.acked = off
	t.publish()
	return nil
}

// initFP takes the fingerprint of a file that is not read from its
// beginning (start_at: end, a tomb) from the file itself.
func (t *tailer) initFP() {
	if t.f == nil || len(t.fp) > 0 || t.readOff == 0 || t.src != io.Reader(t.f) {
		return
	}
	b := make([]byte, min(int64(fingerprintSize), t.readOff))
	n, _ := t.f.ReadAt(b, 0)
	t.fp = b[:n]
}

// prefixMatches reports whether the file still starts with the fingerprint.
func (t *tailer) prefixMatches() bool {
	if len(t.fp) == 0 {
		return true
	}
	return fileHasPrefix(t.f, t.fp)
}

func fileHasPrefix(f *os.File, fp []byte) bool {
	b := make([]byte, len(fp))
	n, _ := f.ReadAt(b, 0)
	return n == len(fp) && bytes.Equal(b, fp)
}

// idle runs when a read found no new data. It flushes expired partial
// messages and the batch, and checks whether the file left its path. It
// returns false when the tailer is done.
func (t *tailer) idle(ctx context.Context) bool {
	if err := t.flushExpired(ctx, t.env.cfg.FlushTimeout); err != nil {
		return false
	}
	if err := t.flush(ctx); err != nil {
		return false
	}
	t.putBuf()
	t.asm.release()
	if t.join != nil {
		t.join.release()
	}
	t.docker.scratch = nil
	if !t.follow {
		return !t.release(ctx)
	}
	// Whether the path still leads to the file: known without a stat
	// while no entry of its watched directories changed since the last
	// stat found it there, within fallback_poll_interval (the safety net,
	// as for a watched directory's listing).
	tok, tokOK := t.env.pathTok(t)
	now := time.Now()
	if tokOK && t.pathOK && tok == t.pathTok && !t.moved && now.Sub(t.pathAt) < t.env.cfg.FallbackPollInterval {
		return true
	}
	st, err := os.Stat(t.path)
	if err == nil && idOf(st) == t.id {
		t.moved = false
		t.pathTok, t.pathAt, t.pathOK = tok, now, tokOK
		return true
	}
	t.pathOK = false
	// The file was renamed or deleted. Whoever rotated it may still append
	// for a moment: release it once it stayed quiet for a poll_interval
	// (polled meanwhile), within two polls of the change. A notification
	// (say, for the new file at the path) does not shorten that.
	if now := time.Now(); !t.moved {
		t.moved, t.movedAt = true, now
		return true
	} else if now.Sub(t.movedAt) < t.env.cfg.PollInterval {
		return true
	}
	return !t.release(ctx)
}

func (t *tailer) flushExpired(ctx context.Context, timeout time.Duration) error {
	now := time.Now()
	t.now, t.nowTS = now, pcommon.NewTimestampFromTime(now)
	for {
		rec, ok := t.asm.expired(now, timeout)
		if !ok {
			break
		}
		if err := t.push(ctx, rec); err != nil {
			return err
		}
	}
	if t.join != nil {
		for {
			rec, ok := t.join.expired(now, timeout)
			if !ok {
				break
			}
			if err := t.append(ctx, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// finish treats the unterminated rest of the file as a last line and emits
// everything pending; the file will not grow any more.
func (t *tailer) finish(ctx context.Context) error {
	if rest := t.buf[t.start:]; len(rest) > 0 && !t.skipping {
		off := t.consumed
		t.consumed += int64(len(rest))
		t.start = len(t.buf)
		if err := t.processLine(ctx, rest, off, false); err != nil {
			return err
		}
	}
	t.skipping = false
	if err := t.flushExpired(ctx, 0); err != nil {
		return err
	}
	return t.flush(ctx)
}

// release reads what is left, sends it and forgets the file. It returns true
// when the tailer is done (released or stopped).
func (t *tailer) release(ctx context.Context) bool {
	// Read whatever arrived since the last read.
	for {
		n, err := t.readChunk(ctx)
		if errors.Is(err, errStopped) || ctx.Err() != nil {
			return true
		}
		if n == 0 {
			break
		}
	}
	if err := t.finish(ctx); err != nil {
		return true
	}
	t.released = true
	t.env.released(ctx, t)
	return true
}

// truncated handles a file that shrank or whose first bytes changed
// (copytruncate, or a truncate and rewrite). The bytes between the last read
// and the truncation are looked for in a copy beside the file; what cannot be
// recovered is counted as lost.
func (t *tailer) truncated(ctx context.Context, size int64) error {
	lost := t.lastSize - t.readOff
	cp := t.findCopy()
	// Lines written between a copy and the truncation are in neither file:
	// no reader can see or measure them. Each truncation is counted so that
	// such a window is never silent; bytes known to be lost are counted below.
	t.env.tel.truncations.Add(ctx, 1, metric.WithAttributes(t.fileAttr, attribute.Bool("copy_found", cp != nil)))
	if cp != nil {
		if st, err := cp.Stat(); err == nil {
			lost = t.lastSize - st.Size()
		}
		if _, err := cp.Seek(t.readOff, io.SeekStart); err == nil {
			src := t.src
			t.src = cp
			for {
				n, err := t.readChunk(ctx)
				if errors.Is(err, errStopped) || ctx.Err() != nil {
					t.src = src
					_ = cp.Close()
					return errStopped
				}
				if n == 0 {
					break
				}
			}
			t.src = src
		}
		_ = cp.Close()
	}
	if lost > 0 {
		t.env.tel.bytesLost.Add(ctx, lost, reasonAttr(t.fileAttr, reasonTruncated))
		t.env.logger.Warn("file truncated before it was read to its end; loss counted",
			zap.String("path", t.path), zap.Int64("bytes_lost", lost))
	}
	if err := t.finish(ctx); err != nil {
		return err
	}
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	t.buf, t.start, t.consumed, t.readOff, t.lastSize = t.buf[:0], 0, 0, 0, 0
	t.fp, t.acked, t.skipping = nil, -1, false
	t.publish()
	t.asm.reset()
	_ = size
	return t.save(ctx, 0)
}

// findCopy looks beside the file for a copy that starts with the same bytes
// and reaches at least as far as what was read (logrotate's copytruncate).
func (t *tailer) findCopy() *os.File {
	if len(t.fp) == 0 {
		return nil
	}
	for _, p := range siblings(t.path) {
		if strings.HasSuffix(p, ".gz") {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		st, err := f.Stat()
		if err == nil && idOf(st) != t.id && st.Size() >= t.readOff && fileHasPrefix(f, t.fp) {
			return f
		}
		_ = f.Close()
	}
	return nil
}

func (t *tailer) logReadError(path string, err error) {
	if !t.env.limited("read " + path) {
		t.env.logger.Warn("read container log file", zap.String("path", path), zap.Error(err))
	}
}

func (t *tailer) logRetry(path string, err error) {
	if !t.env.limited("retry " + path) {
		t.env.logger.Warn("next consumer refused log records; reading paused, retrying with backoff",
			zap.String("path", path), zap.Error(err))
	}
}
