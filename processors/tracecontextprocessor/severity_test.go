package tracecontextprocessor

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

func TestSeverityOf(t *testing.T) {
	for v, want := range map[string]plog.SeverityNumber{
		"trace": plog.SeverityNumberTrace, "TRACE": plog.SeverityNumberTrace,
		"debug": plog.SeverityNumberDebug, "DBG": plog.SeverityNumberDebug,
		"info": plog.SeverityNumberInfo, "Information": plog.SeverityNumberInfo, "informational": plog.SeverityNumberInfo,
		"notice": plog.SeverityNumberInfo2,
		"warn":   plog.SeverityNumberWarn, "WARNING": plog.SeverityNumberWarn,
		"error": plog.SeverityNumberError, "err": plog.SeverityNumberError, "ERROR": plog.SeverityNumberError,
		"fatal": plog.SeverityNumberFatal, "critical": plog.SeverityNumberFatal, "CRIT": plog.SeverityNumberFatal,
		"emerg": plog.SeverityNumberFatal, "dpanic": plog.SeverityNumberFatal, "panic": plog.SeverityNumberFatal2,
		"10": plog.SeverityNumberTrace, "20": plog.SeverityNumberDebug, "30": plog.SeverityNumberInfo,
		"40": plog.SeverityNumberWarn, "50": plog.SeverityNumberError, "60": plog.SeverityNumberFatal,
	} {
		got, ok := severityOf(v)
		assert.True(t, ok, v)
		assert.Equal(t, want, got, v)
	}
	for _, v := range []string{"", "0", "3", "7", "17", "35", "70", "loud", "errors", "information2", "informationalx", "i", "e", "warnings"} {
		_, ok := severityOf(v)
		assert.False(t, ok, v)
	}
}

// TestFindSeverity: keyed levels in JSON (also escaped inside a docker
// json-file line), logfmt and "key: value" forms; decoys are ignored; the
// leftmost level key wins.
func TestFindSeverity(t *testing.T) {
	for _, tc := range []struct {
		line string
		want plog.SeverityNumber
		text string
	}{
		{`{"level":"error","msg":"upstream reset"}`, plog.SeverityNumberError, "error"},
		{`{"ts":1.7e9, "level": "WARN", "msg":"slow"}`, plog.SeverityNumberWarn, "WARN"},
		{`{"log":"{\"level\":\"fatal\",\"msg\":\"x\"}\n","stream":"stderr"}`, plog.SeverityNumberFatal, "fatal"},
		{`ts=2026-12-03T12:00:00Z level=info msg="request done" status=200`, plog.SeverityNumberInfo, "info"},
		{`t=2026-12-03T12:00:00Z lvl=dbg msg=x`, plog.SeverityNumberDebug, "dbg"},
		{`severity: CRITICAL disk full`, plog.SeverityNumberFatal, "CRITICAL"},
		{`{"Level":"Warning","Message":"x"}`, plog.SeverityNumberWarn, "Warning"},
		{`{"@timestamp":"2026-12-03","log.level":"error","message":"x"}`, plog.SeverityNumberError, "error"},
		{`{"level":50,"time":1733227200000,"pid":1,"msg":"boom"}`, plog.SeverityNumberError, "ERROR"},
		{`{"level":30,"msg":"ok"}`, plog.SeverityNumberInfo, "INFO"},
		{`{"severity":"panic"}`, plog.SeverityNumberFatal2, "panic"},
		{`level='notice' x`, plog.SeverityNumberInfo2, "notice"},
		{`level=info msg="retry level=error"`, plog.SeverityNumberInfo, "info"},
		{`msg="x" severity=err level=debug`, plog.SeverityNumberError, "err"},
		{`level=loud level=error`, plog.SeverityNumberError, "error"},
		// Not levels.
		{`level=3 msg=x`, 0, ""},
		{`{"level":7}`, 0, ""},
		{`parent_level=error`, 0, ""},
		{`loglevel=error`, 0, ""},
		{`x.level=error`, 0, ""},
		{`levels=error`, 0, ""},
		{`level=errors`, 0, ""},
		{`level=error_budget`, 0, ""},
		{`the error level is high`, 0, ""},
		{`battery level: low`, 0, ""},
		{`ERROR something broke`, 0, ""},
		{`level=`, 0, ""},
		{`level`, 0, ""},
		{`l`, 0, ""},
		{``, 0, ""},
	} {
		n, text, ok := findSeverity(tc.line)
		assert.Equal(t, tc.want != 0, ok, tc.line)
		assert.Equal(t, tc.want, n, tc.line)
		assert.Equal(t, tc.text, text, tc.line)
	}
}

// TestApplySeverity: only records without a SeverityNumber are set; a
// SeverityText naming a level gives the number and is kept; map bodies
// and attributes are searched; a record with a trace ID gets its
// severity too; severity: false turns it off.
func TestApplySeverity(t *testing.T) {
	p := newLogsProcessor(&Config{Body: true, Attributes: []string{"message"}, Severity: true})
	rec := func(setup func(lr plog.LogRecord)) plog.LogRecord {
		lr := plog.NewLogRecord()
		setup(lr)
		return lr
	}
	for _, tc := range []struct {
		name string
		lr   plog.LogRecord
		num  plog.SeverityNumber
		text string
	}{
		{"json body", rec(func(lr plog.LogRecord) { lr.Body().SetStr(`{"level":"error"}`) }), plog.SeverityNumberError, "error"},
		{"set number kept", rec(func(lr plog.LogRecord) {
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			lr.Body().SetStr(`level=error`)
		}), plog.SeverityNumberInfo, ""},
		{"text names a level", rec(func(lr plog.LogRecord) {
			lr.SetSeverityText("Warning")
			lr.Body().SetStr(`level=error`)
		}), plog.SeverityNumberWarn, "Warning"},
		{"text of its own kept", rec(func(lr plog.LogRecord) {
			lr.SetSeverityText("W")
			lr.Body().SetStr(`level=error`)
		}), 0, "W"},
		{"map body", rec(func(lr plog.LogRecord) { lr.Body().SetEmptyMap().PutStr("level", "warn") }), plog.SeverityNumberWarn, "warn"},
		{"map body pino int", rec(func(lr plog.LogRecord) { lr.Body().SetEmptyMap().PutInt("level", 60) }), plog.SeverityNumberFatal, "FATAL"},
		{"map body pino double", rec(func(lr plog.LogRecord) { lr.Body().SetEmptyMap().PutDouble("level", 40) }), plog.SeverityNumberWarn, "WARN"},
		{"map body int not pino", rec(func(lr plog.LogRecord) { lr.Body().SetEmptyMap().PutInt("level", 3) }), 0, ""},
		{"ECS nested", rec(func(lr plog.LogRecord) { lr.Body().SetEmptyMap().PutEmptyMap("log").PutStr("level", "error") }), plog.SeverityNumberError, "error"},
		{"ECS dotted", rec(func(lr plog.LogRecord) { lr.Body().SetEmptyMap().PutStr("log.level", "debug") }), plog.SeverityNumberDebug, "debug"},
		{"attribute", rec(func(lr plog.LogRecord) {
			lr.Body().SetStr("plain text")
			lr.Attributes().PutStr("message", `lvl=error`)
		}), plog.SeverityNumberError, "error"},
		{"with a trace id", rec(func(lr plog.LogRecord) {
			lr.SetTraceID(pcommon.TraceID{1})
			lr.Body().SetStr(`level=error trace_id=` + tid)
		}), plog.SeverityNumberError, "error"},
		{"nothing", rec(func(lr plog.LogRecord) { lr.Body().SetStr("GET / 500") }), 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.applySeverity(tc.lr)
			assert.Equal(t, tc.num, tc.lr.SeverityNumber())
			assert.Equal(t, tc.text, tc.lr.SeverityText())
		})
	}

	off := newLogsProcessor(&Config{Body: true})
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr(`level=error`)
	_, err := off.processLogs(t.Context(), ld)
	require.NoError(t, err)
	assert.Equal(t, plog.SeverityNumberUnspecified, lr.SeverityNumber(), "severity: false")
	on := newLogsProcessor(&Config{Body: true, Severity: true})
	_, err = on.processLogs(t.Context(), ld)
	require.NoError(t, err)
	assert.Equal(t, plog.SeverityNumberError, lr.SeverityNumber())
}

// TestSeverityNoAllocs: finding and setting a severity allocates nothing.
func TestSeverityNoAllocs(t *testing.T) {
	p := newLogsProcessor(&Config{Body: true, Severity: true})
	lr := plog.NewLogRecord()
	for _, line := range []string{`{"level":"error","msg":"x"}`, `ts=1 level=WARNING msg=x`, `{"level":50}`, `no level here`} {
		lr.Body().SetStr(line)
		allocs := testing.AllocsPerRun(100, func() {
			lr.SetSeverityNumber(0)
			lr.SetSeverityText("")
			p.applySeverity(lr)
		})
		assert.Zero(t, allocs, line)
	}
	m := plog.NewLogRecord()
	m.Body().SetEmptyMap().PutInt("level", 50)
	assert.Zero(t, testing.AllocsPerRun(100, func() { m.SetSeverityNumber(0); m.SetSeverityText(""); p.applySeverity(m) }))
}

// TestRealdataSeverity: of the real samples, only the Istio Mixer
// access-log entry (a JSON object with "level":"info", read raw from the
// docker json-file line or as the unescaped message) carries a keyed
// level; no other line may get a severity (their [INFO], [ info] and
// status 500 are not keyed levels). Then every real line with a logfmt
// level added the way a producer writes it (after the CRI message,
// inside the docker "log" string, at the end of an Istio access line)
// must map.
func TestRealdataSeverity(t *testing.T) {
	p := newLogsProcessor(&Config{Body: true, Severity: true})
	files := realLines(t, realPatterns...) // docker-*.log includes the Mixer line
	mixer := files["docker-fluent-bit-istio-proxy-mixer-accesslog.log"]
	require.Len(t, mixer, 1)
	set := func(body string) plog.LogRecord {
		lr := plog.NewLogRecord()
		lr.Body().SetStr(body)
		p.applySeverity(lr)
		return lr
	}
	lr := set(mixer[0])
	assert.Equal(t, plog.SeverityNumberInfo, lr.SeverityNumber(), "raw docker line")
	assert.Equal(t, "info", lr.SeverityText())
	inner := strings.ReplaceAll(mixer[0][len(`{"log":"`):strings.Index(mixer[0], `\n"`)], `\"`, `"`)
	require.True(t, strings.HasPrefix(inner, `{"level":"info",`), inner)
	assert.Equal(t, plog.SeverityNumberInfo, set(inner).SeverityNumber(), "unescaped message, as container_logs hands it on")

	lines, hits, total := 0, 0, 0
	for name, ls := range files {
		for i, l := range ls {
			if name == "docker-fluent-bit-istio-proxy-mixer-accesslog.log" {
				continue
			}
			lines++
			assert.Equal(t, plog.SeverityNumberUnspecified, set(l).SeverityNumber(), "%s line %d: %s", name, i+1, l)
			body, _ := strings.CutSuffix(l, "\r")
			for _, lv := range []struct {
				word string
				want plog.SeverityNumber
			}{{"error", plog.SeverityNumberError}, {"warning", plog.SeverityNumberWarn}, {"debug", plog.SeverityNumberDebug}} {
				var v string
				switch {
				case strings.HasPrefix(body, `{"log":"`):
					v = `{"log":"level=` + lv.word + ` ` + body[len(`{"log":"`):]
				default: // CRI message or Istio access line: append
					v = body + ` level=` + lv.word
				}
				total++
				if got := set(v); assert.Equal(t, lv.want, got.SeverityNumber(), "%s line %d: %s", name, i+1, v) {
					hits++
				}
			}
		}
	}
	t.Logf("%d real lines without a level; %d/%d with one added mapped", lines, hits, total)
	assert.GreaterOrEqual(t, lines, 60)
	assert.Equal(t, total, hits)
}

// FuzzSeverity: findSeverity never panics; a found text is a substring of
// the line (or a numeric level's name) and maps back to the same number.
func FuzzSeverity(f *testing.F) {
	for _, s := range []string{`{"level":"error"}`, `level=WARN`, `{"level":50}`, `lvl=`, `severity: crit`, `log.level=info`, `Level`, `evel=`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, text, ok := findSeverity(s)
		if !ok {
			if n != 0 || text != "" {
				t.Fatalf("no match but result set: %v %q", n, text)
			}
			return
		}
		if !strings.Contains(s, text) && numericText(n) != text {
			t.Fatalf("text %q not in %q", text, s)
		}
		if back, ok := severityOf(text); ok && back != n {
			t.Fatalf("%q maps to %v, found %v", text, back, n)
		}
	})
}
