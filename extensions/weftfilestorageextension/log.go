package weftfilestorageextension

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
)

// Loss reasons (the "reason" attribute of the records_lost and
// bytes_skipped counters).
const (
	// reasonCorrupt: a frame whose keys are readable but whose values fail
	// their checksum; the records of each key are known exactly.
	reasonCorrupt = "corrupt"
	// reasonTorn: damage after the last intact frame: a write that did
	// not complete (crash during the write); its caller was never told
	// that it succeeded.
	reasonTorn = "torn"
	// reasonUnreadable: bytes where no frame header could be read; the
	// records they held are known from the next intact frame's running
	// total (exact unless a key was both set and deleted inside them).
	reasonUnreadable = "unreadable"
)

// smallFrame is the largest frame that may use the reserve: the
// persistent queue's bookkeeping (its metadata, deletes) stays possible
// when the disk is full, so queued items can still be read and removed.
const smallFrame = 4 << 10

// zeroChunk is the unit in which the file is extended with zeros.
var zeroChunk = make([]byte, 64<<10)

// entry locates a live value: the frame's values region (checked as a
// whole against valCRC) and the value inside it.
type entry struct {
	frameValOff int64
	frameValLen int64
	valCRC      uint32
	valOff      int64
	valLen      int64
	records     int64
}

// fileClient is one client's append-only log. All methods are safe for
// concurrent use.
type fileClient struct {
	path    string
	name    string
	open    func(string) (segmentFile, error)
	cfg     *Config
	count   recordCounter
	tel     *telemetry
	logger  *zap.Logger
	release func() // tells the extension the client is closed

	mu        sync.Mutex
	f         segmentFile
	closed    bool
	end       int64 // where the next frame goes
	allocated int64 // file size: bytes from end to allocated are zero
	cumSet    uint64
	index     map[string]entry
	liveBytes int64
	nextTry   time.Time // earliest next compaction attempt after a failure
	buf       []byte
	scratch   []byte // frame values of the last read
	// graveyard: values deleted since the file was last rewritten, by
	// length; their bytes are still in the file, so a set of the same
	// bytes can link to them when the disk is full.
	graveyard  map[int64][]entry
	graveCount int
}

// maxGraveyard bounds the deleted values remembered for links.
const maxGraveyard = 16384

var _ storage.Client = (*fileClient)(nil)

// errClientClosed is returned by every call after Close.
var errClientClosed = errors.New("weft_file_storage client is closed")

func openClient(path, name string, open func(string) (segmentFile, error), cfg *Config, count recordCounter, tel *telemetry, logger *zap.Logger) (*fileClient, error) {
	f, err := open(path)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", path, err)
	}
	c := &fileClient{path: path, name: name, open: open, cfg: cfg, count: count, tel: tel, logger: logger, f: f, index: map[string]entry{}}
	rep, err := c.replay()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("replay %q: %w", path, err)
	}
	rep.report(c)
	if rep.damaged() || c.deadBytes() > max(cfg.CompactionMinDead, c.liveBytes) {
		// Rewrite at once, so that damage is counted once and not again at the next start.
		if err := c.compact(); err != nil {
			c.logger.Warn("Compaction after replay failed; damaged bytes stay and are counted again at the next start",
				zap.String("file", path), zap.Error(err))
		}
	}
	return c, nil
}

// replayResult is what a replay found besides the live values.
type replayResult struct {
	lost        map[string]lostKey // sets whose values are damaged, not deleted later
	unknownSet  int64              // records set in unreadable regions, less later deletes of unknown keys
	skipped     map[string]int64   // bytes by reason
	intactEnd   int64
	tailGarbage bool
}

type lostKey struct {
	records int64
	off     int64
}

func (r *replayResult) damaged() bool { return len(r.skipped) > 0 }

// report counts and logs the loss found by replay.
func (r *replayResult) report(c *fileClient) {
	byReason := map[string]int64{}
	for _, lk := range r.lost {
		reason := reasonCorrupt
		if lk.off >= r.intactEnd {
			reason = reasonTorn
		}
		byReason[reason] += lk.records
	}
	if r.unknownSet > 0 {
		byReason[reasonUnreadable] += r.unknownSet
	}
	for reason, n := range byReason {
		c.tel.recordsLost(c.name, reason, n)
	}
	for reason, n := range r.skipped {
		c.tel.bytesSkipped(c.name, reason, n)
	}
	if r.damaged() {
		c.logger.Warn("Damaged queue file: skipped what could not be read, kept the rest",
			zap.String("file", c.path), zap.Any("bytes_skipped", r.skipped), zap.Any("records_lost", byReason))
	}
}

// replayState is what replay carries from one frame to the next.
type replayState struct {
	res        *replayResult
	lastCum    uint64
	gap        bool    // an unreadable region since the last intact header
	gapStart   int64   // its start
	unreadable []int64 // starts and ends of unreadable regions
	corrupt    []int64 // offsets and value lengths of frames with damaged values
}

// replay rebuilds the index from the file. Damaged frames are skipped and
// accounted; replay only fails when the file cannot be read at all.
func (c *fileClient) replay() (*replayResult, error) {
	size, err := c.f.Size()
	if err != nil {
		return nil, err
	}
	st := &replayState{res: &replayResult{lost: map[string]lostKey{}, skipped: map[string]int64{}}}
	hdr := make([]byte, headerSize)
	for off := int64(0); off < size; {
		h, entries, ok, err := c.readFrame(hdr, off, size)
		if err != nil {
			return nil, err
		}
		if ok {
			if off, err = c.replayFrame(st, h, entries, off, size); err != nil {
				return nil, err
			}
			continue
		}
		if off, err = c.skipDamage(st, hdr, off, size); err != nil {
			return nil, err
		}
		if off < 0 {
			break
		}
	}
	return c.finishReplay(st, size)
}

// readFrame reads the header and directory of the frame at off; ok is
// false where no intact frame starts there.
func (c *fileClient) readFrame(hdr []byte, off, size int64) (h frameHeader, entries []dirEntry, ok bool, err error) {
	h, ok = c.readHeader(hdr, off, size)
	if !ok {
		return h, nil, false, nil
	}
	dir := make([]byte, h.dirLen)
	if _, err := c.f.ReadAt(dir, off+headerSize); err != nil {
		return h, nil, false, err
	}
	if !headerOK(hdr, h, dir) {
		return h, nil, false, nil
	}
	if entries, err = parseDirectory(dir, h.valLen); err != nil {
		return h, nil, false, nil
	}
	return h, entries, true, nil
}

// skipDamage goes past an offset where no intact frame starts. Zeros where
// no damage began are the preallocated end of the log; anything else opens
// (or continues) an unreadable region up to the next intact frame. It
// returns where to go on, or -1 where the log ends.
func (c *fileClient) skipDamage(st *replayState, hdr []byte, off, size int64) (int64, error) {
	if !st.gap && allZero(hdr[:min(int64(headerSize), size-off)]) {
		nz, err := c.nextNonZero(off, size)
		if err != nil || nz < 0 {
			return -1, err // preallocated zeros: the end of the log
		}
		st.gap, st.gapStart = true, off // zeros inside the log are damage
		return nz, nil
	}
	if !st.gap {
		st.gap, st.gapStart = true, off
	}
	next, err := c.scanFrame(off+1, size)
	if err != nil {
		return 0, err
	}
	if next >= 0 {
		return next, nil
	}
	end, err := c.endOfData(st.gapStart, size)
	if err != nil {
		return 0, err
	}
	st.unreadable = append(st.unreadable, st.gapStart, end) // preallocated zeros after it are not damage
	st.res.tailGarbage = true
	return -1, nil
}

// replayFrame applies the intact-headed frame at off to the index and
// returns where the next frame starts.
func (c *fileClient) replayFrame(st *replayState, h frameHeader, entries []dirEntry, off, size int64) (int64, error) {
	frameLen := int64(headerSize) + int64(h.dirLen) + int64(h.valLen)
	var setRecords uint64
	for _, e := range entries {
		if e.kind != opKindDelet {
			setRecords += uint64(e.records)
		}
	}
	if st.gap {
		st.unreadable = append(st.unreadable, st.gapStart, off)
		if before := h.cumSet - setRecords; before > st.lastCum {
			st.res.unknownSet += int64(before - st.lastCum)
		}
		st.gap = false
	}
	valOff := off + headerSize + int64(h.dirLen)
	valOK := false
	if off+frameLen <= size {
		vals := make([]byte, h.valLen)
		if _, err := c.f.ReadAt(vals, valOff); err != nil {
			return 0, err
		}
		valOK = crc32.Checksum(vals, crcTable) == h.valCRC
	} else {
		frameLen = size - off // values cut short by the end of the file
	}
	c.applyEntries(st.res, entries, off, valOff, h, valOK)
	if valOK {
		st.res.intactEnd = off + frameLen
		c.cumSet = h.cumSet
	} else {
		st.corrupt = append(st.corrupt, off, frameLen-headerSize-int64(h.dirLen))
	}
	st.lastCum = h.cumSet
	c.end = off + frameLen
	return c.end, nil
}

// applyEntries applies one frame's directory entries to the index; keys
// whose values are damaged are recorded as lost until a later frame sets
// or deletes them.
func (c *fileClient) applyEntries(res *replayResult, entries []dirEntry, off, valOff int64, h frameHeader, valOK bool) {
	for _, e := range entries {
		switch e.kind {
		case opKindSet:
			if old, ok := c.index[e.key]; ok {
				c.liveBytes -= liveSize(e.key, old.valLen)
			}
			delete(res.lost, e.key)
			delete(c.index, e.key)
			if valOK {
				c.index[e.key] = entry{frameValOff: valOff, frameValLen: int64(h.valLen), valCRC: h.valCRC, valOff: e.valOff, valLen: e.valLen, records: e.records}
				c.liveBytes += liveSize(e.key, e.valLen)
			} else if e.records > 0 {
				res.lost[e.key] = lostKey{records: e.records, off: off}
			}
		case opKindLink:
			if old, ok := c.index[e.key]; ok {
				c.liveBytes -= liveSize(e.key, old.valLen)
			}
			delete(res.lost, e.key)
			delete(c.index, e.key)
			if e.link.frameValOff+e.link.frameValLen <= off {
				c.index[e.key] = e.link // checked against its CRC when read
				c.liveBytes += liveSize(e.key, e.link.valLen)
			} else if e.records > 0 {
				res.lost[e.key] = lostKey{records: e.records, off: off}
			}
		case opKindDelet:
			if old, ok := c.index[e.key]; ok {
				c.liveBytes -= liveSize(e.key, old.valLen)
				delete(c.index, e.key)
			} else if _, ok := res.lost[e.key]; ok {
				delete(res.lost, e.key) // delivered before the damage mattered
			} else {
				res.unknownSet -= e.records // set in an unreadable region, removed since
			}
		}
	}
}

// finishReplay classifies the skipped bytes (unreadable or corrupt before
// the last intact frame, torn after it) and cuts a torn tail off.
func (c *fileClient) finishReplay(st *replayState, size int64) (*replayResult, error) {
	res := st.res
	if st.gap && !res.tailGarbage {
		st.unreadable = append(st.unreadable, st.gapStart, size)
		res.tailGarbage = true
	}
	for i := 0; i < len(st.unreadable); i += 2 {
		reason := reasonUnreadable
		if st.unreadable[i] >= res.intactEnd {
			reason = reasonTorn
		}
		res.skipped[reason] += st.unreadable[i+1] - st.unreadable[i]
	}
	// Damaged frames after the last intact one are torn writes.
	for i := 0; i < len(st.corrupt); i += 2 {
		reason := reasonCorrupt
		if st.corrupt[i] >= res.intactEnd {
			reason = reasonTorn
		}
		res.skipped[reason] += st.corrupt[i+1]
	}
	if res.unknownSet < 0 {
		res.unknownSet = 0
	}
	for k, v := range res.skipped {
		if v == 0 {
			delete(res.skipped, k)
		}
	}
	// A torn tail is cut off so that new frames do not land before garbage.
	if c.end > res.intactEnd || res.tailGarbage {
		c.end = res.intactEnd
		if err := c.f.Truncate(c.end); err != nil {
			return nil, fmt.Errorf("cut torn tail: %w", err)
		}
		size = c.end
	}
	c.allocated = size
	return res, nil
}

// readHeader reads and decodes the header at off if its directory fits in
// the file (the values may not: a torn write).
func (c *fileClient) readHeader(hdr []byte, off, size int64) (frameHeader, bool) {
	clear(hdr)
	n := min(int64(headerSize), size-off)
	if _, err := c.f.ReadAt(hdr[:n], off); err != nil && !errors.Is(err, io.EOF) {
		return frameHeader{}, false
	}
	h, ok := decodeHeader(hdr)
	if !ok || off+int64(headerSize)+int64(h.dirLen) > size {
		return frameHeader{}, false
	}
	return h, true
}

// scanFrame finds the next offset from `from` on where a frame with an
// intact header starts, or -1.
func (c *fileClient) scanFrame(from, size int64) (int64, error) {
	magic := []byte{0x57, 0x46, 0x53, 0x31}
	buf := make([]byte, 1<<20)
	hdr := make([]byte, headerSize)
	for pos := from; pos < size; {
		n := min(int64(len(buf)), size-pos)
		if _, err := c.f.ReadAt(buf[:n], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		chunk := buf[:n]
		for i := 0; ; {
			j := bytes.Index(chunk[i:], magic)
			if j < 0 {
				break
			}
			cand := pos + int64(i+j)
			if h, ok := c.readHeader(hdr, cand, size); ok {
				dir := make([]byte, h.dirLen)
				if _, err := c.f.ReadAt(dir, cand+headerSize); err == nil && headerOK(hdr, h, dir) {
					return cand, nil
				}
			}
			i += j + 1
		}
		if n < int64(len(buf)) {
			break
		}
		pos += n - 3 // a magic may straddle two chunks
	}
	return -1, nil
}

// endOfData returns the offset after the last non-zero byte in [from, size).
func (c *fileClient) endOfData(from, size int64) (int64, error) {
	buf := make([]byte, 1<<20)
	end := from
	for pos := from; pos < size; {
		n := min(int64(len(buf)), size-pos)
		if _, err := c.f.ReadAt(buf[:n], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] != 0 {
				end = pos + i + 1
				break
			}
		}
		pos += n
	}
	return end, nil
}

// nextNonZero returns the offset of the first non-zero byte at or after off, or -1.
func (c *fileClient) nextNonZero(off, size int64) (int64, error) {
	buf := make([]byte, 1<<20)
	for pos := off; pos < size; {
		n := min(int64(len(buf)), size-pos)
		if _, err := c.f.ReadAt(buf[:n], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i, b := range buf[:n] {
			if b != 0 {
				return pos + int64(i), nil
			}
		}
		pos += n
	}
	return -1, nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// liveSize is what a live value costs in a compacted file, roughly.
func liveSize(key string, valLen int64) int64 { return int64(len(key)) + valLen + 16 }

func (c *fileClient) deadBytes() int64 { return max(c.end-c.liveBytes, 0) }

func (c *fileClient) Get(ctx context.Context, key string) ([]byte, error) {
	op := storage.GetOperation(key)
	err := c.Batch(ctx, op)
	return op.Value, err
}

func (c *fileClient) Set(ctx context.Context, key string, value []byte) error {
	return c.Batch(ctx, storage.SetOperation(key, value))
}

func (c *fileClient) Delete(ctx context.Context, key string) error {
	return c.Batch(ctx, storage.DeleteOperation(key))
}

// Batch applies ops in order as one frame: either every write is stored
// or none is (the caller gets the error). Gets see the writes before them.
func (c *fileClient) Batch(_ context.Context, ops ...*storage.Operation) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClientClosed
	}
	var writes []op
	removed := map[string]int64{}
	for _, so := range ops {
		switch so.Type {
		case storage.Set:
			rec := c.count(so.Key, so.Value)
			removed[so.Key] = rec // what a later delete in this batch removes
			writes = append(writes, op{kind: opKindSet, key: so.Key, value: so.Value, records: rec})
		case storage.Delete:
			rec, seen := removed[so.Key]
			if !seen {
				rec = c.index[so.Key].records
			}
			removed[so.Key] = 0
			writes = append(writes, op{kind: opKindDelet, key: so.Key, records: rec})
		}
	}
	var valOff int64
	var frameValOff, frameValLen int64
	var valCRC uint32
	if len(writes) > 0 {
		err := c.writeFrame(writes)
		if errors.Is(err, storage.ErrStorageFull) && c.linkDeleted(writes) {
			err = c.writeFrame(writes)
		}
		if err != nil {
			c.tel.writeFailure(c.name, err)
			return err
		}
		h, _ := decodeHeader(c.buf)
		frameValOff = c.end + headerSize + int64(h.dirLen)
		frameValLen = int64(h.valLen)
		valCRC = h.valCRC
		c.cumSet = h.cumSet
		c.end += int64(len(c.buf))
	}
	wi := 0
	for _, so := range ops {
		switch so.Type {
		case storage.Get:
			v, err := c.read(so.Key)
			if err != nil {
				return err
			}
			so.Value = v
		case storage.Set:
			if old, ok := c.index[so.Key]; ok {
				c.liveBytes -= liveSize(so.Key, old.valLen)
			}
			if w := &writes[wi]; w.kind == opKindLink {
				c.index[so.Key] = w.link
			} else {
				c.index[so.Key] = entry{frameValOff: frameValOff, frameValLen: frameValLen, valCRC: valCRC,
					valOff: valOff, valLen: int64(len(so.Value)), records: w.records}
				valOff += int64(len(so.Value))
			}
			c.liveBytes += liveSize(so.Key, int64(len(so.Value)))
			wi++
		case storage.Delete:
			wi++
			if old, ok := c.index[so.Key]; ok {
				c.liveBytes -= liveSize(so.Key, old.valLen)
				delete(c.index, so.Key)
				c.bury(old)
			}
		}
	}
	c.maybeCompact()
	return nil
}

// writeFrame encodes writes into c.buf and writes it at c.end.
func (c *fileClient) writeFrame(writes []op) error {
	var setRecords uint64
	for i := range writes {
		if writes[i].kind != opKindDelet {
			setRecords += uint64(writes[i].records)
		}
	}
	c.buf = appendFrame(c.buf[:0], writes, c.cumSet+setRecords)
	return c.write(c.buf)
}

// bury remembers a deleted value for linkDeleted.
func (c *fileClient) bury(e entry) {
	if e.valLen <= smallFrame {
		return // small values fit in the reserve anyway
	}
	if c.graveCount >= maxGraveyard {
		c.graveyard, c.graveCount = nil, 0
	}
	if c.graveyard == nil {
		c.graveyard = map[int64][]entry{}
	}
	c.graveyard[e.valLen] = append(c.graveyard[e.valLen], e)
	c.graveCount++
}

// linkDeleted turns sets of values that a deleted entry still holds, byte
// for byte, into links; it reports whether any set was turned.
func (c *fileClient) linkDeleted(writes []op) bool {
	linked := false
	for i := range writes {
		w := &writes[i]
		if w.kind != opKindSet || int64(len(w.value)) <= smallFrame {
			continue
		}
		cands := c.graveyard[int64(len(w.value))]
		for j := len(cands) - 1; j >= 0; j-- {
			v, ok := c.readEntry(cands[j])
			if !ok || !bytes.Equal(v, w.value) {
				continue
			}
			w.kind, w.link = opKindLink, cands[j]
			w.link.records = w.records
			c.graveyard[int64(len(w.value))] = append(cands[:j:j], cands[j+1:]...)
			c.graveCount--
			linked = true
			break
		}
	}
	return linked
}

// readEntry reads an entry's value and checks its frame's CRC; the value
// is valid until the next read.
func (c *fileClient) readEntry(e entry) ([]byte, bool) {
	vals := c.frameValues(e)
	if _, err := c.f.ReadAt(vals, e.frameValOff); err != nil || crc32.Checksum(vals, crcTable) != e.valCRC {
		return nil, false
	}
	return vals[e.valOff : e.valOff+e.valLen : e.valOff+e.valLen], true
}

// read returns a copy of key's value, nil when absent. A value that fails
// its checksum (damaged since the start) is dropped and counted.
func (c *fileClient) read(key string) ([]byte, error) {
	e, ok := c.index[key]
	if !ok {
		return nil, nil
	}
	vals := c.frameValues(e)
	if _, err := c.f.ReadAt(vals, e.frameValOff); err != nil {
		return nil, fmt.Errorf("read %q: %w", key, err)
	}
	if crc32.Checksum(vals, crcTable) != e.valCRC {
		c.tel.recordsLost(c.name, reasonCorrupt, e.records)
		c.tel.bytesSkipped(c.name, reasonCorrupt, e.valLen)
		c.logger.Warn("Damaged value skipped", zap.String("file", c.path), zap.String("key", key), zap.Int64("records", e.records))
		c.liveBytes -= liveSize(key, e.valLen)
		delete(c.index, key)
		return nil, nil
	}
	// A copy: the caller keeps the value, not the frame's other values.
	return bytes.Clone(vals[e.valOff : e.valOff+e.valLen]), nil
}

// frameValues returns a buffer for an entry's frame values, reused between
// reads (under c.mu) unless it is large.
func (c *fileClient) frameValues(e entry) []byte {
	if e.frameValLen > 1<<20 {
		return make([]byte, e.frameValLen)
	}
	if int64(cap(c.scratch)) < e.frameValLen {
		c.scratch = make([]byte, e.frameValLen)
	}
	return c.scratch[:e.frameValLen]
}

// write stores one frame at c.end, extending the file first when needed.
func (c *fileClient) write(frame []byte) error {
	if err := c.ensure(int64(len(frame)), len(frame) <= smallFrame); err != nil {
		return err
	}
	if n, err := c.f.WriteAt(frame, c.end); err != nil {
		// Inside preallocated space this is an I/O error; put the zeros back
		// so that the partial frame does not read as damage later.
		_, _ = c.f.WriteAt(make([]byte, n), c.end)
		return storageErr(fmt.Errorf("write %q: %w", c.path, err))
	}
	if c.cfg.Fsync {
		if err := c.f.Sync(); err != nil {
			return storageErr(fmt.Errorf("fsync %q: %w", c.path, err))
		}
	}
	return nil
}

// ensure makes room for n more bytes. Frames other than small ones must
// leave the reserve free, so that the queue's bookkeeping still fits when
// the disk is full.
func (c *fileClient) ensure(n int64, small bool) error {
	need := c.end + n
	limit := func() int64 {
		if small {
			return c.allocated
		}
		return c.allocated - c.cfg.Reserve
	}
	if need <= limit() {
		return nil
	}
	target := need + c.cfg.Reserve
	if step := c.cfg.Preallocate; step > 0 {
		target = (target + step - 1) / step * step
	}
	var werr error
	for c.allocated < target {
		chunk := zeroChunk[:min(int64(len(zeroChunk)), target-c.allocated)]
		w, err := c.f.WriteAt(chunk, c.allocated)
		c.allocated += int64(w)
		if err != nil {
			werr = err
			break
		}
	}
	if need <= limit() {
		return nil
	}
	if werr == nil {
		werr = syscall.ENOSPC
	}
	return storageErr(fmt.Errorf("extend %q to %d bytes: %w", c.path, target, werr))
}

// storageErr marks a full disk with storage.ErrStorageFull.
func storageErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", storage.ErrStorageFull, err)
	}
	return err
}

// maybeCompact rewrites the file when dead bytes outweigh live ones.
func (c *fileClient) maybeCompact() {
	if c.deadBytes() <= max(c.cfg.CompactionMinDead, c.liveBytes) || time.Now().Before(c.nextTry) {
		return
	}
	if err := c.compact(); err != nil {
		c.nextTry = time.Now().Add(10 * time.Second)
		c.logger.Warn("Compaction failed; retrying later", zap.String("file", c.path), zap.Error(err))
	}
}

// compact writes the live values into a new file and swaps it in.
func (c *fileClient) compact() error {
	tmp := c.path + ".compact"
	nf, err := c.open(tmp)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		_ = nf.Close()
		_ = os.Remove(tmp)
		return err
	}
	if err := nf.Truncate(0); err != nil {
		return fail(err)
	}
	index := make(map[string]entry, len(c.index))
	var off int64
	var cum uint64
	var batch []op
	var batchKeys []entry
	var bytesInBatch int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var rec uint64
		for i := range batch {
			rec += uint64(batch[i].records)
		}
		cum += rec
		frame := appendFrame(nil, batch, cum)
		if _, err := nf.WriteAt(frame, off); err != nil {
			return storageErr(err)
		}
		h, _ := decodeHeader(frame)
		valOff := off + headerSize + int64(h.dirLen)
		var within int64
		for i := range batch {
			e := batchKeys[i]
			index[batch[i].key] = entry{frameValOff: valOff, frameValLen: int64(h.valLen), valCRC: h.valCRC, valOff: within, valLen: e.valLen, records: e.records}
			within += e.valLen
		}
		off += int64(len(frame))
		batch, batchKeys, bytesInBatch = batch[:0], batchKeys[:0], 0
		return nil
	}
	for key, e := range c.index {
		v, err := c.read(key)
		if err != nil {
			return fail(err)
		}
		if _, ok := c.index[key]; !ok {
			continue // damaged: read dropped and counted it
		}
		// A large value gets a frame of its own, so that reading it later
		// reads (and checks) only its bytes; small ones share frames of up
		// to 64 KiB.
		if len(v) > smallFrame {
			if err := flush(); err != nil {
				return fail(err)
			}
		}
		batch = append(batch, op{kind: opKindSet, key: key, value: v, records: e.records})
		batchKeys = append(batchKeys, e)
		if bytesInBatch += len(v); len(v) > smallFrame || bytesInBatch >= 64<<10 {
			if err := flush(); err != nil {
				return fail(err)
			}
		}
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	if err := nf.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fail(err)
	}
	syncDir(filepath.Dir(c.path))
	_ = c.f.Close()
	c.f, c.index, c.end, c.allocated, c.cumSet = nf, index, off, off, cum
	c.graveyard, c.graveCount = nil, 0
	c.liveBytes = 0
	for k, e := range index {
		c.liveBytes += liveSize(k, e.valLen)
	}
	return nil
}

// syncDir makes a rename durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// Close syncs and closes the file; later calls fail with errClientClosed.
func (c *fileClient) Close(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.release != nil {
		c.release()
	}
	return errors.Join(c.f.Sync(), c.f.Close())
}
