package storeapi

import (
	"fmt"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/thanos-io/thanos/pkg/store/storepb"
)

// wireEncodings are the TSDB chunk encodings the StoreAPI carries as they
// are stored.
var wireEncodings = map[chunkenc.Encoding]storepb.Chunk_Encoding{
	chunkenc.EncXOR:            storepb.Chunk_XOR,
	chunkenc.EncHistogram:      storepb.Chunk_HISTOGRAM,
	chunkenc.EncFloatHistogram: storepb.Chunk_FLOAT_HISTOGRAM,
}

// maxFloatSamples is where a re-encoded XOR chunk is cut, as the TSDB
// cuts its own.
const maxFloatSamples = 120

// appendChunks appends meta's chunk to dst: a copy of its bytes when the
// StoreAPI knows its encoding, else (the start-timestamp encodings of
// weft_store's start_timestamps) its samples re-encoded without start
// timestamps into the encodings Thanos reads, in one chunk or more.
func appendChunks(dst []storepb.AggrChunk, meta chunks.Meta) ([]storepb.AggrChunk, error) {
	c := meta.Chunk
	if enc, ok := wireEncodings[c.Encoding()]; ok {
		return append(dst, storepb.AggrChunk{
			MinTime: meta.MinTime, MaxTime: meta.MaxTime,
			Raw: &storepb.Chunk{Type: enc, Data: append([]byte(nil), c.Bytes()...)},
		}), nil
	}
	rc := rechunker{dst: dst}
	if err := rc.add(c); err != nil {
		return dst, err
	}
	return rc.dst, nil
}

// rechunker re-encodes samples into new chunks.
type rechunker struct {
	dst        []storepb.AggrChunk
	cur        chunkenc.Chunk
	app        chunkenc.Appender
	mint, maxt int64
}

func (r *rechunker) add(c chunkenc.Chunk) error {
	var (
		h  *histogram.Histogram
		fh *histogram.FloatHistogram
	)
	it := c.Iterator(nil)
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		t := it.AtT()
		var err error
		switch vt {
		case chunkenc.ValFloat:
			if r.cur == nil || r.cur.Encoding() != chunkenc.EncXOR || r.cur.NumSamples() >= maxFloatSamples {
				err = r.start(chunkenc.NewXORChunk(), t)
			}
			if err == nil {
				_, v := it.At()
				r.app.Append(0, t, v)
			}
		case chunkenc.ValHistogram:
			_, h = it.AtHistogram(h)
			if r.cur == nil || r.cur.Encoding() != chunkenc.EncHistogram {
				err = r.start(chunkenc.NewHistogramChunk(), t)
			}
			if err == nil {
				err = r.took(t)(r.app.AppendHistogram(nil, 0, t, h, false))
			}
		case chunkenc.ValFloatHistogram:
			_, fh = it.AtFloatHistogram(fh)
			if r.cur == nil || r.cur.Encoding() != chunkenc.EncFloatHistogram {
				err = r.start(chunkenc.NewFloatHistogramChunk(), t)
			}
			if err == nil {
				err = r.took(t)(r.app.AppendFloatHistogram(nil, 0, t, fh, false))
			}
		}
		if err != nil {
			return err
		}
		r.maxt = t
	}
	if err := it.Err(); err != nil {
		return err
	}
	return r.flush()
}

// start flushes the current chunk and continues with nc from time t.
func (r *rechunker) start(nc chunkenc.Chunk, t int64) error {
	if err := r.flush(); err != nil {
		return err
	}
	app, err := nc.Appender()
	if err != nil {
		return err
	}
	r.cur, r.app, r.mint = nc, app, t
	return nil
}

// took handles a histogram appender's answer: no chunk (appended), the
// current chunk recoded, or a new chunk that holds the sample at t.
func (r *rechunker) took(t int64) func(chunkenc.Chunk, bool, chunkenc.Appender, error) error {
	return func(nc chunkenc.Chunk, recoded bool, app chunkenc.Appender, err error) error {
		switch {
		case err != nil:
			return err
		case nc == nil:
		case recoded:
			r.cur, r.app = nc, app
		default:
			if err := r.flush(); err != nil {
				return err
			}
			r.cur, r.app, r.mint = nc, app, t
		}
		return nil
	}
}

func (r *rechunker) flush() error {
	if r.cur == nil || r.cur.NumSamples() == 0 {
		return nil
	}
	enc, ok := wireEncodings[r.cur.Encoding()]
	if !ok {
		return fmt.Errorf("re-encoded chunk has encoding %s", r.cur.Encoding())
	}
	r.dst = append(r.dst, storepb.AggrChunk{MinTime: r.mint, MaxTime: r.maxt, Raw: &storepb.Chunk{Type: enc, Data: r.cur.Bytes()}})
	r.cur, r.app = nil, nil
	return nil
}
