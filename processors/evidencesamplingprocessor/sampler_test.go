package evidencesamplingprocessor

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestThresholdFor: the th values of the specification's table
// (tracestate-probability-sampling.md, precision 4) for 1-in-N sampling.
func TestThresholdFor(t *testing.T) {
	for _, tc := range []struct {
		percent float64
		th      string
	}{
		{100, "0"},
		{50, "8"},
		{100.0 / 3, "aaab"},
		{25, "c"},
		{20, "cccd"},
		{12.5, "e"},
		{10, "e666"},
		{6.25, "f"},
		{1, "fd70a"},
		{0.1, "ffbe77"},
		{0.01, "fff9724"},
		{0.001, "ffff583a"},
		{0.0001, "ffffef39"},
	} {
		got := string(thresholdFor(tc.percent).appendTh(nil))
		assert.Equal(t, tc.th, got, "%v %%", tc.percent)
	}
	assert.Equal(t, maxThreshold, thresholdFor(0), "0 %: nothing passes")
	assert.False(t, thresholdFor(0).sampled(1<<56-1))
	assert.True(t, thresholdFor(100).sampled(0))
}

func TestParseOT(t *testing.T) {
	for _, tc := range []struct {
		ts    string
		want  otState
		found bool
	}{
		{"", otState{}, false},
		{"vendor=x", otState{}, false},
		{"ot=th:8", otState{th: 8 << 52, hasTh: true}, true},
		{"a=b, ot=rv:0123456789abcd;th:e666 ,c=d", otState{th: 0xe666 << 40, hasTh: true, rv: 0x0123456789abcd, hasRv: true}, true},
		{"ot=rv:0123", otState{}, true},                  // rv must have 14 digits
		{"ot=th:0123456789abcde", otState{}, true},       // th at most 14
		{"ot=th:xyz;rv:zzzzzzzzzzzzzz", otState{}, true}, // not hex
	} {
		got, _, found := parseOT(tc.ts)
		assert.Equal(t, tc.want, got, tc.ts)
		assert.Equal(t, tc.found, found, tc.ts)
	}
}

func TestWithTh(t *testing.T) {
	th := thresholdFor(10)
	for _, tc := range []struct{ in, want string }{
		{"", "ot=th:e666"},
		{"vendor=x", "ot=th:e666,vendor=x"},
		{"vendor=x,ot=th:8;rv:0123456789abcd;xx:y", "ot=th:e666;rv:0123456789abcd;xx:y,vendor=x"},
		{"a=1, ot=rv:0123456789abcd , b=2", "ot=th:e666;rv:0123456789abcd,a=1,b=2"},
	} {
		got, ok := withTh(tc.in, th)
		assert.True(t, ok)
		assert.Equal(t, tc.want, got, tc.in)
	}
	long := "ot=xx:" + string(make([]byte, 250))
	got, ok := withTh(long, th)
	assert.False(t, ok, "the ot value would pass 256 characters")
	assert.Equal(t, long, got)
}

// TestSamplerSpan: the decision uses rv when present, the trace ID
// otherwise; a kept span's th is raised to the processor's (equalizing),
// never lowered; an inconsistent incoming th is replaced.
func TestSamplerSpan(t *testing.T) {
	s := sampler{t: thresholdFor(10)} // e666…
	hi, lo := idWithRandomness(1, 0xf0000000000000), idWithRandomness(1, 0x10000000000000)

	ok, ts, rw := s.span(hi, "")
	assert.True(t, ok)
	assert.True(t, rw)
	assert.Equal(t, "ot=th:e666", ts)

	ok, _, _ = s.span(lo, "")
	assert.False(t, ok, "low randomness")

	ok, ts, _ = s.span(lo, "ot=rv:ff000000000000")
	assert.True(t, ok, "explicit rv wins over the trace ID")
	assert.Equal(t, "ot=th:e666;rv:ff000000000000", ts)

	ok, _, _ = s.span(hi, "ot=rv:00000000000001")
	assert.False(t, ok, "explicit rv wins the other way too")

	ok, ts, rw = s.span(hi, "ot=th:f")
	assert.True(t, ok)
	assert.False(t, rw, "an incoming th above ours stays")
	assert.Equal(t, "ot=th:f", ts)

	ok, ts, rw = s.span(hi, "ot=th:8")
	assert.True(t, ok)
	assert.True(t, rw)
	assert.Equal(t, "ot=th:e666", ts, "raised from 50 % to 10 %")

	ok, ts, _ = s.span(idWithRandomness(1, 0xe8000000000000), "ot=th:f")
	assert.True(t, ok)
	assert.Equal(t, "ot=th:e666", ts, "R < incoming th contradicts it: replaced")

	all := sampler{t: thresholdFor(100)}
	ok, ts, rw = all.span(lo, "x=y")
	assert.True(t, ok)
	assert.False(t, rw, "100 %: TraceState untouched")
	assert.Equal(t, "x=y", ts)

	assert.True(t, s.log(hi))
	assert.False(t, s.log(lo))
}
