package containerlogsreceiver

import (
	"bytes"
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// format is the on-disk layout of one container log file. It is detected
// from the first line that parses and then kept for the life of the file.
type format uint8

const (
	formatUnknown format = iota
	formatCRI            // <RFC3339Nano> <stdout|stderr> <P|F>[:tags] <message>
	formatDocker         // {"log":"...","stream":"...","time":"..."}
)

func (f format) String() string {
	switch f {
	case formatCRI:
		return "cri"
	case formatDocker:
		return "docker"
	default:
		return "unknown"
	}
}

// stream is the standard stream a line was written to.
type stream uint8

const (
	streamStdout stream = iota
	streamStderr
	streamUnknown
)

func (s stream) String() string {
	switch s {
	case streamStdout:
		return "stdout"
	case streamStderr:
		return "stderr"
	default:
		return "unknown"
	}
}

// entry is one parsed physical line. msg aliases either the input line or
// the parser's scratch buffer; it is valid until the next parse call.
type entry struct {
	ts      int64 // Unix nanoseconds; 0 when the line carries no time
	stream  stream
	partial bool // more of the same message follows (CRI P, docker log without "\n")
	msg     []byte
}

var (
	errCRIFields  = errors.New("cri: expected <time> <stream> <tag> <message>")
	errCRIStream  = errors.New("cri: stream is neither stdout nor stderr")
	errCRITag     = errors.New("cri: tag is neither P nor F")
	errTime       = errors.New("timestamp is not RFC 3339")
	errJSONSyntax = errors.New("docker: line is not a JSON object")
)

// detectFormat guesses the format of a file from one of its lines.
func detectFormat(line []byte) format {
	line = trimLeftSpace(line)
	if len(line) == 0 {
		return formatUnknown
	}
	if line[0] == '{' {
		return formatDocker
	}
	var e entry
	if parseCRI(line, &e) == nil {
		return formatCRI
	}
	return formatUnknown
}

// parseCRI parses one CRI line (without its trailing newline). It does not
// allocate; e.msg aliases line.
func parseCRI(line []byte, e *entry) error {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return errCRIFields
	}
	ts, ok := parseRFC3339(line[:sp])
	if !ok {
		return errTime
	}
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return errCRIFields
	}
	switch string(rest[:sp]) { // no allocation: the compiler compares in place
	case "stdout":
		e.stream = streamStdout
	case "stderr":
		e.stream = streamStderr
	default:
		return errCRIStream
	}
	rest = rest[sp+1:]
	// The tag field is ':'-separated; its first element is P or F.
	tagEnd := bytes.IndexByte(rest, ' ')
	var tag []byte
	if tagEnd < 0 {
		tag, rest = rest, nil // "stdout F" with no space and no message
	} else {
		tag, rest = rest[:tagEnd], rest[tagEnd+1:]
	}
	if len(tag) == 0 || (len(tag) > 1 && tag[1] != ':') {
		return errCRITag
	}
	switch tag[0] {
	case 'P':
		e.partial = true
	case 'F':
		e.partial = false
	default:
		return errCRITag
	}
	e.ts = ts
	e.msg = rest
	return nil
}

// dockerParser parses docker json-file lines. It keeps a scratch buffer for
// the unescaped message so that parsing does not allocate once warm.
type dockerParser struct {
	scratch []byte
}

// parse parses one docker json-file line. Unknown keys are skipped. A "log"
// value that does not end in "\n" is a partial record.
func (p *dockerParser) parse(line []byte, e *entry) error {
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return errJSONSyntax
	}
	i++
	e.ts, e.stream, e.partial, e.msg = 0, streamUnknown, false, nil
	gotLog := false
	p.scratch = p.scratch[:0]
	for {
		i = skipSpace(line, i)
		if i >= len(line) {
			return errJSONSyntax
		}
		if line[i] == '}' {
			break
		}
		if line[i] == ',' {
			i = skipSpace(line, i+1)
		}
		if i >= len(line) || line[i] != '"' {
			return errJSONSyntax
		}
		keyStart := i + 1
		keyEnd, ok := rawStringEnd(line, keyStart)
		if !ok {
			return errJSONSyntax
		}
		key := line[keyStart:keyEnd]
		i = skipSpace(line, keyEnd+1)
		if i >= len(line) || line[i] != ':' {
			return errJSONSyntax
		}
		i = skipSpace(line, i+1)
		if i >= len(line) {
			return errJSONSyntax
		}
		switch string(key) {
		case "log":
			if line[i] != '"' {
				return errJSONSyntax
			}
			var end int
			p.scratch, end, ok = appendUnquoted(p.scratch[:0], line, i+1)
			if !ok {
				return errJSONSyntax
			}
			gotLog = true
			i = end
		case "stream":
			if line[i] != '"' {
				return errJSONSyntax
			}
			end, ok := rawStringEnd(line, i+1)
			if !ok {
				return errJSONSyntax
			}
			switch string(line[i+1 : end]) {
			case "stdout":
				e.stream = streamStdout
			case "stderr":
				e.stream = streamStderr
			}
			i = end + 1
		case "time":
			if line[i] != '"' {
				return errJSONSyntax
			}
			end, ok := rawStringEnd(line, i+1)
			if !ok {
				return errJSONSyntax
			}
			ts, ok := parseRFC3339(line[i+1 : end])
			if !ok {
				return errTime
			}
			e.ts = ts
			i = end + 1
		default:
			end, ok := skipValue(line, i, 0)
			if !ok {
				return errJSONSyntax
			}
			i = end
		}
	}
	if !gotLog {
		e.msg = p.scratch[:0]
		return nil
	}
	msg := p.scratch
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	} else {
		e.partial = true
	}
	e.msg = msg
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

func trimLeftSpace(b []byte) []byte {
	return b[skipSpace(b, 0):]
}

// rawStringEnd returns the index of the closing quote of the JSON string
// whose contents start at i.
func rawStringEnd(b []byte, i int) (int, bool) {
	for i < len(b) {
		switch b[i] {
		case '"':
			return i, true
		case '\\':
			i += 2
		default:
			i++
		}
	}
	return 0, false
}

// skipValue skips one JSON value starting at i and returns the index after it.
func skipValue(b []byte, i, depth int) (int, bool) {
	if depth > 64 || i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		end, ok := rawStringEnd(b, i+1)
		return end + 1, ok
	case '{', '[':
		closer := byte('}')
		if b[i] == '[' {
			closer = ']'
		}
		i = skipSpace(b, i+1)
		for {
			if i >= len(b) {
				return 0, false
			}
			if b[i] == closer {
				return i + 1, true
			}
			var ok bool
			i, ok = skipValue(b, i, depth+1)
			if !ok {
				return 0, false
			}
			i = skipSpace(b, i)
			if i < len(b) && (b[i] == ',' || b[i] == ':') {
				i = skipSpace(b, i+1)
			}
		}
	default: // number, true, false, null
		start := i
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' {
			i++
		}
		return i, i > start
	}
}

// appendUnquoted decodes the JSON string whose contents start at i into dst
// and returns the index after the closing quote. Invalid escapes decode to
// U+FFFD rather than failing, so that a damaged line keeps its text.
func appendUnquoted(dst, b []byte, i int) ([]byte, int, bool) {
	for i < len(b) {
		// Copy the run of plain bytes in one go.
		j := i
		for j < len(b) && b[j] != '"' && b[j] != '\\' {
			j++
		}
		dst = append(dst, b[i:j]...)
		i = j
		if i >= len(b) {
			return dst, 0, false
		}
		if b[i] == '"' {
			return dst, i + 1, true
		}
		// Escape.
		if i+1 >= len(b) {
			return dst, 0, false
		}
		c := b[i+1]
		i += 2
		switch c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'n':
			dst = append(dst, '\n')
		case 't':
			dst = append(dst, '\t')
		case 'r':
			dst = append(dst, '\r')
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'u':
			r, ok := hex4(b, i)
			if !ok {
				dst = utf8.AppendRune(dst, utf8.RuneError)
				continue
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
					if r2, ok := hex4(b, i+2); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							r = dec
							i += 6
						}
					}
				}
				if utf16.IsSurrogate(r) {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			dst = utf8.AppendRune(dst, utf8.RuneError)
		}
	}
	return dst, 0, false
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// parseRFC3339 parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)" into Unix
// nanoseconds without allocating (time.Parse needs a string and is slower).
func parseRFC3339(b []byte) (int64, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't' && b[10] != ' ') ||
		b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
		return 0, false
	}
	i := 19
	var nanos int64
	if b[i] == '.' || b[i] == ',' {
		i++
		start := i
		scale := int64(100_000_000)
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			nanos += int64(b[i]-'0') * scale
			scale /= 10
			i++
		}
		if i == start {
			return 0, false
		}
	}
	if i >= len(b) {
		return 0, false
	}
	var offset int64
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b)-i != 6 || b[i+3] != ':' {
			return 0, false
		}
		oh, ok1 := digits(b[i+1 : i+3])
		om, ok2 := digits(b[i+4 : i+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		offset = int64(oh*3600 + om*60)
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return 0, false
	}
	if i != len(b) {
		return 0, false
	}
	days := daysFromCivil(int64(year), int64(month), int64(day))
	secs := days*86400 + int64(hour*3600+minute*60+sec) - offset
	return secs*1_000_000_000 + nanos, true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysFromCivil returns the number of days from 1970-01-01 to the given
// proleptic Gregorian date (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
