package evidencesamplingprocessor

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Consistent probability sampling as the OpenTelemetry specification
// defines it (trace/tracestate-probability-sampling.md,
// tracestate-handling.md): every item of a trace carries the same 56-bit
// randomness R (the trace ID's last 7 bytes, W3C Trace Context level 2, or
// an explicit `rv` in the span's TraceState), a sampler with rejection
// threshold T keeps it iff R >= T, and T = (1-p)·2^56. Every node computes
// the same T from the same sampling_percentage, so every node keeps or
// drops a trace alike without talking.

// randomnessBits is the width of R and T.
const randomnessBits = 56

// maxThreshold (2^56) rejects every randomness value: probability 0.
const maxThreshold threshold = 1 << randomnessBits

// defaultPrecision is the number of significant hex digits of a th value,
// as the specification recommends for SDKs (raised by the leading f digits
// of small probabilities).
const defaultPrecision = 4

// threshold is a rejection threshold, 0 (keep all) … 2^56 (keep none).
type threshold uint64

// thresholdFor converts a sampling percentage (0 … 100) into a threshold
// rounded to defaultPrecision significant hex digits, so that its th
// encoding is short and the same on every node.
func thresholdFor(percent float64) threshold {
	switch {
	case percent >= 100:
		return 0
	case percent <= 0:
		return maxThreshold
	}
	p := percent / 100
	// T = 2^56 - p·2^56; p·2^56 is exact enough for p >= 2^-56.
	t := uint64(maxThreshold) - uint64(math.Round(p*float64(maxThreshold)))
	// Significant digits: the leading f digits of a small probability
	// do not count (the specification's frexp adjustment).
	_, exp := math.Frexp(p)
	digits := min(max(defaultPrecision+(-exp)/4, 1), 14)
	unit := uint64(1) << (4 * (14 - digits))
	t = (t + unit/2) / unit * unit
	if t >= uint64(maxThreshold) {
		t = uint64(maxThreshold) - unit // the smallest non-zero probability at this precision
	}
	return threshold(t)
}

// sampled reports whether randomness r passes the threshold.
func (t threshold) sampled(r uint64) bool { return r >= uint64(t) }

// appendTh appends t's th encoding: 14 hex digits without trailing zeros,
// "0" for 0.
func (t threshold) appendTh(dst []byte) []byte {
	if t == 0 {
		return append(dst, '0')
	}
	const hexDigits = "0123456789abcdef"
	var b [14]byte
	for i := 13; i >= 0; i-- {
		b[i] = hexDigits[uint64(t)>>(4*(13-i))&0xf]
	}
	n := 14
	for n > 1 && b[n-1] == '0' {
		n--
	}
	return append(dst, b[:n]...)
}

// traceRandomness is the trace ID's randomness: its last 7 bytes.
func traceRandomness(id pcommon.TraceID) uint64 {
	return binary.BigEndian.Uint64(id[8:]) & (1<<randomnessBits - 1)
}

// otState is what the sampler reads from the `ot` entry of a TraceState.
type otState struct {
	th, rv       uint64
	hasTh, hasRv bool
}

// parseOT finds the `ot` member of a W3C tracestate and reads its th
// (1–14 hex digits) and rv (exactly 14 hex digits) sub-keys. Malformed
// values count as absent.
func parseOT(ts string) (ot otState, value string, found bool) {
	for ts != "" {
		var member string
		member, ts, _ = strings.Cut(ts, ",")
		member = strings.TrimSpace(member)
		k, v, ok := strings.Cut(member, "=")
		if !ok || k != "ot" {
			continue
		}
		value, found = v, true
		for v != "" {
			var kv string
			kv, v, _ = strings.Cut(v, ";")
			sk, sv, _ := strings.Cut(kv, ":")
			switch sk {
			case "th":
				if n, err := strconv.ParseUint(sv, 16, 64); err == nil && len(sv) >= 1 && len(sv) <= 14 {
					ot.th, ot.hasTh = n<<(4*(14-len(sv))), true
				}
			case "rv":
				if n, err := strconv.ParseUint(sv, 16, 64); err == nil && len(sv) == 14 {
					ot.rv, ot.hasRv = n, true
				}
			}
		}
		return ot, value, found
	}
	return ot, "", false
}

// maxOTLen is the limit of the `ot` entry's value (tracestate-handling.md).
const maxOTLen = 256

// withTh returns ts with the `ot` entry's th set to t, the `ot` member
// moved to the front as W3C Trace Context requires of an updated member,
// every other member and sub-key kept. ok is false when the result would
// break the 256-character limit of the `ot` value (ts is then unchanged).
func withTh(ts string, t threshold) (string, bool) {
	var b strings.Builder
	b.Grow(len(ts) + 20)
	b.WriteString("ot=th:")
	var th [14]byte
	b.Write(t.appendTh(th[:0]))
	otLen := b.Len() - len("ot=")
	var rest strings.Builder
	for s := ts; s != ""; {
		var member string
		member, s, _ = strings.Cut(s, ",")
		member = strings.TrimSpace(member)
		if member == "" {
			continue
		}
		k, v, _ := strings.Cut(member, "=")
		if k != "ot" {
			rest.WriteByte(',')
			rest.WriteString(member)
			continue
		}
		for v != "" {
			var kv string
			kv, v, _ = strings.Cut(v, ";")
			if kv == "" || strings.HasPrefix(kv, "th:") {
				continue
			}
			b.WriteByte(';')
			b.WriteString(kv)
			otLen += 1 + len(kv)
		}
	}
	if otLen > maxOTLen {
		return ts, false
	}
	b.WriteString(rest.String())
	return b.String(), true
}

// sampler makes the consistent decision of one processor.
type sampler struct {
	t threshold // the configured rejection threshold
}

// span decides a span: sampled reports R >= T with R from the span's rv
// or its trace ID; when sampled and the span's own threshold is lower
// than the processor's, ts is the TraceState to write (rewrite true), as
// an equalizing downstream sampler does: th becomes the larger of the
// two, a larger incoming th stays. A th the span's own randomness
// contradicts (R < th) is treated as absent.
func (s sampler) span(id pcommon.TraceID, ts string) (sampled bool, out string, rewrite bool) {
	if s.t == 0 {
		return true, ts, false // 100 %: the stage changes no probability
	}
	r := traceRandomness(id)
	var ot otState
	if ts != "" {
		ot, _, _ = parseOT(ts)
		if ot.hasRv {
			r = ot.rv
		}
	}
	if !s.t.sampled(r) {
		return false, ts, false
	}
	if ot.hasTh && r >= ot.th && ot.th >= uint64(s.t) {
		return true, ts, false
	}
	out, ok := withTh(ts, s.t)
	return true, out, ok
}

// log decides a log record by its trace ID (log records carry no
// TraceState, so no rv).
func (s sampler) log(id pcommon.TraceID) bool { return s.t.sampled(traceRandomness(id)) }
