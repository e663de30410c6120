package podscrapereceiver

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"unsafe"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
)

// OpenMetrics exemplars are read from the sample's line here rather than
// by textparse.OpenMetricsParser.Exemplar, which first copies the whole
// line (series and exemplar, ~350 bytes for an Envoy series) into a new
// string and takes the exemplar's labels from it: for a target with an
// exemplar on most of 100k series, ~30 MB of garbage per scrape, which
// the process's RSS (its heap's high-water mark) shows. Here only the
// exemplar's label set, "{...}", is copied (~70 bytes for a trace and span
// ID), and the labels are substrings of that copy, as the parser's are of
// its: the labels stay valid whatever labels implementation Prometheus is
// built with.
//
// The parser has accepted the line when this runs (Next returned it), so
// the syntax is known to be OpenMetrics'; anything unexpected makes
// omExemplar give up (ok false), and the caller asks the parser. The
// result is the parser's: label names and values as the line has them
// (quotes stripped, escapes kept, as Exemplar keeps them), the labels
// sorted, the value's NaN made Prometheus's normal NaN, the timestamp in
// milliseconds as int64(seconds × 1000). TestOMExemplarMatchesParser and
// FuzzOMExemplar hold it to the parser's.
//
// builderCopies: with Prometheus's default labels implementation
// (stringlabels), ScratchBuilder.Labels copies every name and value into
// the Labels' own string, so the label set is read in place, without
// even the "{...}" copy (~5 MB per scrape of 75k exemplars);
// TestOMExemplarOwnsLabels overwrites the line after reading it. The
// other implementations keep the strings Add was given.
const builderCopies = labels.ImplementationName == "stringlabels"

// omLineRest returns the rest of series' line in b: what follows series up
// to the line feed. ok is false unless series lies within b, as the
// OpenMetrics parser's Series() does within the chunk it parses.
func omLineRest(b, series []byte) (rest []byte, ok bool) {
	if len(series) == 0 {
		return nil, false
	}
	off := cap(b) - cap(series)
	if off < 0 || off+len(series) > len(b) || &b[off] != &series[0] {
		return nil, false
	}
	rest = b[off+len(series):]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[:i]
	}
	return rest, true
}

// omExemplar reads the exemplar of a sample line into e, from rest (the
// line after the series: " value [timestamp] [# {labels} value
// [timestamp]]"). found says whether the line has one; ok false means
// rest could not be read here (see above).
func omExemplar(rest []byte, sb *labels.ScratchBuilder, e *exemplar.Exemplar) (found, ok bool) {
	i := bytes.IndexByte(rest, '#') // neither a value nor a timestamp has one
	if i < 0 {
		return false, true
	}
	ex := bytes.TrimLeft(rest[i+1:], " ")
	end := omLabelSetEnd(ex)
	if end < 0 {
		return true, false
	}
	var s string
	if builderCopies {
		s = unsafe.String(&ex[0], end) // "{...}", read in place
	} else {
		s = string(ex[:end]) // "{...}": the one copy the labels share
	}
	sb.Reset()
	if !omAddLabels(s[1:len(s)-1], sb) {
		return true, false
	}
	v, ts, hasTs, ok := omExemplarValue(ex[end:])
	if !ok {
		return true, false
	}
	sb.Sort()
	*e = exemplar.Exemplar{Labels: sb.Labels(), Value: v, Ts: ts, HasTs: hasTs}
	return true, true
}

// omLabelSetEnd returns the end of the label set "{...}" that b starts
// with (the index after its "}"), or -1.
func omLabelSetEnd(b []byte) int {
	if len(b) == 0 || b[0] != '{' {
		return -1
	}
	for j := 1; j < len(b); j++ {
		switch b[j] {
		case '}':
			return j + 1
		case '"':
			k := omQuoteEnd(b, j)
			if k < 0 {
				return -1
			}
			j = k
		}
	}
	return -1
}

// omQuoteEnd returns the index of the quote that closes the quoted string
// starting at b[start], or -1.
func omQuoteEnd[T string | []byte](b T, start int) int {
	for k := start + 1; k < len(b); k++ {
		switch b[k] {
		case '\\':
			k++
		case '"':
			return k
		}
	}
	return -1
}

// omAddLabels adds the pairs of a label set's inside (name="value", ...,
// a trailing comma allowed; names bare or quoted) to sb, as substrings of
// s.
func omAddLabels(s string, sb *labels.ScratchBuilder) bool {
	for len(s) > 0 {
		var name string
		if s[0] == '"' {
			k := omQuoteEnd(s, 0)
			if k < 0 {
				return false
			}
			name, s = s[1:k], s[k+1:]
		} else {
			k := strings.IndexByte(s, '=')
			if k <= 0 {
				return false
			}
			name, s = s[:k], s[k:]
		}
		if len(s) < 2 || s[0] != '=' || s[1] != '"' {
			return false
		}
		k := omQuoteEnd(s, 1)
		if k < 0 {
			return false
		}
		sb.Add(name, s[2:k])
		s = s[k+1:]
		switch {
		case len(s) == 0:
		case s[0] == ',':
			s = s[1:]
		default:
			return false
		}
	}
	return true
}

// omExemplarValue reads " value [timestamp]" after an exemplar's labels.
func omExemplarValue(b []byte) (v float64, ts int64, hasTs, ok bool) {
	var tok [2][]byte
	n := 0
	for {
		b = bytes.TrimLeft(b, " ")
		if len(b) == 0 {
			break
		}
		if n == len(tok) {
			return 0, 0, false, false
		}
		k := bytes.IndexByte(b, ' ')
		if k < 0 {
			k = len(b)
		}
		tok[n], b = b[:k], b[k:]
		n++
	}
	if n == 0 {
		return 0, 0, false, false
	}
	v, err := omParseFloat(tok[0])
	if err != nil {
		return 0, 0, false, false
	}
	if math.IsNaN(v) {
		v = math.Float64frombits(value.NormalNaN)
	}
	if n == 1 {
		return v, 0, false, true
	}
	sec, err := omParseFloat(tok[1])
	if err != nil || math.IsNaN(sec) || math.IsInf(sec, 0) {
		return 0, 0, false, false
	}
	return v, int64(sec * 1000), true, true
}

// omParseFloat parses a float as the text parsers do: Go's syntax without
// the hexadecimal exponent and underscores of Go 1.13.
func omParseFloat(b []byte) (float64, error) {
	if bytes.ContainsAny(b, "pP_") {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseFloat(string(b), 64)
}
