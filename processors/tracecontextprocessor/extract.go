package tracecontextprocessor

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// source tells which rule produced an ID; precedence follows this order.
type source uint8

const (
	sourceNone        source = iota
	sourceField              // a name configured under fields::trace_id
	sourceTraceparent        // a W3C traceparent value
	sourceB3Single           // a B3 single-header value
	sourceKey                // a built-in key: trace_id, traceId, x-b3-traceid, ...
)

func (s source) String() string {
	switch s {
	case sourceField:
		return "field"
	case sourceTraceparent:
		return "traceparent"
	case sourceB3Single:
		return "b3"
	case sourceKey:
		return "key"
	}
	return "none"
}

// ids is what the extractor found in one record.
type ids struct {
	trace    [16]byte
	span     [8]byte
	flags    uint8 // W3C trace flags, valid if hasFlags
	hasSpan  bool
	hasFlags bool
	src      source
}

// extractor finds trace context in log lines. It is immutable after
// construction and safe for concurrent use.
type extractor struct {
	traceFields []string // configured, matched exactly, in order
	spanFields  []string
}

func newExtractor(f FieldsConfig) *extractor {
	return &extractor{traceFields: f.TraceID, spanFields: f.SpanID}
}

// extractValue searches a body or attribute value: a string is scanned as a
// log line, a map is searched by key.
func (e *extractor) extractValue(v pcommon.Value, out *ids) bool {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return e.extractString(v.Str(), out)
	case pcommon.ValueTypeMap:
		return e.extractMap(v.Map(), out)
	}
	return false
}

// extractString scans one log line. It does not allocate.
//
// Precedence, first match wins:
//  1. a configured trace field (fields::trace_id, in list order);
//  2. a W3C traceparent value anywhere in the line;
//  3. a B3 single-header value (<trace>-<span>[-<sampled>[-<parent>]]);
//  4. the leftmost built-in trace key (trace_id, traceId, trace.id, traceID,
//     x-b3-traceid, ...).
//
// For 1 and 4 the span ID comes from a configured span field, else from the
// leftmost built-in span key; flags come from x-b3-sampled when the trace ID
// came from x-b3-traceid.
func (e *extractor) extractString(s string, out *ids) bool {
	*out = ids{}
	for _, name := range e.traceFields {
		if t, ok := findNamed(s, name, true); ok {
			out.trace, out.src = t, sourceField
			e.findSpan(s, out)
			return true
		}
	}
	if scanDashed(s, out) {
		return true
	}
	if t, b3, ok := findTraceKey(s); ok {
		out.trace, out.src = t, sourceKey
		e.findSpan(s, out)
		if b3 {
			if sampled, ok := findB3Sampled(s); ok {
				out.flags, out.hasFlags = sampled, true
			}
		}
		return true
	}
	return false
}

func (e *extractor) findSpan(s string, out *ids) {
	for _, name := range e.spanFields {
		if v, ok := findNamed(s, name, false); ok {
			copy(out.span[:], v[8:])
			out.hasSpan = true
			return
		}
	}
	if sp, ok := findSpanKey(s); ok {
		out.span, out.hasSpan = sp, true
	}
}

// ---- byte classes ----

func isLowerHex(c byte) bool { return c-'0' < 10 || c-'a' < 6 }

func isHex(c byte) bool { return c-'0' < 10 || (c|0x20)-'a' < 6 }

func isAlnum(c byte) bool { return c-'0' < 10 || (c|0x20)-'a' < 26 }

// leadBoundary reports whether c may precede a key or an unkeyed ID: not a
// character that would make it part of a longer word, name or number.
func leadBoundary(c byte) bool {
	return !isAlnum(c) && c != '_' && c != '-' && c != '.'
}

// trailBoundary reports whether c may follow an ID.
func trailBoundary(c byte) bool {
	return !isAlnum(c) && c != '_' && c != '-'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// decodeHex decodes len(dst)*2 hex digits from s (validated by the caller).
func decodeHex(dst []byte, s string) {
	for i := range dst {
		dst[i] = unhex(s[2*i])<<4 | unhex(s[2*i+1])
	}
}

// parseTraceHex decodes a 32-digit trace ID, or a 16-digit one left-padded
// with zeros (the B3 rule for 64-bit trace IDs). It rejects an all-zero ID.
func parseTraceHex(h string) ([16]byte, bool) {
	var t [16]byte
	switch len(h) {
	case 32:
		decodeHex(t[:], h)
	case 16:
		decodeHex(t[8:], h)
	default:
		return t, false
	}
	return t, t != [16]byte{}
}

func parseSpanHex(h string) ([8]byte, bool) {
	var s [8]byte
	if len(h) != 16 {
		return s, false
	}
	decodeHex(s[:], h)
	return s, s != [8]byte{}
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func allLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isLowerHex(s[i]) {
			return false
		}
	}
	return true
}

// ---- unkeyed values: traceparent and B3 single header ----

// scanDashed finds self-describing values anywhere in s: a W3C traceparent
// (00-<32>-<16>-<2>) and a B3 single header (<32|16>-<16>[-<s>[-<16>]]). Both
// are lower-case hex per their specifications. Every '-' is a candidate; the
// hex run before it decides the form. A traceparent wins over a B3 value.
func scanDashed(s string, out *ids) bool {
	var b3 ids
	haveB3 := false
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '-')
		if j < 0 {
			break
		}
		d := i + j
		i = d + 1
		// Both forms have at least 16 lower-case hex digits after the dash.
		if d+17 > len(s) || !isLowerHex(s[d+1]) || !isLowerHex(s[d+16]) {
			continue
		}
		n := 0
		for n <= 32 && n < d && isLowerHex(s[d-n-1]) {
			n++
		}
		start := d - n
		if start > 0 && !leadBoundary(s[start-1]) {
			continue
		}
		switch n {
		case 2:
			if parseTraceparent(s[start:], out) {
				return true
			}
		case 16, 32:
			if !haveB3 && parseB3Single(s[start:], n, &b3) {
				haveB3 = true
			}
		}
	}
	if haveB3 {
		*out = b3
		return true
	}
	return false
}

// traceparentLen is the length of a version 00 traceparent value.
const traceparentLen = 55

// parseTraceparent parses a traceparent value at the start of v; what
// follows must be a boundary (version 00) or, for later versions, '-'.
func parseTraceparent(v string, out *ids) bool {
	if len(v) < traceparentLen || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return false
	}
	if v[:2] == "ff" || !allLowerHex(v[:2]) || !allLowerHex(v[3:35]) || !allLowerHex(v[36:52]) || !allLowerHex(v[53:55]) {
		return false
	}
	if len(v) > traceparentLen && !trailBoundary(v[traceparentLen]) && (v[:2] == "00" || v[traceparentLen] != '-') {
		return false
	}
	t, ok := parseTraceHex(v[3:35])
	if !ok {
		return false
	}
	sp, ok := parseSpanHex(v[36:52])
	if !ok {
		return false
	}
	*out = ids{trace: t, span: sp, hasSpan: true, flags: unhex(v[53])<<4 | unhex(v[54]), hasFlags: true, src: sourceTraceparent}
	return true
}

// parseB3Single parses a B3 single-header value whose trace ID is the first
// n (16 or 32) characters of v.
func parseB3Single(v string, n int, out *ids) bool {
	p := n + 1 + 16
	if len(v) < p || v[n] != '-' || !allLowerHex(v[n+1:p]) {
		return false
	}
	var flags uint8
	hasFlags := false
	if p < len(v) && v[p] == '-' {
		// -<sampling state>[-<parent span id>]
		if p+2 > len(v) {
			return false
		}
		switch v[p+1] {
		case '1', 'd':
			flags, hasFlags = 1, true
		case '0':
			flags, hasFlags = 0, true
		default:
			return false
		}
		p += 2
		if p < len(v) && v[p] == '-' {
			if p+17 > len(v) || !allLowerHex(v[p+1:p+17]) {
				return false
			}
			p += 17
		}
	}
	if p < len(v) && !trailBoundary(v[p]) {
		return false
	}
	t, ok := parseTraceHex(v[:n])
	if !ok {
		return false
	}
	sp, ok := parseSpanHex(v[n+1 : n+17])
	if !ok {
		return false
	}
	*out = ids{trace: t, span: sp, hasSpan: true, flags: flags, hasFlags: hasFlags, src: sourceB3Single}
	return true
}

// ---- keyed values: JSON, escaped JSON, logfmt, "key: value" ----

// keyedValue reads the value after a key ending at p: an optional closing
// quote, ':' or '=', an optional opening quote (", \" or '), then a run of
// hex digits followed by a boundary. It returns the hex run.
func keyedValue(s string, p int) (string, bool) {
	p = skipQuote(s, p)
	p = skipSpaces(s, p)
	if p >= len(s) || (s[p] != ':' && s[p] != '=') {
		return "", false
	}
	p = skipSpaces(s, p+1)
	p = skipQuote(s, p)
	q := p
	for q < len(s) && q-p <= 32 && isHex(s[q]) {
		q++
	}
	if q < len(s) && !trailBoundary(s[q]) {
		return "", false
	}
	return s[p:q], true
}

func skipQuote(s string, p int) int {
	if p < len(s) {
		switch s[p] {
		case '"', '\'':
			return p + 1
		case '\\':
			if p+1 < len(s) && s[p+1] == '"' {
				return p + 2
			}
		}
	}
	return p
}

func skipSpaces(s string, p int) int {
	for p < len(s) && (s[p] == ' ' || s[p] == '\t') {
		p++
	}
	return p
}

// findNamed finds the leftmost occurrence of a configured field name with a
// valid ID value: a trace ID if trace, else a span ID. For a span ID the
// returned array holds it in its last 8 bytes.
func findNamed(s, name string, trace bool) ([16]byte, bool) {
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], name)
		if j < 0 {
			break
		}
		k := i + j
		i = k + 1
		if k > 0 && !leadBoundary(s[k-1]) {
			continue
		}
		v, ok := keyedValue(s, k+len(name))
		if !ok {
			continue
		}
		if trace {
			if t, ok := parseTraceHex(v); ok {
				return t, true
			}
			continue
		}
		if sp, ok := parseSpanHex(v); ok {
			var r [16]byte
			copy(r[8:], sp[:])
			return r, true
		}
	}
	return [16]byte{}, false
}

// b3Prefix reports whether p is "x-b3-" or "x_b3_", in any case.
func b3Prefix(p string) bool {
	return len(p) == 5 && (p[0]|0x20) == 'x' && (p[1] == '-' || p[1] == '_') && (p[2]|0x20) == 'b' && p[3] == '3' && p[4] == p[1]
}

// matchIDKey matches a built-in key around the word at w (the index of its
// first letter, "trace", "span" or "sampled", whose length is wl): an
// optional "x-b3-" prefix, the word, an optional separator ('_', '.', '-')
// and "id" in any case (unless noID). It returns the end of the key and
// whether it had the B3 prefix.
func matchIDKey(s string, w, wl int, noID bool) (end int, b3, ok bool) {
	p := w + wl
	if !noID {
		if p < len(s) && (s[p] == '_' || s[p] == '.' || s[p] == '-') {
			p++
		}
		if p+2 > len(s) || (s[p]|0x20) != 'i' || (s[p+1]|0x20) != 'd' {
			return 0, false, false
		}
		p += 2
	}
	start := w
	if w >= 5 && b3Prefix(s[w-5:w]) {
		start, b3 = w-5, true
	}
	if start > 0 && !leadBoundary(s[start-1]) {
		return 0, false, false
	}
	return p, b3, true
}

// findTraceKey finds the leftmost built-in trace key with a valid value:
// "trace" or "Trace", an optional '_', '.' or '-', then "id" in any case,
// optionally prefixed by x-b3- / x_b3_.
func findTraceKey(s string) (t [16]byte, b3, ok bool) {
	for i := 1; i < len(s); {
		j := strings.Index(s[i:], "race")
		if j < 0 {
			break
		}
		h := i + j
		i = h + 4
		if s[h-1]|0x20 != 't' {
			continue
		}
		end, isB3, ok := matchIDKey(s, h-1, 5, false)
		if !ok {
			continue
		}
		v, ok := keyedValue(s, end)
		if !ok {
			continue
		}
		if t, ok := parseTraceHex(v); ok {
			return t, isB3, true
		}
	}
	return t, false, false
}

// findSpanKey finds the leftmost built-in span key with a valid value.
func findSpanKey(s string) ([8]byte, bool) {
	for i := 1; i < len(s); {
		j := strings.Index(s[i:], "pan")
		if j < 0 {
			break
		}
		h := i + j
		i = h + 3
		if s[h-1]|0x20 != 's' {
			continue
		}
		end, _, ok := matchIDKey(s, h-1, 4, false)
		if !ok {
			continue
		}
		v, ok := keyedValue(s, end)
		if !ok {
			continue
		}
		if sp, ok := parseSpanHex(v); ok {
			return sp, true
		}
	}
	return [8]byte{}, false
}

// findB3Sampled reads x-b3-sampled: "1" or "true" (sampled), "0" or
// "false" (not sampled). It returns the W3C flags byte.
func findB3Sampled(s string) (uint8, bool) {
	for i := 1; i < len(s); {
		j := strings.Index(s[i:], "ampled")
		if j < 0 {
			break
		}
		h := i + j
		i = h + 6
		if s[h-1]|0x20 != 's' {
			continue
		}
		end, b3, ok := matchIDKey(s, h-1, 7, true)
		if !ok || !b3 {
			continue
		}
		p := skipSpaces(s, skipQuote(s, end))
		if p >= len(s) || (s[p] != ':' && s[p] != '=') {
			continue
		}
		p = skipQuote(s, skipSpaces(s, p+1))
		q := p
		for q < len(s) && isAlnum(s[q]) {
			q++
		}
		switch s[p:q] {
		case "1", "true":
			return 1, true
		case "0", "false":
			return 0, true
		}
	}
	return 0, false
}

// ---- map bodies ----

// extractMap searches a map (e.g. a JSON body already parsed) with the same
// precedence as extractString: configured trace fields (exact key, or a
// dotted path into nested maps), a "traceparent" key, a "b3" key, then the
// first built-in trace key in map order (including ECS-style nested
// {"trace":{"id":...}}). If no key matches, the map's string values are
// scanned as log lines, in map order.
func (e *extractor) extractMap(m pcommon.Map, out *ids) bool {
	*out = ids{}
	for _, name := range e.traceFields {
		if v, ok := lookupPath(m, name); ok {
			if t, ok := traceFromValue(v); ok {
				out.trace, out.src = t, sourceField
				e.findSpanInMap(m, out)
				return true
			}
		}
	}
	var key ids
	haveKey, haveB3, keyB3 := false, false, false
	sampled, haveSampled := "", false // x-b3-sampled
	var b3 ids
	for k, v := range m.All() {
		switch v.Type() {
		case pcommon.ValueTypeStr:
		case pcommon.ValueTypeMap:
			// ECS: {"trace": {"id": "..."}}
			if !haveKey && strings.EqualFold(k, "trace") {
				if id, ok := v.Map().Get("id"); ok && id.Type() == pcommon.ValueTypeStr {
					if t, ok := traceFromValue(id.Str()); ok {
						key = ids{trace: t, src: sourceKey}
						haveKey = true
					}
				}
			}
			continue
		default:
			continue
		}
		sv := v.Str()
		switch {
		case strings.EqualFold(k, "traceparent"):
			if len(sv) == traceparentLen || (len(sv) > traceparentLen && sv[:2] != "00" && sv[traceparentLen] == '-') {
				if parseTraceparent(sv, out) {
					return true
				}
			}
		case strings.EqualFold(k, "b3"):
			if !haveB3 {
				n := strings.IndexByte(sv, '-')
				if (n == 16 || n == 32) && allLowerHex(sv[:n]) && parseB3Single(sv, n, &b3) {
					haveB3 = true
				}
			}
		case !haveKey && isTraceKeyName(k):
			if t, ok := traceFromValue(sv); ok {
				key = ids{trace: t, src: sourceKey}
				haveKey, keyB3 = true, b3Prefix(k[:min(5, len(k))])
			}
		case !haveSampled && len(k) == 12 && b3Prefix(k[:5]) && strings.EqualFold(k[5:], "sampled"):
			sampled, haveSampled = sv, true
		}
	}
	switch {
	case haveB3:
		*out = b3
		return true
	case haveKey:
		*out = key
		e.findSpanInMap(m, out)
		if keyB3 && haveSampled {
			switch sampled {
			case "1", "true":
				out.flags, out.hasFlags = 1, true
			case "0", "false":
				out.flags, out.hasFlags = 0, true
			}
		}
		return true
	}
	for _, v := range m.All() {
		if v.Type() == pcommon.ValueTypeStr && e.extractString(v.Str(), out) {
			return true
		}
	}
	*out = ids{}
	return false
}

// traceFromValue parses a whole value as a trace ID (32 or 16 hex digits).
func traceFromValue(v string) ([16]byte, bool) {
	if (len(v) != 32 && len(v) != 16) || !allHex(v) {
		return [16]byte{}, false
	}
	return parseTraceHex(v)
}

// isTraceKeyName reports whether a whole map key is a built-in trace key.
func isTraceKeyName(k string) bool {
	w := 0
	if len(k) > 5 && b3Prefix(k[:5]) {
		w = 5
	}
	if len(k) < w+5 || k[w]|0x20 != 't' || k[w+1:w+5] != "race" {
		return false
	}
	end, _, ok := matchIDKey(k, w, 5, false)
	return ok && end == len(k)
}

// isSpanKeyName reports whether a whole map key is a built-in span key.
func isSpanKeyName(k string) bool {
	w := 0
	if len(k) > 5 && b3Prefix(k[:5]) {
		w = 5
	}
	if len(k) < w+4 || k[w]|0x20 != 's' || k[w+1:w+4] != "pan" {
		return false
	}
	end, _, ok := matchIDKey(k, w, 4, false)
	return ok && end == len(k)
}

func (e *extractor) findSpanInMap(m pcommon.Map, out *ids) {
	for _, name := range e.spanFields {
		if v, ok := lookupPath(m, name); ok && allHex(v) {
			if sp, ok := parseSpanHex(v); ok {
				out.span, out.hasSpan = sp, true
				return
			}
		}
	}
	for k, v := range m.All() {
		var sv string
		switch {
		case v.Type() == pcommon.ValueTypeStr && isSpanKeyName(k):
			sv = v.Str()
		case v.Type() == pcommon.ValueTypeMap && strings.EqualFold(k, "span"):
			id, ok := v.Map().Get("id")
			if !ok || id.Type() != pcommon.ValueTypeStr {
				continue
			}
			sv = id.Str()
		default:
			continue
		}
		if !allHex(sv) {
			continue
		}
		if sp, ok := parseSpanHex(sv); ok {
			out.span, out.hasSpan = sp, true
			return
		}
	}
}

// lookupPath returns the string value under name: the key itself, or, if
// the name is dotted, the path through nested maps.
func lookupPath(m pcommon.Map, name string) (string, bool) {
	if v, ok := m.Get(name); ok {
		if v.Type() == pcommon.ValueTypeStr {
			return v.Str(), true
		}
		return "", false
	}
	for {
		dot := strings.IndexByte(name, '.')
		if dot <= 0 {
			return "", false
		}
		v, ok := m.Get(name[:dot])
		if !ok || v.Type() != pcommon.ValueTypeMap {
			return "", false
		}
		m, name = v.Map(), name[dot+1:]
		if v, ok := m.Get(name); ok && v.Type() == pcommon.ValueTypeStr {
			return v.Str(), true
		}
	}
}
