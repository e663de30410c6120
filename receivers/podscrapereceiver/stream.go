package podscrapereceiver

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/textparse"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Bodies are parsed as they arrive: a target reads its body into a buffer
// of at most streamWindow bytes and parses it a chunk at a time, each chunk
// whole lines (protobuf: whole messages, or whole metrics of a family too
// large for the window). Each chunk gets a parser of its own, so a chunk
// must parse on its own exactly as it would in the whole body:
//
//   - Text and OpenMetrics parsers keep the type of the last TYPE line (it
//     decides how le and quantile values are normalised): a chunk starts
//     with the TYPE line of the family the previous one ended in.
//   - The OpenMetrics parser requires "# EOF" at the end of its input: a
//     chunk that is not the body's last ends with a synthetic one. A chunk
//     is never cut right after the last byte read, so a real "# EOF" line
//     ends a chunk only when the body ends there.
//   - The Prometheus text parser stops, without error, at a NUL byte that
//     starts a line: a chunk ends with a comment line whose position the
//     parser must reach, or the body is taken to end there, as it would be.
//   - A protobuf message larger than the window (one metric family) is cut
//     between its metrics into messages of their own, each with the family's
//     name, help and type.
//
// The appender's per-family state (family, type, help) and its series state
// carry over from chunk to chunk.

const (
	// streamWindow is the most of a body a target holds at a time: its
	// buffer grows to this size, not beyond. A line (protobuf: a metric)
	// that does not fit fails the scrape with reason line_too_long.
	streamWindow = 256 << 10
	// minChunkBuffer is the least a target's buffer starts with.
	minChunkBuffer = 4 << 10
	// chunkReserve bytes stay free after the body bytes in the buffer: room
	// for the synthetic line that ends a chunk, the newline the Prometheus
	// text parser appends to its input, and the padding of a protobuf
	// length prefix.
	chunkReserve = 8
	// varintPad is the length of the length prefix of a protobuf
	// sub-message: a varint padded to a fixed length.
	varintPad = 5
)

// bodyFormat is how a body is cut into chunks.
type bodyFormat uint8

const (
	formatText        bodyFormat = iota // Prometheus text 0.0.4
	formatOpenMetrics                   // OpenMetrics text 1.0.0 / 0.0.1
	formatProto                         // delimited MetricFamily messages
)

// chunker reads one body at a time into a bounded buffer and cuts it into
// chunks. The buffer is kept across scrapes.
type chunker struct {
	window int    // most bytes buf grows to
	buf    []byte // len(buf) == cap(buf)

	r      io.Reader
	format bodyFormat
	// drainRest: on a failure, read the rest of the body (up to the body
	// size limit) so that a body over the limit still fails as such.
	drainRest bool
	eof       bool
	// readErr is the body's read failure; the body is not read again.
	readErr error
	// buf[:pre] is the prefix of the chunk being assembled (a TYPE line;
	// for a protobuf family being split, its length prefix and header),
	// buf[pre:n] body bytes not parsed yet. A chunk handed out is
	// buf[:cut] plus a synthetic suffix written over buf[cut:], whose bytes
	// are saved in saved[:suffix]; buf[cut:n] is carried to the next one.
	pre, n, cut int
	suffix      int
	saved       [chunkReserve]byte
	// left is what remains of a protobuf message being split, counted
	// from buf[pre]; 0 when none is.
	left int
}

// reset starts a body. sizeHint (the previous body's length) sizes a new
// buffer.
func (c *chunker) reset(r io.Reader, format bodyFormat, sizeHint int64, drainRest bool) {
	if c.window <= 0 {
		c.window = streamWindow
	}
	if len(c.buf) == 0 {
		size := int64(minChunkBuffer)
		if want := sizeHint + sizeHint/8 + chunkReserve; want > size {
			size = want
		}
		c.buf = make([]byte, min(size, int64(c.window)))
	}
	c.r, c.format, c.drainRest, c.eof, c.readErr = r, format, drainRest, false, nil
	c.pre, c.n, c.cut, c.suffix, c.left = 0, 0, 0, 0, 0
}

// release drops a buffer much larger than the last body needs; the next
// scrape sizes a new one from it.
func (c *chunker) release(bodyLen int64) {
	if int64(len(c.buf)) > 2*bodyLen+minChunkBuffer+chunkReserve {
		c.buf = nil
	}
	c.r = nil
}

func tooLong(window int) error {
	return failf(reasonLineTooLong, "a line (protobuf: a metric) longer than the %d-byte parse window", window)
}

// next returns the next chunk, prefix first (text formats), and whether it
// is the body's last. Each call but the first follows a done.
func (c *chunker) next(prefix []byte) ([]byte, bool, error) {
	p := c.pre
	if c.format != formatProto {
		p = len(prefix)
	}
	carry := c.n - c.cut
	if p+carry > len(c.buf)-chunkReserve {
		return nil, false, tooLong(c.window)
	}
	copy(c.buf[p:], c.buf[c.cut:c.n])
	copy(c.buf, prefix)
	c.pre, c.n, c.cut = p, p+carry, p
	if err := c.fill(); err != nil {
		return nil, false, err
	}
	if c.format == formatProto {
		return c.cutProto()
	}
	return c.cutText()
}

// fill reads until the buffer is full or the body ends, growing the buffer
// to the window once a body outgrows it.
func (c *chunker) fill() error {
	for !c.eof {
		if c.n >= len(c.buf)-chunkReserve {
			if len(c.buf) >= c.window {
				return nil
			}
			grown := make([]byte, c.window)
			copy(grown, c.buf[:c.n])
			c.buf = grown
		}
		m, err := c.r.Read(c.buf[c.n : len(c.buf)-chunkReserve])
		c.n += m
		if err == io.EOF {
			c.eof = true
		} else if err != nil {
			c.readErr = err
			return err
		}
	}
	return nil
}

// done ends the parse of the chunk next handed out.
func (c *chunker) done() {
	copy(c.buf[c.cut:], c.saved[:c.suffix])
	c.suffix = 0
}

// drain reads the rest of the body (into the buffer, discarded) when the
// body is bounded, and returns the read's failure: it takes precedence
// over a parse failure, as when bodies were read whole before parsing.
func (c *chunker) drain() error {
	if c.readErr != nil || !c.drainRest {
		return c.readErr
	}
	for !c.eof {
		_, err := c.r.Read(c.buf)
		if err == io.EOF {
			c.eof = true
		} else if err != nil {
			c.readErr = err
			return err
		}
	}
	return nil
}

// Synthetic lines that end a text chunk which is not the body's last.
const (
	omChunkEnd   = "# EOF\n"
	textChunkEnd = "#\n" // a comment; the parser must reach it
)

// cutText hands out the prefix and the whole lines read.
func (c *chunker) cutText() ([]byte, bool, error) {
	if c.eof {
		// The Prometheus parser appends a newline in place: the reserve
		// has room for it.
		c.cut = c.n
		return c.buf[:c.n], true, nil
	}
	// Not after the last byte read: what ends a chunk is never the end of
	// the body unless the body ended.
	i := -1
	if c.n-1 > c.pre {
		i = bytes.LastIndexByte(c.buf[c.pre:c.n-1], '\n')
	}
	if i < 0 {
		return nil, false, tooLong(c.window)
	}
	c.cut = c.pre + i + 1
	end := omChunkEnd
	if c.format == formatText {
		end = textChunkEnd
	}
	c.suffix = copy(c.saved[:], c.buf[c.cut:c.cut+len(end)])
	copy(c.buf[c.cut:], end)
	if c.format == formatText {
		// Without its newline: the parser appends one in place.
		return c.buf[:c.cut+len(end)-1], false, nil
	}
	return c.buf[:c.cut+len(end)], false, nil
}

// cutProto hands out whole delimited messages; a message larger than the
// window is handed out a few metrics at a time.
func (c *chunker) cutProto() ([]byte, bool, error) {
	if c.left > 0 {
		return c.cutFamily()
	}
	i := 0
	for i < c.n {
		l, vn := protoVarint(c.buf[i:c.n])
		if vn <= 0 || uint64(c.n-i-vn) < l {
			if vn < 0 && i == 0 {
				// Not a length prefix: the parser fails on it as it
				// would in the whole body.
				c.cut = c.n
				return c.buf[:c.n], true, nil
			}
			break
		}
		i += vn + int(l)
	}
	switch {
	case c.eof:
		// A truncated message fails in the parser as in the whole body.
		c.cut = c.n
		return c.buf[:c.n], true, nil
	case i > 0:
		c.cut = i
		return c.buf[:i], false, nil
	}
	// The first message is larger than the (full) window: split it.
	l, vn := protoVarint(c.buf[:c.n])
	if vn <= 0 {
		return nil, false, tooLong(c.window)
	}
	copy(c.buf[varintPad:], c.buf[vn:c.n])
	c.n += varintPad - vn
	c.pre, c.left = varintPad, int(l)
	// Its fields before the first metric (name, help, type) start every
	// sub-message.
	for {
		end := min(c.n, c.pre+c.left)
		f, num, err := protoField(c.buf[c.pre:end])
		if err != nil {
			return nil, false, err
		}
		if f == 0 {
			return nil, false, tooLong(c.window)
		}
		if num == 4 {
			break
		}
		c.pre += f
		c.left -= f
	}
	return c.cutFamily()
}

// cutFamily hands out the next metrics of a message being split as a
// message of their own: length prefix, the family's header, metrics.
func (c *chunker) cutFamily() ([]byte, bool, error) {
	end := min(c.n, c.pre+c.left)
	i := c.pre
	for i < end {
		f, num, err := protoField(c.buf[i:end])
		if err != nil {
			return nil, false, err
		}
		if f == 0 {
			break
		}
		if num >= 1 && num <= 3 {
			// Would change the family of the metrics handed out already.
			return nil, false, failf(reasonLineTooLong, "a protobuf metric family larger than the %d-byte parse window has its name, help or type after its metrics", c.window)
		}
		i += f
	}
	if i == c.pre {
		if c.eof {
			return nil, false, failf(reasonParse, "truncated protobuf message: %d bytes missing", c.left-(c.n-c.pre))
		}
		return nil, false, tooLong(c.window)
	}
	putPaddedVarint(c.buf[:varintPad], uint64(i-varintPad))
	c.left -= i - c.pre
	c.cut = i
	if c.left == 0 {
		c.pre = 0
	}
	return c.buf[:i], c.eof && c.left == 0 && i == c.n, nil
}

// protoVarint decodes the length prefix of a delimited message as the
// protobuf parser does (at most 5 bytes): its value and length, 0 if b
// ends within it, -1 if it is no such varint.
func protoVarint(b []byte) (uint64, int) {
	var x uint64
	for k := 0; k < varintPad; k++ {
		if k >= len(b) {
			return 0, 0
		}
		x |= uint64(b[k]&0x7f) << (7 * k)
		if b[k] < 0x80 {
			return x, k + 1
		}
	}
	return 0, -1
}

// putPaddedVarint writes v as a varint of exactly len(dst) bytes.
func putPaddedVarint(dst []byte, v uint64) {
	for k := range dst {
		dst[k] = byte(v&0x7f) | 0x80
		v >>= 7
	}
	dst[len(dst)-1] &= 0x7f
}

// protoField returns the length and number of the protobuf field at the
// start of b; length 0 if b ends within it.
func protoField(b []byte) (int, int, error) {
	tag, n := uvarint(b)
	if n == 0 {
		return 0, 0, nil
	}
	if n < 0 {
		return 0, 0, failf(reasonParse, "protobuf: invalid field tag")
	}
	var size uint64
	switch tag & 7 {
	case 0: // varint
		_, m := uvarint(b[n:])
		if m < 0 {
			return 0, 0, failf(reasonParse, "protobuf: invalid varint")
		}
		if m == 0 {
			return 0, 0, nil
		}
		size = uint64(n + m)
	case 1: // 64-bit
		size = uint64(n + 8)
	case 2: // length-delimited
		l, m := uvarint(b[n:])
		if m < 0 {
			return 0, 0, failf(reasonParse, "protobuf: invalid length")
		}
		if m == 0 || l > uint64(len(b)-n-m) {
			return 0, 0, nil
		}
		size = uint64(n+m) + l
	case 5: // 32-bit
		size = uint64(n + 4)
	case 3: // group (deprecated): the parser skips it, this cannot
		return 0, 0, failf(reasonLineTooLong, "a protobuf metric family larger than the parse window holds a group field")
	default:
		return 0, 0, failf(reasonParse, "protobuf: invalid wire type %d", tag&7)
	}
	if size > uint64(len(b)) {
		return 0, 0, nil
	}
	return int(size), int(tag >> 3), nil
}

// uvarint decodes a varint of at most 10 bytes: its value and length, 0 if
// b ends within it, -1 if it is too long.
func uvarint(b []byte) (uint64, int) {
	var x uint64
	for k := 0; k < 10; k++ {
		if k >= len(b) {
			return 0, 0
		}
		x |= uint64(b[k]&0x7f) << (7 * k)
		if b[k] < 0x80 {
			return x, k + 1
		}
	}
	return 0, -1
}

// formatOf returns how bodies of a content type are cut: the format of the
// parser textparse picks for it.
func (a *appender) formatOf(contentType string) (bodyFormat, error) {
	if a.hasFmt && a.fmtCT == contentType {
		return a.fmt, nil
	}
	p, err := textparse.New(nil, contentType, a.symbols, parserOptions())
	var f bodyFormat
	switch p.(type) {
	case *textparse.PromParser:
		f = formatText
	case *textparse.OpenMetricsParser:
		f = formatOpenMetrics
	case *textparse.ProtobufParser:
		f = formatProto
	case nil:
		return 0, failf(reasonContentType, "content type %q: %w", contentType, err)
	default:
		return 0, failf(reasonContentType, "content type %q: parser %T cannot stream", contentType, p)
	}
	a.fmtCT, a.fmt, a.hasFmt = contentType, f, true
	return f, nil
}

// appendTypeLine appends the TYPE line of the family the parse is in, which
// puts a parser of the next chunk in the state the previous one ended in;
// nothing before the first TYPE line. The name is quoted: the parsers
// return it unquoted and with its escapes, as it is read back.
func (s *parseState) appendTypeLine(dst []byte, format bodyFormat) []byte {
	if !s.typed || format == formatProto {
		return dst
	}
	typ := string(s.famType)
	if format == formatText && s.famType == model.MetricTypeUnknown {
		typ = "untyped"
	}
	dst = append(dst, `# TYPE "`...)
	dst = append(dst, s.family...)
	dst = append(dst, `" `...)
	dst = append(dst, typ...)
	return append(dst, '\n')
}

// appendStream parses a body from r chunk by chunk through c and appends
// its data points to ms, as appendBody does with a whole body. On error the
// caller discards ms and calls fail.
func (a *appender) appendStream(c *chunker, r io.Reader, contentType string, now time.Time, ms pmetric.MetricSlice, sizeHint int64, drainRest bool) (parseStats, error) {
	format, err := a.formatOf(contentType)
	if err != nil {
		a.iter++
		return parseStats{}, err
	}
	c.reset(r, format, sizeHint, drainRest)
	a.begin(contentType, now, ms)
	s := &a.cur
	for {
		a.typeLine = s.appendTypeLine(a.typeLine[:0], format)
		chunk, final, err := c.next(a.typeLine)
		if err != nil {
			return s.st, a.drainFirst(c, err)
		}
		s.sentinel, s.seen = nil, false
		if format == formatText && !final {
			s.sentinel = &chunk[len(chunk)-1]
		}
		err = a.parseChunk(chunk, format)
		c.done()
		if err != nil {
			return s.st, a.drainFirst(c, err)
		}
		if final {
			break
		}
		if s.sentinel != nil && !s.seen {
			// The parser stopped at a NUL byte starting a line: the body
			// ends there for it, as it would whole.
			if err := c.drain(); err != nil {
				return s.st, err
			}
			break
		}
	}
	s.sentinel = nil
	return a.commit(), nil
}

// drainFirst returns the failure of reading the rest of the body if there
// is one, else err.
func (a *appender) drainFirst(c *chunker, err error) error {
	if derr := c.drain(); derr != nil {
		return derr
	}
	return err
}

// String names a body format in test output.
func (f bodyFormat) String() string {
	switch f {
	case formatText:
		return "text"
	case formatOpenMetrics:
		return "openmetrics"
	case formatProto:
		return "protobuf"
	}
	return fmt.Sprintf("bodyFormat(%d)", uint8(f))
}
