package simnode

import (
	"encoding/hex"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// ids of one span, with their hex forms for log lines and exemplars.
type ids struct {
	trace    [16]byte
	span     [8]byte
	traceHex string
	spanHex  string
}

func (n *Node) newTrace() ids {
	var id ids
	putUint64(id.trace[:8], n.rng.Uint64())
	putUint64(id.trace[8:], n.rng.Uint64()|1) // never all zero
	return n.childOf(id)
}

// childOf returns ids with the same trace and a new span.
func (n *Node) childOf(parent ids) ids {
	id := ids{trace: parent.trace, traceHex: parent.traceHex}
	if id.traceHex == "" {
		id.traceHex = hex.EncodeToString(id.trace[:])
	}
	putUint64(id.span[:], n.rng.Uint64()|1)
	id.spanHex = hex.EncodeToString(id.span[:])
	return id
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

func (n *Node) jitter(min, max time.Duration) time.Duration {
	return min + time.Duration(n.rng.Int64N(int64(max-min)))
}

// inBurst reports whether reviews-v2 is failing at now.
func (n *Node) inBurst(now time.Time) bool {
	if !n.opts.ErrorBurst {
		return false
	}
	from := n.started.Add(n.opts.ErrorAfter)
	return !now.Before(from) && now.Before(from.Add(n.opts.ErrorFor))
}

// pick returns the pod of a replica of deployment dep, chosen at random as
// the mesh's load balancing does (with one node, the only one, without
// drawing from the random source).
func (n *Node) pick(dep int) int {
	if n.opts.Nodes == 1 {
		return dep
	}
	return dep + numDeployments*n.rng.IntN(n.opts.Nodes)
}

// addSpan adds a span to the batch of the node its pod runs on.
func (n *Node) addSpan(s spanSpec) { n.spans[n.pods[s.pod].node].add(s) }

// request simulates one user request ending at now and returns the number of
// log records written. Three of four requests go to bookinfo, one to the
// Knative function.
func (n *Node) request(now time.Time) int {
	if n.rng.IntN(4) == 0 {
		return n.functionRequest(now)
	}
	return n.productpageRequest(now)
}

func (n *Node) productpageRequest(now time.Time) int {
	rvDep := depReviewsV1
	if n.rng.IntN(2) == 1 {
		rvDep = depReviewsV2
	}
	ppIdx, rv := n.pick(depProductpage), n.pick(rvDep)
	pp, reviews := &n.pods[ppIdx], &n.pods[rv]

	ppID := n.newTrace()
	ppOut := n.childOf(ppID) // productpage's client span to reviews
	rvID := n.childOf(ppOut)

	ppDur := n.jitter(15*time.Millisecond, 40*time.Millisecond)
	rvDur := n.jitter(8*time.Millisecond, 25*time.Millisecond)
	ppStart := now.Add(-ppDur - rvDur)
	rvStart := ppStart.Add(2 * time.Millisecond)
	rvEnd := rvStart.Add(rvDur)

	rvStatus := 200
	if rvDep == depReviewsV2 && n.inBurst(now) && n.rng.IntN(2) == 0 {
		rvStatus = 503
	}
	records := 0

	// reviews v2 calls ratings (as in bookinfo); v1 does not. When v2
	// fails, the call to ratings is what failed: reviews gives up on it
	// (the connection is reset before response headers) and answers 503,
	// while ratings, on its node, still answers 200 to a caller that has
	// gone, so its sidecar logs a downstream disconnect (code 0, DC). Its
	// node holds a fragment of the failing trace without an error in it.
	if rvDep == depReviewsV2 {
		rt := n.pick(depRatings)
		ratings := &n.pods[rt]
		rvOut := n.childOf(rvID)
		rtID := n.childOf(rvOut)
		rtDur := n.jitter(2*time.Millisecond, 8*time.Millisecond)
		rtStart := rvStart.Add(3 * time.Millisecond)
		rtEnd := rtStart.Add(rtDur)
		client := spanSpec{pod: rv, name: "GET /ratings/{id}", kind: ptrace.SpanKindClient, traceID: rvOut.trace,
			spanID: rvOut.span, parentID: rvID.span, start: rtStart, end: rtEnd, method: "GET", path: "/ratings/0",
			status: 200, peer: "ratings.bookinfo.svc.cluster.local"}
		meshCode, flags := 200, "-"
		if rvStatus != 200 {
			// ratings ends after reviews (rvEnd ≤ now-13ms: ppDur ≥ 15ms).
			rtEnd = rvEnd.Add(n.jitter(time.Millisecond, 10*time.Millisecond))
			rtDur = rtEnd.Sub(rtStart)
			client.end, client.status, client.errMsg = rvEnd.Add(-time.Millisecond), 0, "upstream reset before headers"
			meshCode, flags = 0, "DC"
		}
		n.addSpan(client)
		n.addSpan(spanSpec{pod: rt, name: "GET /ratings/{id}", kind: ptrace.SpanKindServer, traceID: rtID.trace,
			spanID: rtID.span, parentID: rvOut.span, start: rtStart, end: rtEnd, method: "GET", path: "/ratings/0",
			status: 200})
		records += n.logRatings(rt, rtEnd, rtID, rtDur)
		records += n.logAccess(rt, rtEnd, rtID, "GET", "/ratings/0", "ratings:9080", meshCode, flags, rtDur, 48)
		n.mesh[rv].record("source", reviews, ratings, meshCode, client.end.Sub(client.start))
		n.mesh[rt].record("destination", reviews, ratings, meshCode, rtDur)
		n.app[rt].record("GET", "/ratings/{id}", 200, rtDur, rtID.traceHex, rtID.spanHex)
	}

	n.addSpan(spanSpec{pod: ppIdx, name: "GET /reviews/{id}", kind: ptrace.SpanKindClient,
		traceID: ppOut.trace, spanID: ppOut.span, parentID: ppID.span, start: rvStart, end: rvEnd, method: "GET",
		path: "/reviews/0", status: rvStatus, peer: "reviews.bookinfo.svc.cluster.local"})
	n.addSpan(spanSpec{pod: rv, name: "GET /reviews/{id}", kind: ptrace.SpanKindServer, traceID: rvID.trace,
		spanID: rvID.span, parentID: ppOut.span, start: rvStart, end: rvEnd, method: "GET", path: "/reviews/0",
		status: rvStatus})
	records += n.logReviews(rv, rvEnd, rvID, rvStatus)
	records += n.logAccess(rv, rvEnd, rvID, "GET", "/reviews/0", "reviews:9080", rvStatus, "-", rvDur, 295)
	n.mesh[ppIdx].record("source", pp, reviews, rvStatus, rvDur)
	n.mesh[rv].record("destination", pp, reviews, rvStatus, rvDur)
	n.app[rv].record("GET", "/reviews/{id}", rvStatus, rvDur, rvID.traceHex, rvID.spanHex)

	// productpage degrades gracefully: it answers 200 without reviews.
	n.addSpan(spanSpec{pod: ppIdx, name: "GET /productpage", kind: ptrace.SpanKindServer,
		traceID: ppID.trace, spanID: ppID.span, start: ppStart, end: now, method: "GET", path: "/productpage",
		status: 200})
	records += n.logProductpage(ppIdx, now, ppID, now.Sub(ppStart), rvStatus)
	records += n.logAccess(ppIdx, now, ppID, "GET", "/productpage", "productpage:9080", 200, "-", now.Sub(ppStart), 5183)
	n.app[ppIdx].record("GET", "/productpage", 200, now.Sub(ppStart), ppID.traceHex, ppID.spanHex)
	return records
}

func (n *Node) functionRequest(now time.Time) int {
	fnIdx := n.pick(depFunction)
	fn := &n.pods[fnIdx]
	id := n.newTrace()
	dur := n.jitter(1*time.Millisecond, 12*time.Millisecond)
	n.addSpan(spanSpec{pod: fnIdx, name: "POST /", kind: ptrace.SpanKindServer, traceID: id.trace,
		spanID: id.span, start: now.Add(-dur), end: now, method: "POST", path: "/", status: 200})
	n.revision[fnIdx].record(fn, 200, dur)
	n.app[fnIdx].record("POST", "/", 200, dur, id.traceHex, id.spanHex)

	b := n.line[:0]
	b = append(b, `{"level":"info","ts":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","msg":"handled event","traceparent":"00-`...)
	b = append(b, id.traceHex...)
	b = append(b, '-')
	b = append(b, id.spanHex...)
	b = append(b, `-01","status":200,"latency_ms":`...)
	b = strconv.AppendInt(b, dur.Milliseconds(), 10)
	b = append(b, '}')
	n.line = b
	return n.log(fnIdx, 0, now, "stdout", b)
}

// logProductpage writes the frontend's own JSON log line (Python style
// field names: trace_id, span_id), now and then with a large debug payload
// that the runtime splits into partial records.
func (n *Node) logProductpage(podIdx int, now time.Time, id ids, dur time.Duration, reviewsStatus int) int {
	level, msg := "INFO", "GET /productpage"
	if reviewsStatus >= 500 {
		level, msg = "WARNING", "reviews unavailable, rendering without reviews"
	}
	b := n.line[:0]
	b = append(b, `{"time":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, level...)
	b = append(b, `","logger":"productpage","msg":"`...)
	b = append(b, msg...)
	b = append(b, `","trace_id":"`...)
	b = append(b, id.traceHex...)
	b = append(b, `","span_id":"`...)
	b = append(b, id.spanHex...)
	b = append(b, `","status":200,"duration_ms":`...)
	b = strconv.AppendInt(b, dur.Milliseconds(), 10)
	b = append(b, '}')
	n.line = b
	records := n.log(podIdx, 0, now, "stdout", b)
	if n.rng.IntN(2000) == 0 {
		records += n.log(podIdx, 0, now, "stdout", n.bigPayload(id))
	}
	return records
}

// bigPayload is a 40 KiB debug line: larger than the runtime's 16 KiB record
// limit, so it is written as partial (P) records followed by a final one.
func (n *Node) bigPayload(id ids) []byte {
	b := append(n.line[:0], `{"level":"DEBUG","logger":"productpage","msg":"response body","trace_id":"`...)
	b = append(b, id.traceHex...)
	b = append(b, `","body":"`...)
	for len(b) < 40*1024 {
		b = append(b, "lorem ipsum dolor sit amet "...)
	}
	b = append(b, `"}`...)
	n.line = b
	return b
}

var stackTrace = [][]byte{
	[]byte("java.lang.IllegalStateException: upstream connect error or disconnect/reset before headers"),
	[]byte("\tat application.rest.LibertyRestEndpoint.getRatings(LibertyRestEndpoint.java:97)"),
	[]byte("\tat application.rest.LibertyRestEndpoint.bookReviewsById(LibertyRestEndpoint.java:146)"),
	[]byte("\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)"),
	[]byte("\tat java.base/java.lang.reflect.Method.invoke(Method.java:566)"),
}

// logReviews writes the Java service's logback-JSON line (camelCase traceId,
// spanId); a failure adds a plain-text stack trace on stderr, one record per
// line as the runtime writes it.
func (n *Node) logReviews(podIdx int, now time.Time, id ids, status int) int {
	level, msg := "INFO", "GET /reviews/0"
	if status >= 500 {
		level, msg = "ERROR", "failed to fetch ratings"
	}
	b := n.line[:0]
	b = append(b, `{"@timestamp":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, level...)
	b = append(b, `","logger_name":"application.rest.LibertyRestEndpoint","message":"`...)
	b = append(b, msg...)
	b = append(b, `","traceId":"`...)
	b = append(b, id.traceHex...)
	b = append(b, `","spanId":"`...)
	b = append(b, id.spanHex...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, '}')
	n.line = b
	records := n.log(podIdx, 0, now, "stdout", b)
	if status >= 500 {
		for _, l := range stackTrace {
			records += n.log(podIdx, 0, now, "stderr", l)
		}
	}
	return records
}

// logRatings writes the Node.js service's logfmt line.
func (n *Node) logRatings(podIdx int, now time.Time, id ids, dur time.Duration) int {
	b := append(n.line[:0], "level=info ts="...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ` msg="GET /ratings/0" trace_id=`...)
	b = append(b, id.traceHex...)
	b = append(b, " span_id="...)
	b = append(b, id.spanHex...)
	b = append(b, " status=200 duration_ms="...)
	b = strconv.AppendInt(b, dur.Milliseconds(), 10)
	n.line = b
	return n.log(podIdx, 0, now, "stdout", b)
}

// logAccess writes the sidecar's inbound access-log line in Istio's JSON
// format, with the W3C traceparent header added, as meshes with tracing on
// configure it. flags are Envoy's response flags ("-": none).
func (n *Node) logAccess(podIdx int, now time.Time, id ids, method, path, authority string, status int, flags string, dur time.Duration, bytesSent int) int {
	start := now.Add(-dur)
	b := append(n.line[:0], `{"start_time":"`...)
	b = start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, `","method":"`...)
	b = append(b, method...)
	b = append(b, `","path":"`...)
	b = append(b, path...)
	b = append(b, `","protocol":"HTTP/1.1","response_code":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"response_flags":"`...)
	b = append(b, flags...)
	b = append(b, `","bytes_received":0,"bytes_sent":`...)
	b = strconv.AppendInt(b, int64(bytesSent), 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, dur.Milliseconds(), 10)
	b = append(b, `,"request_id":"`...)
	b = append(b, id.traceHex[:8]...)
	b = append(b, '-')
	b = append(b, id.traceHex[8:12]...)
	b = append(b, "-4"...)
	b = append(b, id.traceHex[13:16]...)
	b = append(b, "-a"...)
	b = append(b, id.traceHex[17:20]...)
	b = append(b, '-')
	b = append(b, id.traceHex[20:]...)
	b = append(b, `","authority":"`...)
	b = append(b, authority...)
	b = append(b, `","upstream_cluster":"inbound|9080||","traceparent":"00-`...)
	b = append(b, id.traceHex...)
	b = append(b, '-')
	b = append(b, id.spanHex...)
	b = append(b, `-01"}`...)
	n.line = b
	return n.log(podIdx, 1, now, "stdout", b)
}
