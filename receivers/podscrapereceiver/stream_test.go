package podscrapereceiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
)

const ctProto = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"

// outcome is what one scrape of a body yields: every data point (one JSON
// line each, with attributes, timestamps, start times, flags and
// exemplars), the parse stats and the error.
type outcome struct {
	points []string
	stats  parseStats
	err    string
	reason string
}

// dumpPoints lists every data point of md with its metric's name, type
// and description, sorted (stale markers come in map order).
func dumpPoints(t testing.TB, md pmetric.Metrics) []string {
	t.Helper()
	var out []string
	var jm pmetric.JSONMarshaler
	one := func(m pmetric.Metric, keep func(pmetric.Metric)) {
		single := pmetric.NewMetrics()
		dst := single.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		dst.SetName(m.Name())
		dst.SetDescription(m.Description())
		dst.SetUnit(m.Unit())
		keep(dst)
		raw, err := jm.MarshalMetrics(single)
		require.NoError(t, err)
		out = append(out, string(raw))
	}
	for _, m := range metricsOf(md) {
		switch m.Type() {
		case pmetric.MetricTypeGauge:
			for i := 0; i < m.Gauge().DataPoints().Len(); i++ {
				one(m, func(d pmetric.Metric) {
					m.Gauge().DataPoints().At(i).CopyTo(d.SetEmptyGauge().DataPoints().AppendEmpty())
				})
			}
		case pmetric.MetricTypeSum:
			for i := 0; i < m.Sum().DataPoints().Len(); i++ {
				one(m, func(d pmetric.Metric) {
					s := d.SetEmptySum()
					s.SetIsMonotonic(m.Sum().IsMonotonic())
					s.SetAggregationTemporality(m.Sum().AggregationTemporality())
					m.Sum().DataPoints().At(i).CopyTo(s.DataPoints().AppendEmpty())
				})
			}
		case pmetric.MetricTypeHistogram:
			for i := 0; i < m.Histogram().DataPoints().Len(); i++ {
				one(m, func(d pmetric.Metric) {
					h := d.SetEmptyHistogram()
					h.SetAggregationTemporality(m.Histogram().AggregationTemporality())
					m.Histogram().DataPoints().At(i).CopyTo(h.DataPoints().AppendEmpty())
				})
			}
		case pmetric.MetricTypeSummary:
			for i := 0; i < m.Summary().DataPoints().Len(); i++ {
				one(m, func(d pmetric.Metric) {
					m.Summary().DataPoints().At(i).CopyTo(d.SetEmptySummary().DataPoints().AppendEmpty())
				})
			}
		default:
			t.Fatalf("unexpected metric type %v of %s", m.Type(), m.Name())
		}
	}
	sort.Strings(out)
	return out
}

func outcomeOf(t testing.TB, md pmetric.Metrics, st parseStats, err error) outcome {
	t.Helper()
	o := outcome{points: dumpPoints(t, md), stats: st}
	if err != nil {
		o.err = err.Error()
		var se *scrapeError
		require.ErrorAs(t, err, &se)
		o.reason = se.reason
		o.stats = parseStats{} // a failed scrape reports no counts
	}
	return o
}

// scrapeSeq scrapes bodies in turn through one appender, whole or
// streamed, and returns each scrape's outcome.
func scrapeSeq(t testing.TB, bodies [][]byte, ct string, stream func(*appender, []byte, pmetric.MetricSlice, time.Time) (parseStats, error)) []outcome {
	t.Helper()
	a := testAppender(false, 0)
	now := time.Unix(1_700_000_000, 0)
	var out []outcome
	for _, body := range bodies {
		md := pmetric.NewMetrics()
		ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
		var (
			st  parseStats
			err error
		)
		if stream == nil {
			st, err = a.appendBody(body, ct, now, ms)
		} else {
			st, err = stream(a, body, ms, now)
		}
		if err != nil {
			ms.RemoveIf(func(pmetric.Metric) bool { return true })
			a.fail(now, ms)
		}
		out = append(out, outcomeOf(t, md, st, err))
		now = now.Add(15 * time.Second)
	}
	return out
}

// streamWith streams bodies through c, read through wrap (e.g. one byte
// per Read).
func streamWith(t testing.TB, c *chunker, ct string, wrap func(io.Reader) io.Reader) func(*appender, []byte, pmetric.MetricSlice, time.Time) (parseStats, error) {
	return func(a *appender, body []byte, ms pmetric.MetricSlice, now time.Time) (parseStats, error) {
		var r io.Reader = bytes.NewReader(body)
		if wrap != nil {
			r = wrap(r)
		}
		st, err := a.appendStream(c, r, ct, now, ms, 0, false)
		require.LessOrEqual(t, len(c.buf), c.window, "the buffer never outgrows the window")
		return st, err
	}
}

// minWindow is the smallest window that holds any line of body with the
// longest TYPE line in front of it.
func minWindow(body []byte) int {
	longest, typeLine := 0, 0
	for _, line := range bytes.SplitAfter(body, []byte("\n")) {
		longest = max(longest, len(line))
		if bytes.HasPrefix(line, []byte("# TYPE ")) {
			typeLine = max(typeLine, len(line)+2) // quoted name
		}
	}
	return typeLine + longest + 2 + chunkReserve
}

// textFamilies generates a Prometheus text body of n series per family:
// counters with and without _total, histograms whose le values the parser
// normalises, summaries, untyped series, timestamps, escapes in label
// values and help, UTF-8 names, comments and blank lines.
func textFamilies(n int) []byte {
	var b bytes.Buffer
	b.WriteString("# A comment before anything.\n# HELP req_total Requests, \"quoted\", a \\\\ backslash and a \\n newline.\n# TYPE req_total counter\n")
	for i := range n {
		fmt.Fprintf(&b, "req_total{code=\"%d\",path=\"/a\\\"b\\\\c\\nd/%d\"} %d\n", 200+i%3*100, i, i*7)
	}
	b.WriteString("# TYPE bare counter\n")
	for i := range n {
		fmt.Fprintf(&b, "bare{k=\"v%d\"} %d 1700000000%03d\n", i, i, i%1000)
	}
	b.WriteString("\n# HELP lat Latency.\n# TYPE lat histogram\n")
	for i := range n {
		for j, le := range []string{"0.1", "1", "1e1", "+Inf"} {
			fmt.Fprintf(&b, "lat_bucket{svc=\"s%d\",le=\"%s\"} %d\n", i, le, i+j)
		}
		fmt.Fprintf(&b, "lat_sum{svc=\"s%d\"} %d.5\nlat_count{svc=\"s%d\"} %d\n", i, i, i, i+3)
		// Not a bucket: keeps its le, which the parser normalises as the
		// family is a histogram.
		fmt.Fprintf(&b, "lat_other{svc=\"s%d\",le=\"1\"} 1\n", i)
	}
	b.WriteString("# TYPE rpc summary\n")
	for i := range n {
		fmt.Fprintf(&b, "rpc{m=\"m%d\",quantile=\"0.5\"} 0.1\nrpc{m=\"m%d\",quantile=\"1\"} 0.9\nrpc_sum{m=\"m%d\"} 10\nrpc_count{m=\"m%d\"} %d\n", i, i, i, i, i)
		fmt.Fprintf(&b, "rpc_other{m=\"m%d\",quantile=\"1\"} 1\n", i)
	}
	b.WriteString("# TYPE unt untyped\n")
	for i := range n {
		fmt.Fprintf(&b, "unt{a=\"é%d\",le=\"2\"} -Inf\nafter_untyped{i=\"%d\"} NaN\n", i, i)
	}
	b.WriteString("# TYPE \"utf8.requests\" counter\n")
	for i := range n {
		fmt.Fprintf(&b, "{\"utf8.requests\",\"label.with.dots\"=\"%d\"} %d\n", i, i)
	}
	return b.Bytes()
}

// omFamilies generates an OpenMetrics body of n series per family: counters
// with exemplars and _created lines, a counter without _total, histograms
// with units, exemplars and _created, summaries, gauge histograms, info and
// stateset, timestamps.
func omFamilies(n int) []byte {
	var b bytes.Buffer
	b.WriteString("# HELP jobs Jobs processed.\n# TYPE jobs counter\n")
	for i := range n {
		fmt.Fprintf(&b, "jobs_total{q=\"a%d\"} %d # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e%04d\",span_id=\"00f067aa0ba9%04d\"} 1 1700000000.5\n", i, i+4, i, i)
		fmt.Fprintf(&b, "jobs_created{q=\"a%d\"} 1700000000.%d\n", i, i%10)
	}
	b.WriteString("# TYPE plain counter\n")
	for i := range n {
		fmt.Fprintf(&b, "plain{q=\"%d\"} %d\n", i, i)
	}
	b.WriteString("# TYPE w_seconds histogram\n# UNIT w_seconds seconds\n# HELP w_seconds Wait.\n")
	for i := range n {
		fmt.Fprintf(&b, "w_seconds_bucket{s=\"%d\",le=\"1\"} 1 # {trace_id=\"0af7651916cd43dd8448eb211c80319c\",user=\"u%d\"} 0.5 1700000001\n", i, i)
		fmt.Fprintf(&b, "w_seconds_bucket{s=\"%d\",le=\"+Inf\"} 2\nw_seconds_sum{s=\"%d\"} 3\nw_seconds_count{s=\"%d\"} 2\nw_seconds_created{s=\"%d\"} 1700000001\n", i, i, i, i)
		fmt.Fprintf(&b, "w_seconds_other{s=\"%d\",le=\"10\"} 1\n", i)
	}
	b.WriteString("# TYPE rpc summary\n")
	for i := range n {
		fmt.Fprintf(&b, "rpc{m=\"%d\",quantile=\"0.5\"} 1\nrpc{m=\"%d\",quantile=\"0.9\"} 2\nrpc_sum{m=\"%d\"} 3\nrpc_count{m=\"%d\"} 4\nrpc_created{m=\"%d\"} 1700000002\n", i, i, i, i, i)
	}
	b.WriteString("# TYPE gh gaugehistogram\n")
	for i := range n {
		fmt.Fprintf(&b, "gh_bucket{i=\"%d\",le=\"1\"} 1\ngh_bucket{i=\"%d\",le=\"+Inf\"} 2\ngh_gcount{i=\"%d\"} 2\ngh_gsum{i=\"%d\"} 3\n", i, i, i, i)
	}
	b.WriteString("# TYPE build info\n")
	for i := range n {
		fmt.Fprintf(&b, "build_info{version=\"1.%d\"} 1\n", i)
	}
	b.WriteString("# TYPE state stateset\n")
	for i := range n {
		fmt.Fprintf(&b, "state{state=\"a%d\"} 1\n", i)
	}
	b.WriteString("# TYPE temp gauge\n")
	for i := range n {
		fmt.Fprintf(&b, "temp{room=\"r%d\"} %d.5 1700000000.%03d\n", i, i, i%1000)
	}
	b.WriteString("# EOF\n")
	return b.Bytes()
}

// tinyLines is a text body whose lines fit a 64-byte window.
func tinyLines(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "# TYPE c%d counter\nc%d_total{i=\"%d\"} %d\nc%d{i=\"%d\"} 1\n", i%3, i%3, i, i, i%3, i)
	}
	return b.Bytes()
}

// protoBody encodes the families of a text body as delimited protobuf
// messages, in name order; unit, when set, is given to every family.
func protoBody(t testing.TB, text []byte, unit string) []byte {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(append(bytes.TrimRight(text, "\n"), '\n')))
	require.NoError(t, err)
	names := make([]string, 0, len(fams))
	for name := range fams {
		names = append(names, name)
	}
	sort.Strings(names)
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, name := range names {
		mf := fams[name]
		if unit != "" {
			mf.Unit = &unit
		}
		require.NoError(t, enc.Encode(mf))
	}
	return b.Bytes()
}

// withChanges returns the body, the body again (series found by position
// across chunks) and the body with its first series dropped and one
// added (the position data diverges at once, and again at the end).
func withChanges(body []byte, first, extra string) [][]byte {
	changed := bytes.Replace(body, []byte(first), nil, 1)
	changed = append(changed[:len(changed):len(changed)], extra...)
	return [][]byte{body, body, changed}
}

// Streaming a body through a small window yields exactly what parsing it
// whole does: the same data points (values, attributes, timestamps, start
// times, exemplars, stale markers), the same counts and the same errors,
// over windows that cut it at every offset of a range, with reads of any
// size.
func TestStreamMatchesWholeBody(t *testing.T) {
	envoy := readFile(t, envoyFile)
	om := readFile(t, omFile)
	text := textFamilies(40)
	omGen := omFamilies(30)
	tiny := tinyLines(60)
	require.LessOrEqual(t, minWindow(tiny), 64)
	omChanged := func(b []byte, drop string) [][]byte {
		changed := bytes.Replace(b, []byte(drop), nil, 1)
		changed = bytes.Replace(changed, []byte("# EOF\n"), []byte("# TYPE added gauge\nadded 1\n# EOF\n"), 1)
		return [][]byte{b, b, changed}
	}
	bigProto := protoBody(t, envoyPayload(3000), "")
	tests := []struct {
		name    string
		ct      string
		bodies  [][]byte
		windows []int // default: from the longest line on, byte by byte
		reason  string
	}{
		{"envoy real sample", ctText, withChanges(envoy, "istio_agent_go_goroutines 94\n", "added_late 1\n"), nil, ""},
		{"openmetrics real sample", ctOM, omChanged(om, "go_build_info{checksum=\"\",path=\"\",version=\"\"} 1.0\n"), nil, ""},
		{"generated text", ctText, withChanges(text, "bare{k=\"v0\"} 0 1700000000000\n", "late{x=\"1\"} 2\n"), nil, ""},
		{"generated openmetrics", ctOM, omChanged(omGen, "plain{q=\"0\"} 0\n"), nil, ""},
		{"tiny lines at 64 bytes", ctText, withChanges(tiny, "c0_total{i=\"0\"} 0\n", "z 1\n"), []int{64, 65, 70, 77, 100}, ""},
		{"CRLF text", ctText, [][]byte{bytes.ReplaceAll(text, []byte("\n"), []byte("\r\n"))}, nil, reasonParse},
		{"CRLF openmetrics", ctOM, [][]byte{bytes.ReplaceAll(omGen, []byte("\n"), []byte("\r\n"))}, nil, reasonParse},
		{"blank lines and a final line without newline", ctText, [][]byte{append(bytes.ReplaceAll(tiny, []byte("\n"), []byte("\n\n")), "last 1"...)}, nil, ""},
		{"NUL starting a line ends a text body", ctText, [][]byte{append(append(text[:len(text):len(text)], "\x00"...), text...)}, nil, ""},
		{"openmetrics EOF then more data", ctOM, [][]byte{append(omGen[:len(omGen):len(omGen)], "a 1\n"...)}, nil, reasonParse},
		{"protobuf of the envoy sample", ctProto, [][]byte{protoBody(t, envoy, ""), protoBody(t, envoy, "")}, []int{2048, 2049, 2053, 3000, 4096, streamWindow}, ""},
		{"protobuf families over the window", ctProto, [][]byte{bigProto, bigProto}, []int{4096, 4100, 6000, 10007}, ""},
		{"protobuf families over the window with units after their metrics", ctProto, [][]byte{protoBody(t, envoyPayload(3000), "ms")}, []int{4096, 6001}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			whole := scrapeSeq(t, tt.bodies, tt.ct, nil)
			windows := tt.windows
			if windows == nil {
				lo := 0
				for _, b := range tt.bodies {
					lo = max(lo, minWindow(b))
				}
				for w := lo; w < lo+24; w++ {
					windows = append(windows, w)
				}
				windows = append(windows, 2*lo+1, 4096, streamWindow)
			}
			for _, w := range windows {
				for _, rd := range []struct {
					name string
					wrap func(io.Reader) io.Reader
				}{{"", nil}, {"one byte reads", iotest.OneByteReader}, {"half reads", iotest.HalfReader}} {
					if rd.wrap != nil && w != windows[0] {
						continue
					}
					c := &chunker{window: w}
					got := scrapeSeq(t, tt.bodies, tt.ct, streamWith(t, c, tt.ct, rd.wrap))
					for i := range whole {
						require.Equal(t, whole[i].err, got[i].err, "window %d %s, scrape %d: error", w, rd.name, i)
						require.Equal(t, whole[i].stats, got[i].stats, "window %d %s, scrape %d: stats", w, rd.name, i)
						require.Equal(t, whole[i].points, got[i].points, "window %d %s, scrape %d: data points", w, rd.name, i)
					}
				}
			}
			// The inputs are what they claim: many windows long, and parsed
			// or failing as meant.
			require.Greater(t, len(tt.bodies[0]), 8*windows[0], "the body spans many windows")
			require.Equal(t, tt.reason, whole[0].reason, whole[0].err)
			if tt.reason == "" {
				require.Positive(t, whole[0].stats.scraped)
			}
		})
	}
}

// streamOnce streams one body through a fresh appender and chunker of the
// given window.
func streamOnce(t testing.TB, body []byte, ct string, window int) (outcome, *chunker) {
	t.Helper()
	c := &chunker{window: window}
	return scrapeSeq(t, [][]byte{body}, ct, streamWith(t, c, ct, nil))[0], c
}

func wholeOnce(t testing.TB, body []byte, ct string) outcome {
	t.Helper()
	return scrapeSeq(t, [][]byte{body}, ct, nil)[0]
}

// An OpenMetrics body that fills the buffer exactly, "# EOF" last: the
// chunk is not cut after it (the body may go on), and the body parses.
func TestStreamOpenMetricsEOFFillingTheBuffer(t *testing.T) {
	body := omFamilies(3)
	got, _ := streamOnce(t, body, ctOM, len(body)+chunkReserve)
	require.Empty(t, got.err)
	require.Equal(t, wholeOnce(t, body, ctOM), got)
	// And a body that goes on after such a "# EOF" fails as it would whole.
	more := append(body[:len(body):len(body)], "a 1\n"...)
	got, _ = streamOnce(t, more, ctOM, len(body)+chunkReserve)
	require.Equal(t, wholeOnce(t, more, ctOM).err, got.err)
	require.Equal(t, reasonParse, got.reason)
}

// Outcomes that depend on the window or on cutting a body into lines: a
// line longer than the window fails with line_too_long; a raw line feed in
// a quoted label value fails the same way whole and streamed, wherever the
// window cuts.
func TestStreamLineTooLongAndRawLineFeed(t *testing.T) {
	long := []byte(fmt.Sprintf("ok 1\nlong{v=%q} 1\nafter 2\n", strings.Repeat("x", 300)))
	require.Empty(t, wholeOnce(t, long, ctText).err, "whole, the line is fine")
	got, c := streamOnce(t, long, ctText, 256)
	require.Equal(t, reasonLineTooLong, got.reason, got.err)
	require.Equal(t, 256, len(c.buf), "the buffer stopped at the window")
	got, _ = streamOnce(t, long, ctText, 512)
	require.Empty(t, got.err)

	rawLF := []byte("# TYPE a counter\na_total{x=\"1\"} 1\na_total{x=\"multi\nline\"} 2\nb 3\n")
	whole := wholeOnce(t, rawLF, ctText)
	require.Equal(t, reasonParse, whole.reason)
	require.Contains(t, whole.err, "raw line feed")
	for w := minWindow(rawLF); w < len(rawLF)+chunkReserve+2; w++ {
		got, _ := streamOnce(t, rawLF, ctText, w)
		require.Equal(t, reasonParse, got.reason, "window %d: %s", w, got.err)
	}
	for _, rawName := range []string{"# TYPE \"a\nb\" counter\nc 1\n", "# HELP \"a\nb\" help\nc 1\n", "{\"a\nb\"} 1\n"} {
		whole := wholeOnce(t, []byte(rawName), ctText)
		require.Equal(t, reasonParse, whole.reason, "%q", rawName)
		require.Contains(t, whole.err, "raw line feed")
	}
}

// A body over body_size_limit fails with body_size_limit even when a line
// early in it fails to parse or is too long: the rest is read (not kept),
// as when bodies were read whole before parsing.
func TestStreamBodySizeLimitComesFirst(t *testing.T) {
	padding := strings.Repeat("# padding comment line\n", 1<<16) // 1.5 MiB
	for _, head := range []string{"broken{a=\"b\" 1\n", "x{v=\"" + strings.Repeat("y", 300) + "\"} 1\n", "a 1\na 2\n"} {
		body := head + padding
		for _, limit := range []int64{1 << 20, 4 << 20} {
			a := testAppender(false, 0)
			c := &chunker{window: 256}
			br := &bodyReader{ctx: context.Background(), r: strings.NewReader(body), limit: limit}
			md := pmetric.NewMetrics()
			_, err := a.appendStream(c, br, ctText, time.Now(), md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics(), 0, true)
			var se *scrapeError
			require.ErrorAs(t, err, &se)
			if limit < int64(len(body)) {
				assert.Equal(t, reasonBodySize, se.reason, "%.20q: %v", head, err)
				assert.Equal(t, limit+1, br.n, "read limit+1 bytes, no more")
			} else {
				assert.NotEqual(t, reasonBodySize, se.reason, "%.20q: %v", head, err)
			}
			assert.LessOrEqual(t, len(c.buf), 256)
		}
	}
}

// A protobuf family larger than the window is cut between its metrics;
// one that names itself again after its metrics cannot be, and fails with
// line_too_long; a truncated one fails to parse, as it does whole.
func TestStreamProtobufFamilyOverTheWindow(t *testing.T) {
	body := protoBody(t, envoyPayload(600), "")
	got, _ := streamOnce(t, body, ctProto, 4096)
	require.Empty(t, got.err)
	require.Equal(t, wholeOnce(t, body, ctProto), got)

	// One family, then its name field again after the metrics.
	l, vn := protoVarint(body)
	msg := append([]byte(nil), body[vn:vn+int(l)]...)
	msg = append(msg, 0x0a, 3, 'f', 'o', 'o')
	renamed := append(binaryUvarint(uint64(len(msg))), msg...)
	require.Empty(t, wholeOnce(t, renamed, ctProto).err, "whole, the last name wins")
	got, _ = streamOnce(t, renamed, ctProto, 4096)
	require.Equal(t, reasonLineTooLong, got.reason, got.err)

	truncated := body[:vn+int(l)-10]
	require.Equal(t, reasonParse, wholeOnce(t, truncated, ctProto).reason)
	got, _ = streamOnce(t, truncated, ctProto, 4096)
	require.Equal(t, reasonParse, got.reason, got.err)
}

func binaryUvarint(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// hugeBody generates size bytes of text lazily: blocks of comment lines,
// each with one series of its own, so that the body is far larger than
// any window while the series state stays small. seen sees the target's
// buffer at every Read.
type hugeBody struct {
	size, off int
	block     int
	buf       []byte // one block
	pending   []byte // what is left of it
	seen      func()
}

const hugeBlock = 64 << 10

func (h *hugeBody) Read(p []byte) (int, error) {
	if h.seen != nil {
		h.seen()
	}
	if h.off >= h.size {
		return 0, io.EOF
	}
	if len(h.pending) == 0 {
		line := fmt.Sprintf("huge_body_series{block=\"%d\"} %d\n", h.block, h.block)
		comment := "# " + strings.Repeat("c", 97) + "\n"
		h.buf = append(h.buf[:0], line...)
		for len(h.buf)+len(comment) <= hugeBlock {
			h.buf = append(h.buf, comment...)
		}
		h.pending = h.buf
		h.block++
	}
	n := copy(p[:min(len(p), h.size-h.off)], h.pending)
	h.pending = h.pending[n:]
	h.off += n
	return n, nil
}

// A 200 MiB body streams through a buffer that never exceeds the window,
// and the scrape allocates a small fraction of the body.
func TestStreamHugeBodyHoldsOnlyTheWindow(t *testing.T) {
	const size = 200 << 20
	c := &chunker{window: streamWindow}
	peak := 0
	body := &hugeBody{size: size, seen: func() { peak = max(peak, len(c.buf)) }}
	a := testAppender(false, 0)
	md := pmetric.NewMetrics()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	st, err := a.appendStream(c, body, ctText, time.Now(), md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics(), 0, false)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	assert.Equal(t, size, body.off, "read to the end")
	assert.Equal(t, body.block, st.scraped, "one series per block: the whole body was parsed")
	assert.Equal(t, streamWindow, peak, "the buffer grew to the window")
	assert.LessOrEqual(t, len(c.buf), streamWindow)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("parsing %d MiB allocated %d KiB", size>>20, alloc>>10)
	assert.Less(t, alloc, uint64(16<<20), "allocated while parsing 200 MiB")
}

// scrapeTarget is a target of url with the given body_size_limit, scraped
// by hand.
func scrapeTarget(t *testing.T, url string, limit int64) *target {
	t.Helper()
	client, err := newHTTPClient(TLSConfig{}, nil)
	require.NoError(t, err)
	t.Cleanup(client.CloseIdleConnections)
	j := &job{name: "huge", interval: time.Hour, timeout: time.Minute, accept: acceptHeader(nil), bodyLimit: limit}
	return &target{
		job: j, url: url, resource: map[string]string{"job": "huge", "instance": "x"},
		app:    newAppender(labels.FromStrings("job", "huge", "instance", "x"), false, scrapeLimits{honorTimestamps: true}, nil),
		client: client, next: new(consumertest.MetricsSink), logger: zap.NewNop(), started: time.Now(),
		failures: map[string]float64{}, done: make(chan struct{}),
	}
}

// Over HTTP: a 200 MiB body (body_size_limit set above it) scrapes whole
// while the target's buffer stays within the window, and an endless body
// fails cleanly at body_size_limit, gzip or not.
func TestScrapeHugeAndEndlessBodies(t *testing.T) {
	const size = 200 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		var body io.Reader = &hugeBody{size: size}
		if r.URL.Path == "/endless" {
			body = &hugeBody{size: math.MaxInt}
		}
		if r.URL.Query().Get("gzip") != "" {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzip.NewWriter(w)
			defer gz.Close()
			_, _ = io.Copy(gz, body)
			return
		}
		_, _ = io.Copy(w, body)
	}))
	defer srv.Close()
	defer srv.CloseClientConnections()

	tg := scrapeTarget(t, srv.URL+"/huge", 1<<30)
	tg.scrapeOnce(t.Context())
	md := tg.next.(*consumertest.MetricsSink).AllMetrics()[0]
	require.Equal(t, 1.0, gaugeValue(t, md, "up"))
	ref := &hugeBody{size: size}
	_, _ = io.Copy(io.Discard, ref)
	assert.Equal(t, float64(ref.block), gaugeValue(t, md, "scrape_samples_scraped"), "one series per block: the whole body was parsed")
	assert.Equal(t, int64(size), tg.lastLen)
	assert.Equal(t, streamWindow, cap(tg.chunks.buf), "the target keeps the window, not the body")

	for _, q := range []string{"", "?gzip=1"} {
		tg := scrapeTarget(t, srv.URL+"/endless"+q, 8<<20)
		tg.scrapeOnce(t.Context())
		md := tg.next.(*consumertest.MetricsSink).AllMetrics()[0]
		require.Equal(t, 0.0, gaugeValue(t, md, "up"), q)
		assert.Equal(t, reasonBodySize, failureReason(t, md), q)
		assert.Equal(t, int64(8<<20+1), tg.lastLen, "%s: read limit+1 bytes", q)
		assert.LessOrEqual(t, cap(tg.chunks.buf), streamWindow, q)
	}
}
