package tracecontextprocessor

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// corpusLine is one generated line and the IDs it really carries.
type corpusLine struct {
	line, trace, span string // trace/span empty: the line carries no ID
	format            string
}

// genCorpus writes n lines in the formats the node sees, 20% of them
// without an ID, all of them with decoys that must never be taken for IDs.
func genCorpus(rng *rand.Rand, n int) []corpusLine {
	out := make([]corpusLine, 0, n)
	for range n {
		withID := rng.IntN(5) != 0
		var tr, sp string
		if withID {
			tr, sp = randHex(rng, 16), randHex(rng, 8)
		}
		out = append(out, genLine(rng, withID, tr, sp))
	}
	return out
}

func uuidOf(rng *rand.Rand) string {
	h := randHex(rng, 16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// decoy returns a fragment that looks like trace context but is not.
func decoy(rng *rand.Rand) string {
	switch rng.IntN(14) {
	case 0:
		return `"request_id":"` + uuidOf(rng) + `"`
	case 1:
		return `x-request-id=` + uuidOf(rng)
	case 2:
		return `request_id=` + randHex(rng, 16) // 32 hex under a non-trace key
	case 3:
		return `"trace_id":"` + uuidOf(rng) + `"` // a UUID is never a trace ID
	case 4:
		return `trace_id=00000000000000000000000000000000`
	case 5:
		return `traceparent=00-00000000000000000000000000000000-` + randHex(rng, 8) + `-01`
	case 6:
		return `trace_id=` + randHex(rng, 16)[:31] // wrong length
	case 7:
		return `traceId="` + randHex(rng, 12) + `"` // 24 hex
	case 8:
		return `trace_id=` + randHex(rng, 24) // 48 hex: an ID inside a longer string
	case 9:
		return `sha256=` + randHex(rng, 32)
	case 10:
		return `f00-` + randHex(rng, 16) + `-` + randHex(rng, 8) + `-01` // traceparent inside longer hex
	case 11:
		return `b3=` + randHex(rng, 12) + `-` + randHex(rng, 8) // 24-hex B3 trace ID
	case 12:
		return `parent_span_id=` + randHex(rng, 8) + ` dd.trace_id=1234567890123456`
	default:
		return `traceparent=00-` + randHex(rng, 16) + `-0000000000000000-01` // zero span
	}
}

func genLine(rng *rand.Rand, withID bool, tr, sp string) corpusLine {
	d := decoy(rng)
	ts := "2026-11-25T19:20:00.123456789Z"
	c := corpusLine{trace: tr, span: sp}
	if !withID {
		// Same shapes, no ID: only the decoy.
		c.format = "none"
		switch rng.IntN(4) {
		case 0:
			c.line = `{"time":"` + ts + `","level":"INFO","msg":"GET /productpage",` + jsonDecoy(d) + `,"status":200}`
		case 1:
			c.line = `level=info ts=` + ts + ` msg="GET /ratings/0" ` + d + ` status=200`
		case 2:
			c.line = `[2026-11-25T19:20:00.123Z] "GET /get HTTP/1.1" 200 - via_upstream - "-" 0 605 4 3 "-" "curl/7.82.0" "` + uuidOf(rng) + `" "httpbin:8000" "10.244.0.31:80" outbound|8000||httpbin.default.svc.cluster.local - default "` + d + `"`
		default:
			c.line = ts + ` stdout F java.lang.IllegalStateException: upstream reset ` + d
		}
		return c
	}
	pre, post := "", ""
	if rng.IntN(2) == 0 {
		pre = d + " "
	} else {
		post = " " + d
	}
	switch rng.IntN(11) {
	case 0:
		c.format = "productpage-json"
		c.line = `{"time":"` + ts + `","level":"INFO","logger":"productpage",` + jsonDecoy(d) + `,"msg":"GET /productpage","trace_id":"` + tr + `","span_id":"` + sp + `","status":200,"duration_ms":21}`
	case 1:
		c.format = "reviews-logback"
		c.line = `{"@timestamp":"` + ts + `","level":"INFO","logger_name":"application.rest.LibertyRestEndpoint","message":"GET /reviews/0","traceId":"` + tr + `","spanId":"` + sp + `",` + jsonDecoy(d) + `,"status":200}`
	case 2:
		c.format = "ratings-logfmt"
		c.line = `level=info ts=` + ts + ` ` + pre + `msg="GET /ratings/0" trace_id=` + tr + ` span_id=` + sp + ` status=200 duration_ms=3` + post
	case 3:
		c.format = "function-traceparent"
		c.line = `{"level":"info","ts":"` + ts + `","msg":"handled event",` + jsonDecoy(d) + `,"traceparent":"00-` + tr + `-` + sp + `-01","status":200,"latency_ms":4}`
	case 4:
		c.format = "istio-json"
		c.line = `{"start_time":"2026-11-25T19:20:00.123Z","method":"GET","path":"/reviews/0","protocol":"HTTP/1.1","response_code":200,"response_flags":"-","bytes_received":0,"bytes_sent":295,"duration":12,"request_id":"` + uuidOf(rng) + `","authority":"reviews:9080","upstream_cluster":"inbound|9080||","traceparent":"00-` + tr + `-` + sp + `-01"}`
	case 5:
		c.format = "istio-text-traceparent"
		c.line = `[2026-11-25T19:20:00.123Z] "GET /get HTTP/1.1" 200 - via_upstream - "-" 0 605 4 3 "-" "curl/7.82.0" "` + uuidOf(rng) + `" "httpbin:8000" "10.244.0.31:80" outbound|8000||httpbin.default.svc.cluster.local - default "00-` + tr + `-` + sp + `-01"`
	case 6:
		c.format = "istio-text-b3"
		c.line = `[2026-11-25T19:20:00.123Z] "GET /get HTTP/1.1" 200 - via_upstream - "-" 0 605 4 3 "-" "curl/7.82.0" "` + uuidOf(rng) + `" "httpbin:8000" "10.244.0.31:80" outbound|8000||httpbin.default.svc.cluster.local - default "` + tr + `-` + sp + `-1"`
	case 7:
		c.format = "b3-multi"
		c.line = `GET /api ` + pre + `X-B3-TraceId=` + tr + ` X-B3-SpanId=` + sp + ` X-B3-Sampled=1` + post
	case 8:
		c.format = "docker-escaped-json"
		c.line = `{"log":"{\"level\":\"info\",\"trace_id\":\"` + tr + `\",\"span_id\":\"` + sp + `\",\"msg\":\"ok ` + strings.ReplaceAll(d, `"`, `\"`) + `\"}\n","stream":"stdout","time":"` + ts + `"}`
	case 9:
		c.format = "ecs"
		c.line = `{"@timestamp":"` + ts + `",` + jsonDecoy(d) + `,"trace.id":"` + tr + `","span.id":"` + sp + `","message":"ok"}`
	default:
		c.format = "b3-64bit"
		t64 := tr[16:]
		c.trace = "0000000000000000" + t64
		c.line = `msg=ok ` + pre + `x-b3-traceid=` + t64 + ` x-b3-spanid=` + sp + post
	}
	return c
}

// jsonDecoy makes a decoy usable as a JSON member.
func jsonDecoy(d string) string {
	if strings.HasPrefix(d, `"`) {
		return d
	}
	return `"note":"` + d + `"`
}

// TestAccuracyCorpus: recall ≥ 99% where an ID is present and no false ID
// (a wrong trace or span ID, or any ID on a line without one).
func TestAccuracyCorpus(t *testing.T) {
	rng := rand.New(rand.NewPCG(20261125, 5))
	corpus := genCorpus(rng, 20000)
	e := newExtractor(FieldsConfig{})
	var withID, hit, noID, falseIDs int
	perFormat := map[string][2]int{}
	for _, c := range corpus {
		got := extractLine(e, c.line)
		pf := perFormat[c.format]
		pf[0]++
		if c.trace == "" {
			noID++
			if got.trace != "" {
				falseIDs++
				t.Errorf("false ID %s in line without one: %s", got.trace, c.line)
			}
			perFormat[c.format] = pf
			continue
		}
		withID++
		switch {
		case got.trace == "":
			t.Logf("missed (%s): %s", c.format, c.line)
		case got.trace != c.trace || got.span != c.span:
			falseIDs++
			t.Errorf("wrong ID %s/%s, want %s/%s (%s): %s", got.trace, got.span, c.trace, c.span, c.format, c.line)
		default:
			hit++
			pf[1]++
		}
		perFormat[c.format] = pf
	}
	recall := float64(hit) / float64(withID)
	t.Logf("lines %d: with ID %d, recall %.4f; without ID %d; false IDs %d", len(corpus), withID, recall, noID, falseIDs)
	for f, pf := range perFormat {
		t.Logf("  %-24s lines %5d found %5d", f, pf[0], pf[1])
	}
	assert.InDelta(t, 0.2, float64(noID)/float64(len(corpus)), 0.02, "share of lines without ID")
	assert.GreaterOrEqual(t, recall, 0.99)
	assert.Zero(t, falseIDs)
}
