package tracecontextprocessor

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Severity: a record whose SeverityNumber is unset gets one from the level
// written in the record itself (README: severity). Only keyed levels are
// read — a JSON member, a logfmt pair, "key: value" or a map key named
// level, lvl, severity or log.level — never a bare word of the message.

// severityOf maps a level value to its SeverityNumber. Words are matched
// case-insensitively; numbers are the levels of pino and bunyan (10 trace
// … 60 fatal), the numeric form found in JSON container logs. Other
// numbers are ambiguous (syslog 0–7 or OTel 1–24) and not mapped.
func severityOf(v string) (plog.SeverityNumber, bool) {
	if len(v) == 0 || len(v) > len("informational") {
		return 0, false
	}
	var buf [len("informational")]byte
	for i := 0; i < len(v); i++ {
		buf[i] = v[i] | 0x20 // ASCII letters to lower case; digits unchanged
	}
	switch string(buf[:len(v)]) { // no allocation: the conversion is only compared
	case "trace":
		return plog.SeverityNumberTrace, true
	case "debug", "dbg":
		return plog.SeverityNumberDebug, true
	case "info", "information", "informational":
		return plog.SeverityNumberInfo, true
	case "notice":
		return plog.SeverityNumberInfo2, true
	case "warn", "warning":
		return plog.SeverityNumberWarn, true
	case "error", "err":
		return plog.SeverityNumberError, true
	case "fatal", "critical", "crit", "emerg", "emergency", "dpanic":
		return plog.SeverityNumberFatal, true
	case "panic":
		return plog.SeverityNumberFatal2, true
	case "10":
		return plog.SeverityNumberTrace, true
	case "20":
		return plog.SeverityNumberDebug, true
	case "30":
		return plog.SeverityNumberInfo, true
	case "40":
		return plog.SeverityNumberWarn, true
	case "50":
		return plog.SeverityNumberError, true
	case "60":
		return plog.SeverityNumberFatal, true
	}
	return 0, false
}

// numericText is the SeverityText of a numeric level: the severity's
// name, which says more than "50" downstream.
func numericText(n plog.SeverityNumber) string {
	switch n {
	case plog.SeverityNumberTrace:
		return "TRACE"
	case plog.SeverityNumberDebug:
		return "DEBUG"
	case plog.SeverityNumberInfo:
		return "INFO"
	case plog.SeverityNumberWarn:
		return "WARN"
	case plog.SeverityNumberError:
		return "ERROR"
	}
	return "FATAL"
}

// isDigit reports whether c is an ASCII digit.
func isDigit(c byte) bool { return c-'0' < 10 }

// findSeverity finds the leftmost level key in s whose value is a known
// level, and returns the severity and its text (the value as written, or
// the name for a number). It does not allocate.
//
// The keys are level, lvl and severity (first letter in either case),
// optionally prefixed by "log.". All three contain a 'v', rare in log
// text, so one IndexByte pass over the line finds every candidate.
func findSeverity(s string) (plog.SeverityNumber, string, bool) {
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], 'v')
		if j < 0 {
			break
		}
		v := i + j
		i = v + 1
		start, end := keyAround(s, v)
		if end == 0 {
			continue
		}
		if start >= 4 && s[start-4:start] == "log." {
			start -= 4
		}
		if start > 0 && !leadBoundary(s[start-1]) {
			continue
		}
		val, ok := levelValue(s, end)
		if !ok {
			continue
		}
		n, ok := severityOf(val)
		if !ok {
			continue
		}
		if isDigit(val[0]) {
			return n, numericText(n), true
		}
		return n, val, true
	}
	return 0, "", false
}

// keyAround matches a level key around the 'v' at v: "level", "lvl" or
// "severity", the first letter in either case, the rest lower case. It
// returns the key's start and end (end 0: no key).
func keyAround(s string, v int) (start, end int) {
	switch {
	case v >= 2 && v+3 <= len(s) && s[v-2]|0x20 == 'l' && s[v-1] == 'e' && s[v+1:v+3] == "el":
		return v - 2, v + 3
	case v >= 1 && v+2 <= len(s) && s[v-1]|0x20 == 'l' && s[v+1] == 'l':
		return v - 1, v + 2
	case v >= 2 && v+6 <= len(s) && s[v-2]|0x20 == 's' && s[v-1] == 'e' && s[v+1:v+6] == "erity":
		return v - 2, v + 6
	}
	return 0, 0
}

// levelValue reads the value after a key ending at p, as keyedValue does
// for IDs: an optional closing quote, ':' or '=', an optional opening
// quote, then a run of letters and digits followed by a boundary.
func levelValue(s string, p int) (string, bool) {
	p = skipQuote(s, p)
	p = skipSpaces(s, p)
	if p >= len(s) || (s[p] != ':' && s[p] != '=') {
		return "", false
	}
	p = skipSpaces(s, p+1)
	p = skipQuote(s, p)
	q := p
	for q < len(s) && q-p <= len("informational") && isAlnum(s[q]) {
		q++
	}
	if q == p || (q < len(s) && !trailBoundary(s[q])) {
		return "", false
	}
	return s[p:q], true
}

// levelMapKeys are the map keys holding a level, in the order tried.
var levelMapKeys = [...]string{"level", "Level", "lvl", "severity", "Severity", "log.level"}

// severityFromValue reads a level from a body or attribute value: a
// string is scanned as a line, a map by key (also ECS {"log":{"level":…}}).
func severityFromValue(v pcommon.Value) (plog.SeverityNumber, string, bool) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return findSeverity(v.Str())
	case pcommon.ValueTypeMap:
		m := v.Map()
		for _, k := range levelMapKeys {
			if lv, ok := m.Get(k); ok {
				if n, text, ok := levelFromMapValue(lv); ok {
					return n, text, true
				}
			}
		}
		if l, ok := m.Get("log"); ok && l.Type() == pcommon.ValueTypeMap {
			if lv, ok := l.Map().Get("level"); ok {
				return levelFromMapValue(lv)
			}
		}
	}
	return 0, "", false
}

func levelFromMapValue(v pcommon.Value) (plog.SeverityNumber, string, bool) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s := v.Str()
		n, ok := severityOf(s)
		if !ok {
			return 0, "", false
		}
		if isDigit(s[0]) {
			return n, numericText(n), true
		}
		return n, s, true
	case pcommon.ValueTypeInt:
		return numericLevel(v.Int())
	case pcommon.ValueTypeDouble:
		if d := v.Double(); d == float64(int64(d)) {
			return numericLevel(int64(d))
		}
	}
	return 0, "", false
}

// pinoLevels are the severities of the pino/bunyan levels 10, 20, … 60.
var pinoLevels = [...]plog.SeverityNumber{plog.SeverityNumberTrace, plog.SeverityNumberDebug, plog.SeverityNumberInfo,
	plog.SeverityNumberWarn, plog.SeverityNumberError, plog.SeverityNumberFatal}

func numericLevel(i int64) (plog.SeverityNumber, string, bool) {
	if i < 10 || i > 60 || i%10 != 0 {
		return 0, "", false
	}
	n := pinoLevels[i/10-1]
	return n, numericText(n), true
}
