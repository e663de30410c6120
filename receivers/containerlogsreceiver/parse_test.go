package containerlogsreceiver

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// realdata is the repository's testdata/: real samples, see its SOURCES.md.
const realdata = "../../testdata"

func mustTS(t *testing.T, s string) int64 {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return ts.UnixNano()
}

func TestParseRFC3339(t *testing.T) {
	for _, s := range []string{
		"2019-08-21T09:24:33.260739149+02:00",
		"2018-10-31T19:24:43.718467142Z",
		"2021-01-06T13:53:05.349022525-07:00",
		"2016-03-02T22:59:04.66649744Z",
		"2000-02-29T00:00:00Z",
		"1969-12-31T23:59:59.5Z",
		"2100-03-01T12:00:00.000000001+14:00",
	} {
		got, ok := parseRFC3339([]byte(s))
		require.True(t, ok, s)
		assert.Equal(t, mustTS(t, s), got, s)
	}
	for _, s := range []string{"", "2019-08-21", "2019-08-21T09:24:33", "2019-13-21T09:24:33Z",
		"2019-08-21T09:24:33.Z", "2019-08-21T09:24:33+0200", "2019-08-21T09:24:33Zx", "2019-08-21T25:24:33Z"} {
		_, ok := parseRFC3339([]byte(s))
		assert.False(t, ok, s)
	}
}

func TestParseCRI(t *testing.T) {
	tests := []struct {
		line    string
		stream  stream
		partial bool
		msg     string
		err     bool
	}{
		{line: "2018-10-31T19:24:43.718467142Z stderr F Fluent-Bit v0.14.4", stream: streamStderr, msg: "Fluent-Bit v0.14.4"},
		{line: "2018-10-31T19:24:43.718512241Z stderr F ", stream: streamStderr, msg: ""},
		{line: "2018-10-31T19:24:43.718512241Z stdout F", stream: streamStdout, msg: ""},
		{line: "2021-01-05T09:30:48.745347870-07:00 stdout P 2", stream: streamStdout, partial: true, msg: "2"},
		{line: "2021-01-05T09:30:48.745347870-07:00 stdout F:x a  b ", stream: streamStdout, msg: "a  b "},
		{line: "2021-01-05T09:30:48.745347870-07:00 stdin F x", err: true},
		{line: "2021-01-05T09:30:48.745347870-07:00 stdout X x", err: true},
		{line: "2021-01-05T09:30:48.745347870-07:00 stdout FF x", err: true},
		{line: "not-a-time stdout F x", err: true},
		{line: "", err: true},
		{line: "2021-01-05T09:30:48Z", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			var e entry
			err := parseCRI([]byte(tt.line), &e)
			if tt.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.stream, e.stream)
			assert.Equal(t, tt.partial, e.partial)
			assert.Equal(t, tt.msg, string(e.msg))
		})
	}
}

func TestParseDocker(t *testing.T) {
	tests := []struct {
		line    string
		stream  stream
		partial bool
		msg     string
		ts      string
		err     bool
	}{
		{line: `{"log":"hello\n","stream":"stdout","time":"2018-02-21T17:26:53.360920913Z"}`, stream: streamStdout, msg: "hello", ts: "2018-02-21T17:26:53.360920913Z"},
		{line: `{"stream":"stderr","log":"a \"q\" \\ \/ \t \u00e9 \ud83d\ude00 end\n","time":"2018-02-21T17:26:53Z"}`, stream: streamStderr, msg: "a \"q\" \\ / \t é 😀 end", ts: "2018-02-21T17:26:53Z"},
		{line: `{"log":"partial"}`, stream: streamUnknown, partial: true, msg: "partial"},
		{line: `{"log":"x\n","attrs":{"a":[1,2,{"b":null}],"c":true},"stream":"stdout","time":"2018-02-21T17:26:53Z"}`, stream: streamStdout, msg: "x", ts: "2018-02-21T17:26:53Z"},
		{line: `{"log":"lone \ud83d surrogate\n"}`, stream: streamUnknown, msg: "lone \uFFFD surrogate"},
		{line: ` { "log" : "spaces\n" , "stream" : "stdout" } `, stream: streamStdout, msg: "spaces"},
		{line: `"log":"cp packetbeat.yml\n","stream":"stdout"}`, err: true},
		{line: `{"log":"unterminated`, err: true},
		{line: `{"log":"x","time":"yesterday"}`, err: true},
		{line: `{"log":1}`, err: true},
		{line: `{`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			var p dockerParser
			var e entry
			err := p.parse([]byte(tt.line), &e)
			if tt.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.stream, e.stream)
			assert.Equal(t, tt.partial, e.partial)
			assert.Equal(t, tt.msg, string(e.msg))
			if tt.ts != "" {
				assert.Equal(t, mustTS(t, tt.ts), e.ts)
			} else {
				assert.Zero(t, e.ts)
			}
		})
	}
}

// parsedFile runs a whole file through the parser and assembler the way the
// tailer does and returns the records and the number of parse errors.
type parsedRecord struct {
	stream stream
	body   string
	ts     int64
	flags  string
}

func parseFile(t *testing.T, data []byte, multiline string) ([]parsedRecord, int) {
	t.Helper()
	var (
		out  []parsedRecord
		errs int
		fmt  format
		dp   dockerParser
		asm  = assembler{maxLen: 1 << 20}
		jn   *joiner
	)
	if multiline != "" {
		jn = &joiner{start: mustRegexp(t, multiline), maxLen: 1 << 20}
	}
	add := func(r record) {
		flags := ""
		if r.truncated {
			flags += "T"
		}
		if r.incomplete {
			flags += "I"
		}
		out = append(out, parsedRecord{stream: r.stream, body: string(r.body), ts: r.ts, flags: flags})
	}
	emit := func(r record) {
		if jn != nil {
			var ok bool
			if r, ok = jn.add(r, time.Now()); !ok {
				return
			}
		}
		add(r)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	off := int64(0)
	for sc.Scan() {
		line := sc.Bytes()
		lineOff := off
		off += int64(len(line)) + 1
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if fmt == formatUnknown {
			fmt = detectFormat(line)
		}
		var e entry
		var err error
		switch fmt {
		case formatCRI:
			err = parseCRI(line, &e)
		case formatDocker:
			err = dp.parse(line, &e)
		default:
			err = errCRIFields
		}
		if err != nil {
			errs++
			e = entry{stream: streamUnknown, msg: line}
		}
		if r, ok := asm.add(&e, lineOff, time.Now()); ok {
			emit(r)
		}
	}
	for {
		r, ok := asm.expired(time.Now(), 0)
		if !ok {
			break
		}
		emit(r)
	}
	if jn != nil {
		for {
			r, ok := jn.expired(time.Now(), 0)
			if !ok {
				break
			}
			add(r)
		}
	}
	return out, errs
}

func TestRealSamples(t *testing.T) {
	read := func(t *testing.T, name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(realdata, name))
		require.NoError(t, err, "real samples are in the repository's testdata/")
		return b
	}
	t.Run("cri-podman-k8sfile-full-crlf", func(t *testing.T) {
		recs, errs := parseFile(t, read(t, "cri-podman-k8sfile-full-crlf.log"), "")
		require.Zero(t, errs)
		require.Len(t, recs, 2)
		assert.Equal(t, "1", recs[0].body)
		assert.Equal(t, "2", recs[1].body)
		assert.Equal(t, mustTS(t, "2021-01-06T13:53:05.349022525-07:00"), recs[0].ts)
	})
	t.Run("cri-podman-k8sfile-partial-crlf", func(t *testing.T) {
		recs, errs := parseFile(t, read(t, "cri-podman-k8sfile-partial-crlf.log"), "")
		require.Zero(t, errs)
		require.Len(t, recs, 2)
		assert.Equal(t, "1", recs[0].body)
		assert.Equal(t, "2", recs[1].body, "P fragment joined with its F, CR dropped")
		assert.Equal(t, mustTS(t, "2021-01-05T09:30:48.745347870-07:00"), recs[1].ts, "time of the first fragment")
	})
	t.Run("cri-containerd-calico-tz-offset", func(t *testing.T) {
		recs, errs := parseFile(t, read(t, "cri-containerd-calico-tz-offset.log"), "")
		require.Zero(t, errs)
		require.Len(t, recs, 4)
		assert.Equal(t, mustTS(t, "2019-08-21T07:24:33.260739149Z"), recs[0].ts, "+02:00 offset applied")
		assert.Greater(t, recs[1].ts, recs[2].ts, "out-of-order timestamps kept as written")
		assert.True(t, strings.HasPrefix(recs[3].body, "2019-08-21 07:24:33.259 [INFO][41] ipsets.go 223"))
	})
	t.Run("cri-containerd-fluent-bit-stderr", func(t *testing.T) {
		recs, errs := parseFile(t, read(t, "cri-containerd-fluent-bit-stderr.log"), "")
		require.Zero(t, errs)
		require.Len(t, recs, 9)
		assert.Equal(t, "", recs[2].body, "empty message kept")
		for _, r := range recs {
			assert.Equal(t, streamStderr, r.stream)
		}
	})
	t.Run("docker-beats-corrupted-line", func(t *testing.T) {
		recs, errs := parseFile(t, read(t, "docker-beats-corrupted-line.log"), "")
		assert.Equal(t, 1, errs, "line 7 is corrupted")
		require.Len(t, recs, 21, "the corrupted line is kept raw, nothing dropped")
		assert.Equal(t, streamUnknown, recs[6].stream)
		assert.True(t, strings.HasPrefix(recs[6].body, `"log":"cp packetbeat.yml`))
		assert.Equal(t, "# binary", recs[7].body)
		assert.Equal(t, "Fetching main repository github.com/elastic/beats...", recs[0].body)
	})
	t.Run("docker-fluent-bit-split-partial-line", func(t *testing.T) {
		recs, errs := parseFile(t, read(t, "docker-fluent-bit-split-partial-line.log"), "")
		require.Zero(t, errs)
		require.Len(t, recs, 2)
		assert.Equal(t, "2020-03-24 Single line", recs[0].body)
		assert.Equal(t, "2020-03-24 Another single line", recs[1].body)
	})
	t.Run("docker-fluent-bit-multiline", func(t *testing.T) {
		recs, errs := parseFile(t, read(t, "docker-fluent-bit-multiline.log"), `^\d{4}-\d{2}-\d{2} `)
		require.Zero(t, errs)
		require.Len(t, recs, 2)
		assert.Equal(t, "2020-03-24 Multiple lines: \nfirst bullet point\nsecond bullet point\nthird bullet point\nfourth bullet point", recs[0].body)
		assert.Equal(t, "2020-03-24 Single line", recs[1].body)
	})
	t.Run("docker-fluent-bit-istio-init-stdout-stderr", func(t *testing.T) {
		recs, errs := parseFile(t, read(t, "docker-fluent-bit-istio-init-stdout-stderr.log"), "")
		require.Zero(t, errs)
		require.Len(t, recs, 2)
		assert.Equal(t, parsedRecord{stream: streamStderr, body: "format_type stderr", ts: mustTS(t, "2018-09-17T21:36:50.598656444Z")}, recs[0])
		assert.Equal(t, parsedRecord{stream: streamStdout, body: "the_format: stdout", ts: mustTS(t, "2018-09-17T21:36:50.598656444Z")}, recs[1])
	})
	for _, name := range []string{"docker-fluent-bit-apache.log", "docker-fluent-bit-json-payload.log",
		"docker-fluent-bit-session-db-redis.log", "docker-fluent-bit-istio-proxy-mixer-accesslog.log"} {
		t.Run(name, func(t *testing.T) {
			recs, errs := parseFile(t, read(t, name), "")
			require.Zero(t, errs)
			require.Len(t, recs, 1)
			assert.Equal(t, streamStdout, recs[0].stream)
			assert.NotContains(t, recs[0].body, `\"`, "escapes decoded")
			assert.NotEmpty(t, recs[0].body)
		})
	}
	t.Run("docker-fluent-bit-apache body", func(t *testing.T) {
		recs, _ := parseFile(t, read(t, "docker-fluent-bit-apache.log"), "")
		assert.Equal(t, `20.38.166.115 - - [21/Feb/2018:17:26:53 +0000] "GET /intra-abdominally HTTP/1.0" 500 2216`, recs[0].body)
	})
}

func TestAssemblerLimitsAndStreams(t *testing.T) {
	a := assembler{maxLen: 1024}
	now := time.Now()
	add := func(s stream, partial bool, msg string, off int64) (record, bool) {
		e := entry{stream: s, partial: partial, msg: []byte(msg), ts: off}
		return a.add(&e, off, now)
	}
	_, ok := add(streamStdout, true, strings.Repeat("a", 600), 0)
	require.False(t, ok)
	_, ok = add(streamStderr, true, "err-", 1)
	require.False(t, ok)
	assert.Equal(t, int64(0), a.minStart())
	r, ok := add(streamStdout, false, strings.Repeat("b", 600), 2)
	require.True(t, ok)
	assert.True(t, r.truncated)
	assert.Len(t, r.body, 1024)
	assert.Equal(t, int64(0), r.start)
	assert.Equal(t, int64(1), a.minStart(), "stderr still pending")
	r, ok = add(streamStderr, false, "end", 3)
	require.True(t, ok)
	assert.Equal(t, "err-end", string(r.body))
	assert.False(t, r.truncated)
	assert.Equal(t, int64(-1), a.minStart())

	// A lone P is flushed after the timeout, flagged incomplete.
	_, ok = add(streamStdout, true, "lonely", 4)
	require.False(t, ok)
	_, ok = a.expired(now.Add(time.Second), 5*time.Second)
	require.False(t, ok)
	r, ok = a.expired(now.Add(5*time.Second), 5*time.Second)
	require.True(t, ok)
	assert.True(t, r.incomplete)
	assert.Equal(t, "lonely", string(r.body))
}

func FuzzParseCRI(f *testing.F) {
	for _, s := range []string{
		"2018-10-31T19:24:43.718467142Z stderr F Fluent-Bit v0.14.4",
		"2021-01-05T09:30:48.745347870-07:00 stdout P 2",
		"2019-08-21T09:24:33.260739149+02:00 stdout F x",
		"2018-10-31T19:24:43.718512241Z stderr F ",
		"2018-10-31T19:24:43Z stdout F:tag \xff\xfe",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var e entry
		if err := parseCRI(line, &e); err != nil {
			return
		}
		// The message is the line's tail, so it can never be longer.
		if len(e.msg) > len(line) || !bytes.HasSuffix(line, e.msg) {
			t.Fatalf("message %q is not a suffix of %q", e.msg, line)
		}
		if e.stream != streamStdout && e.stream != streamStderr {
			t.Fatalf("stream %v accepted", e.stream)
		}
	})
}

func FuzzParseDocker(f *testing.F) {
	for _, s := range []string{
		`{"log":"hello\n","stream":"stdout","time":"2018-02-21T17:26:53.360920913Z"}`,
		`{"log":"a \"q\" \u00e9 \ud83d\ude00\n","stream":"stderr"}`,
		`{"log":"partial"}`,
		`{"log":"x\n","attrs":{"a":[1,2,{"b":null}]},"time":"2018-02-21T17:26:53Z"}`,
		`"log":"corrupted\n"}`,
		"{\"log\":\"\xff\xfe\\n\"}",
		`{"log":"\ud800\n"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var p dockerParser
		var e entry
		if err := p.parse(line, &e); err != nil {
			return
		}
		// A message decoded from valid UTF-8 JSON stays valid UTF-8.
		if utf8.Valid(line) && !utf8.Valid(e.msg) {
			t.Fatalf("invalid UTF-8 %q from valid input %q", e.msg, line)
		}
		if len(e.msg) > len(line) {
			t.Fatalf("message longer than the line")
		}
	})
}

func mustRegexp(t *testing.T, s string) *regexp.Regexp {
	t.Helper()
	re, err := regexp.Compile(s)
	require.NoError(t, err)
	return re
}
