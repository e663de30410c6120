package exemplars

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"
)

// The WAL holds exemplar records (tsdb/record's, as the TSDB's WAL has
// them) in wlog segments of a directory of its own. It is read after the
// head's WAL, whose replay gives every series back its ref. The ring keeps
// the last capacity exemplars, so the WAL need keep only those: a segment
// is deleted once the segments after it hold capacity exemplars between
// them, and a replay of what is left leaves the ring as it was, less the
// exemplars of series the head no longer holds.

// SegmentSize is the size of an exemplar WAL segment: an exemplar takes
// ~100 bytes in a record, so 100,000 exemplars (the default
// max_exemplars) fill ~3 segments.
const SegmentSize = 4 << 20

// recordExemplars is the most exemplars one WAL record holds: a record
// stays far below a segment.
const recordExemplars = 1024

type wal struct {
	wl    *wlog.WL
	segs  []segCount // oldest first; the last is the one written to
	total int        // exemplars in segs
	enc   record.Encoder
	buf   []byte
}

// segCount is how many exemplars segment seg holds.
type segCount struct{ seg, n int }

// Loss is what a replay could not read of a damaged exemplar WAL.
type Loss struct {
	File  string // the damaged segment, relative to the WAL directory
	Bytes int64  // bytes left out: the damaged segment's from the damage on, and all later segments
	Err   string // what was wrong
}

// OpenWAL replays the exemplar WAL in dir (created when missing) into the
// ring, then logs to it every exemplar Add stores. A damaged or torn
// record ends the replay: the segment is cut before it and later segments
// are deleted (wlog's Repair, as the TSDB repairs its own WAL), and what
// was cut is returned as a Loss. The ring keeps what came before.
func (s *Storage) OpenWAL(dir string, compress compression.Type) (*Loss, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("exemplar WAL directory %q: %w", dir, err)
	}
	first, last, err := wlog.Segments(dir)
	if err != nil {
		return nil, fmt.Errorf("list exemplar WAL segments in %q: %w", dir, err)
	}
	// Opening starts a new segment after the last one.
	wl, err := wlog.NewSize(s.logger, nil, dir, SegmentSize, compress)
	if err != nil {
		return nil, fmt.Errorf("open exemplar WAL in %q: %w", dir, err)
	}
	w := &wal{wl: wl}
	s.mu.Lock()
	defer s.mu.Unlock()
	var loss *Loss
	unknown := 0
	for seg := first; seg >= 0 && seg <= last && loss == nil; seg++ {
		n, u, err := s.replay(dir, seg)
		unknown += u
		w.segs = append(w.segs, segCount{seg: seg, n: n})
		w.total += n
		if err == nil {
			continue
		}
		var cerr *wlog.CorruptionErr
		if !errors.As(err, &cerr) {
			_ = wl.Close()
			return nil, fmt.Errorf("replay exemplar WAL segment %d in %q: %w", seg, dir, err)
		}
		loss = lostFrom(dir, cerr, last)
		// Repair makes the cut segment the one written to.
		if err := wl.Repair(cerr); err != nil {
			_ = wl.Close()
			return loss, fmt.Errorf("repair exemplar WAL in %q: %w", dir, err)
		}
	}
	if loss == nil {
		w.segs = append(w.segs, segCount{seg: last + 1})
	}
	if unknown > 0 {
		if err := s.rewrite(w); err != nil {
			_ = wl.Close()
			return loss, fmt.Errorf("rewrite exemplar WAL in %q: %w", dir, err)
		}
	}
	if err := w.trim(len(s.ring)); err != nil {
		_ = wl.Close()
		return loss, fmt.Errorf("truncate exemplar WAL in %q: %w", dir, err)
	}
	s.wal = w
	return loss, nil
}

// replay adds the exemplars of segment seg to the ring and returns how many
// it read, and how many of them were of series the head does not hold.
// Replayed exemplars have no HasTs, as the TSDB's.
func (s *Storage) replay(dir string, seg int) (n, unknown int, err error) {
	sr, err := wlog.NewSegmentsRangeReader(wlog.SegmentRange{Dir: dir, First: seg, Last: seg})
	if err != nil {
		return 0, 0, err
	}
	defer sr.Close()
	r := wlog.NewReader(sr)
	dec := record.NewDecoder(nil, s.logger)
	var recs []record.RefExemplar
	for r.Next() {
		recs, err = dec.Exemplars(r.Record(), recs[:0])
		if err != nil {
			return n, unknown, &wlog.CorruptionErr{Dir: dir, Segment: seg, Offset: r.Offset(), Err: fmt.Errorf("decode exemplars: %w", err)}
		}
		for _, re := range recs {
			if err := s.add(storage.SeriesRef(re.Ref), exemplar.Exemplar{Labels: re.Labels, Value: re.V, Ts: re.T}); errors.Is(err, ErrUnknownSeries) {
				unknown++
			}
		}
		n += len(recs)
	}
	return n, unknown, r.Err()
}

// rewrite logs the ring's exemplars, oldest first, to a new segment and
// deletes the segments before it. After a replay that met exemplars of
// series the head no longer holds, it keeps them from coming back: a head
// whose WAL was lost or cut gives their refs to new series.
func (s *Storage) rewrite(w *wal) error {
	seg, err := w.wl.NextSegmentSync()
	if err != nil {
		return err
	}
	w.segs, w.total = []segCount{{seg: seg}}, 0
	recs := make([]record.RefExemplar, 0, min(s.used, recordExemplars))
	for i := range s.ring {
		slot := int32((int(s.next) + i) % len(s.ring)) //nolint:gosec // slots are int32 (MaxCapacity)
		en := &s.ring[slot]
		if en.ref == 0 {
			continue
		}
		recs = append(recs, record.RefExemplar{Ref: refOf(en.ref), T: en.ts, V: en.value, Labels: s.labels(slot)})
		if len(recs) == recordExemplars {
			if err := w.log(recs, math.MaxInt); err != nil {
				return err
			}
			recs = recs[:0]
		}
	}
	if err := w.log(recs, math.MaxInt); err != nil {
		return err
	}
	return w.wl.Truncate(seg)
}

// lostFrom returns the loss of cutting segment cerr.Segment at
// cerr.Offset and deleting the segments after it, up to last.
func lostFrom(dir string, cerr *wlog.CorruptionErr, last int) *Loss {
	l := &Loss{File: fmt.Sprintf("%08d", cerr.Segment), Err: cerr.Err.Error()}
	for seg := cerr.Segment; seg <= last; seg++ {
		fi, err := os.Stat(wlog.SegmentName(dir, seg))
		if err != nil {
			continue
		}
		l.Bytes += fi.Size()
		if seg == cerr.Segment {
			l.Bytes -= min(cerr.Offset, fi.Size())
		}
	}
	return l
}

// log writes recs in records of at most recordExemplars and deletes the
// segments a replay no longer needs.
func (w *wal) log(recs []record.RefExemplar, capacity int) error {
	for len(recs) > 0 {
		k := min(len(recs), recordExemplars)
		w.buf = w.enc.Exemplars(recs[:k], w.buf[:0])
		if err := w.wl.Log(w.buf); err != nil {
			return err
		}
		// A record never straddles two segments.
		seg, _, err := w.wl.LastSegmentAndOffset()
		if err != nil {
			return err
		}
		if w.segs[len(w.segs)-1].seg != seg {
			w.segs = append(w.segs, segCount{seg: seg})
		}
		w.segs[len(w.segs)-1].n += k
		w.total += k
		recs = recs[k:]
	}
	return w.trim(capacity)
}

// trim deletes the oldest segments while the later ones hold capacity
// exemplars.
func (w *wal) trim(capacity int) error {
	for len(w.segs) > 1 && w.total-w.segs[0].n >= capacity {
		if err := w.wl.Truncate(w.segs[1].seg); err != nil {
			return err
		}
		w.total -= w.segs[0].n
		w.segs = w.segs[1:]
	}
	return nil
}

// Close closes the WAL; the ring stays readable and keeps later exemplars
// in memory only. It is safe to call twice.
func (s *Storage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wal == nil {
		return nil
	}
	err := s.wal.wl.Close()
	s.wal = nil
	return err
}

func refOf(r storage.SeriesRef) chunks.HeadSeriesRef { return chunks.HeadSeriesRef(r) }

// Import adds the exemplar records of the TSDB WAL in dir (its last
// checkpoint, then the segments after it) to the ring and logs the ones it
// stores: what a store kept in the head's WAL before it had this storage.
// Other records are skipped. It returns how many exemplars it stored; on
// an error, those before it stay.
func (s *Storage) Import(dir string) (int, error) {
	first, last, err := wlog.Segments(dir)
	if err != nil {
		return 0, fmt.Errorf("list WAL segments in %q: %w", dir, err)
	}
	var sources []func() (io.ReadCloser, error)
	cp, cpIndex, err := wlog.LastCheckpoint(dir)
	switch {
	case err == nil:
		sources = append(sources, func() (io.ReadCloser, error) { return wlog.NewSegmentsReader(cp) })
		first = max(first, cpIndex+1)
	case !errors.Is(err, record.ErrNotFound):
		return 0, fmt.Errorf("find the WAL checkpoint in %q: %w", dir, err)
	}
	if last >= 0 && first <= last {
		sources = append(sources, func() (io.ReadCloser, error) {
			return wlog.NewSegmentsRangeReader(wlog.SegmentRange{Dir: dir, First: first, Last: last})
		})
	}
	stored := 0
	dec := record.NewDecoder(nil, s.logger)
	var recs []record.RefExemplar
	hs := make([]Held, 0, recordExemplars)
	for _, open := range sources {
		rc, err := open()
		if err != nil {
			return stored, err
		}
		r := wlog.NewReader(rc)
		for r.Next() {
			if dec.Type(r.Record()) != record.Exemplars {
				continue
			}
			if recs, err = dec.Exemplars(r.Record(), recs[:0]); err != nil {
				rc.Close()
				return stored, fmt.Errorf("decode exemplars in %q: %w", dir, err)
			}
			for _, re := range recs {
				hs = append(hs, Held{Ref: storage.SeriesRef(re.Ref), E: exemplar.Exemplar{Labels: re.Labels, Value: re.V, Ts: re.T}})
				if len(hs) == cap(hs) {
					stored += s.Add(hs)
					hs = hs[:0]
				}
			}
		}
		err = r.Err()
		rc.Close()
		if err != nil {
			return stored, fmt.Errorf("read WAL in %q: %w", dir, err)
		}
	}
	return stored + s.Add(hs), nil
}
