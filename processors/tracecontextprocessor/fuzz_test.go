package tracecontextprocessor

import (
	"encoding/hex"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// pcommonMap builds a map value {k: v, "msg": m}; a "trace"/"span" key
// holds v under a nested "id" too (ECS style) when k ends in ".nested".
func pcommonMap(k, v, m string) pcommon.Value {
	body := pcommon.NewValueMap()
	bm := body.Map()
	if base, ok := strings.CutSuffix(k, ".nested"); ok {
		bm.PutEmptyMap(base).PutStr("id", v)
	} else {
		bm.PutStr(k, v)
	}
	bm.PutStr("msg", m)
	return body
}

// FuzzExtract: the extractor never panics, and any ID it returns is valid
// (not all zero) and appears verbatim (hex, either case) in the input; a
// padded 64-bit trace ID's 16 digits appear verbatim.
func FuzzExtract(f *testing.F) {
	for _, s := range []string{
		`{"trace_id":"` + tid + `","span_id":"` + sid + `"}`,
		`level=info trace_id=` + tid + ` span_id=` + sid,
		`x traceparent=00-` + tid + `-` + sid + `-01 y`,
		`cc-` + tid + `-` + sid + `-01-ext`,
		`b3=` + tid + `-` + sid + `-d-` + sid2,
		`b3=` + t64 + `-` + sid + `-1`,
		`X-B3-TraceId=` + t64 + ` X-B3-SpanId=` + sid + ` X-B3-Sampled=true`,
		`{"log":"{\"traceId\":\"` + tid + `\"}\n"}`,
		`corr=` + tid + ` op=` + sid,
		`"request_id":"` + uuid + `"`,
		`trace_id=00000000000000000000000000000000`,
		`trace-`, `00-`, `b3-`, `x-b3-sampled=`, `trace_id=`, `span_id="`,
	} {
		f.Add(s)
	}
	e := newExtractor(FieldsConfig{TraceID: []string{"corr"}, SpanID: []string{"op"}})
	f.Fuzz(func(t *testing.T, s string) {
		var id ids
		if !e.extractString(s, &id) {
			if id != (ids{}) {
				t.Fatalf("no match but result set: %+v", id)
			}
			return
		}
		lower := strings.ToLower(s)
		th := hex.EncodeToString(id.trace[:])
		switch {
		case id.trace == [16]byte{}:
			t.Fatalf("all-zero trace ID from %q", s)
		case strings.Contains(lower, th):
		case th[:16] == "0000000000000000" && strings.Contains(lower, th[16:]):
		default:
			t.Fatalf("trace ID %s not in input %q", th, s)
		}
		if id.hasSpan {
			sh := hex.EncodeToString(id.span[:])
			if id.span == [8]byte{} || !strings.Contains(lower, sh) {
				t.Fatalf("span ID %s invalid or not in input %q", sh, s)
			}
		}
		if id.src == sourceNone {
			t.Fatalf("match without a source: %q", s)
		}
	})
}

// FuzzExtractMap: a map body {k: v, "msg": m} never panics and yields only
// IDs that appear verbatim in v or m.
func FuzzExtractMap(f *testing.F) {
	f.Add("trace_id", tid, "span_id="+sid)
	f.Add("traceparent", "00-"+tid+"-"+sid+"-01", "")
	f.Add("b3", t64+"-"+sid+"-1", "")
	f.Add("corr.trace", tid, "")
	f.Add("trace", tid, "x-b3-traceid="+tid)
	f.Add("trace.nested", tid, "span_id="+sid)
	e := newExtractor(FieldsConfig{TraceID: []string{"corr.trace"}, SpanID: []string{"corr.span"}})
	f.Fuzz(func(t *testing.T, k, v, m string) {
		body := pcommonMap(k, v, m)
		var id ids
		if !e.extractValue(body, &id) {
			return
		}
		in := strings.ToLower(v + "\n" + m)
		th := hex.EncodeToString(id.trace[:])
		if id.trace == [16]byte{} || (!strings.Contains(in, th) && !(th[:16] == "0000000000000000" && strings.Contains(in, th[16:]))) {
			t.Fatalf("trace ID %s invalid or not in %q", th, in)
		}
		if id.hasSpan {
			if sh := hex.EncodeToString(id.span[:]); id.span == [8]byte{} || !strings.Contains(in, sh) {
				t.Fatalf("span ID %s invalid or not in %q", sh, in)
			}
		}
	})
}
