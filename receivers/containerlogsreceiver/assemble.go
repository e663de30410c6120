package containerlogsreceiver

import (
	"regexp"
	"time"
)

// record is one logical log message, ready to become a LogRecord. body
// aliases a buffer owned by the parser, the assembler or the joiner and is
// valid until the next call that produced it.
type record struct {
	ts         int64
	stream     stream
	body       []byte
	truncated  bool  // longer than max_log_size; the rest was dropped and counted
	incomplete bool  // a partial record whose end never arrived (flushed on timeout or at file end)
	start      int64 // file offset of the record's first physical line
}

// pending is a message being reassembled from partial lines of one stream.
type pending struct {
	active    bool
	truncated bool
	ts        int64
	start     int64
	last      time.Time
	buf       []byte
}

// appendCapped appends src to dst up to max bytes in total and reports
// whether anything was cut off.
func appendCapped(dst, src []byte, maxLen int) ([]byte, bool) {
	room := maxLen - len(dst)
	if room >= len(src) {
		return append(dst, src...), false
	}
	if room > 0 {
		dst = append(dst, src[:room]...)
	}
	return dst, true
}

// assembler joins partial lines (CRI P…F, docker records without "\n")
// per stream, so interleaved stdout and stderr are kept apart.
type assembler struct {
	maxLen int
	s      [3]pending
}

// add takes one parsed line that starts at file offset off. It returns a
// complete record when the line ends a message.
func (a *assembler) add(e *entry, off int64, now time.Time) (record, bool) {
	p := &a.s[e.stream]
	if !p.active {
		if !e.partial { // the common case: a whole line, no copy
			body, trunc := e.msg, false
			if len(body) > a.maxLen {
				body, trunc = body[:a.maxLen], true
			}
			return record{ts: e.ts, stream: e.stream, body: body, truncated: trunc, start: off}, true
		}
		p.active, p.truncated, p.ts, p.start, p.buf = true, false, e.ts, off, p.buf[:0]
	}
	var cut bool
	p.buf, cut = appendCapped(p.buf, e.msg, a.maxLen)
	p.truncated = p.truncated || cut
	p.last = now
	if e.partial {
		return record{}, false
	}
	p.active = false
	return record{ts: p.ts, stream: e.stream, body: p.buf, truncated: p.truncated, start: p.start}, true
}

// expired returns the pending message of one stream whose last fragment is
// older than timeout (all of them when timeout is 0), flagged incomplete.
func (a *assembler) expired(now time.Time, timeout time.Duration) (record, bool) {
	for i := range a.s {
		p := &a.s[i]
		if p.active && (timeout == 0 || now.Sub(p.last) >= timeout) {
			p.active = false
			return record{ts: p.ts, stream: stream(i), body: p.buf, truncated: p.truncated, incomplete: true, start: p.start}, true
		}
	}
	return record{}, false
}

// minStart is the smallest file offset of a message still pending, or -1.
func (a *assembler) minStart() int64 {
	m := int64(-1)
	for i := range a.s {
		if a.s[i].active && (m < 0 || a.s[i].start < m) {
			m = a.s[i].start
		}
	}
	return m
}

// release frees the buffers of streams with nothing pending (an idle file
// keeps none).
func (a *assembler) release() {
	for i := range a.s {
		if !a.s[i].active {
			a.s[i].buf = nil
		}
	}
}

// reset forgets everything pending (after a truncation has been handled).
func (a *assembler) reset() {
	for i := range a.s {
		a.s[i].active = false
	}
}

// group is a multi-line message being collected for one stream.
type group struct {
	active     bool
	truncated  bool
	incomplete bool
	ts         int64
	start      int64
	last       time.Time
	buf        []byte
}

// joiner joins records into multi-line messages: a record that matches
// start begins a new message, any other record is appended to the current
// one with a "\n" between them.
type joiner struct {
	start  *regexp.Regexp
	maxLen int
	g      [3]group
	out    []byte // the buffer of the last emitted message (swapped with a group's)
}

func (j *joiner) add(r record, now time.Time) (record, bool) {
	g := &j.g[r.stream]
	var out record
	emitted := false
	if g.active && j.start.Match(r.body) {
		out, emitted = j.take(int(r.stream)), true
	}
	if !g.active {
		g.active, g.truncated, g.incomplete, g.ts, g.start, g.buf = true, r.truncated, r.incomplete, r.ts, r.start, g.buf[:0]
		var cut bool
		g.buf, cut = appendCapped(g.buf, r.body, j.maxLen)
		g.truncated = g.truncated || cut
	} else {
		var cut1, cut2 bool
		g.buf, cut1 = appendCapped(g.buf, []byte{'\n'}, j.maxLen)
		g.buf, cut2 = appendCapped(g.buf, r.body, j.maxLen)
		g.truncated = g.truncated || r.truncated || cut1 || cut2
		g.incomplete = g.incomplete || r.incomplete
	}
	g.last = now
	return out, emitted
}

func (j *joiner) take(i int) record {
	g := &j.g[i]
	g.active = false
	r := record{ts: g.ts, stream: stream(i), body: g.buf, truncated: g.truncated, incomplete: g.incomplete, start: g.start}
	g.buf, j.out = j.out[:0], g.buf
	return r
}

// expired returns one group idle for at least timeout (any when timeout is 0).
func (j *joiner) expired(now time.Time, timeout time.Duration) (record, bool) {
	for i := range j.g {
		g := &j.g[i]
		if g.active && (timeout == 0 || now.Sub(g.last) >= timeout) {
			return j.take(i), true
		}
	}
	return record{}, false
}

// release frees the buffers of streams with nothing pending and of the
// last emitted message (an idle file keeps none).
func (j *joiner) release() {
	for i := range j.g {
		if !j.g[i].active {
			j.g[i].buf = nil
		}
	}
	j.out = nil
}

func (j *joiner) minStart() int64 {
	m := int64(-1)
	for i := range j.g {
		if j.g[i].active && (m < 0 || j.g[i].start < m) {
			m = j.g[i].start
		}
	}
	return m
}
