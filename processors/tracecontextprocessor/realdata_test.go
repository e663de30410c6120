package tracecontextprocessor

import (
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// realdataDir is the repository's testdata/: real samples (read-only), see
// its SOURCES.md.
const realdataDir = "../../testdata"

// realLines returns the lines of the realdata files matching the patterns,
// keyed by file name. Files are only read.
func realLines(t *testing.T, patterns ...string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, pat := range patterns {
		files, err := filepath.Glob(filepath.Join(realdataDir, pat))
		require.NoError(t, err)
		require.NotEmpty(t, files, "no %s in %s: the real samples live in the repository's testdata/", pat, realdataDir)
		for _, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			for _, l := range strings.Split(string(b), "\n") {
				if l != "" {
					out[filepath.Base(f)] = append(out[filepath.Base(f)], l)
				}
			}
		}
	}
	return out
}

var realPatterns = []string{"access-istio-text-*.log", "docker-*.log", "cri-*.log"}

// TestRealdataNoFalseIDs: the real samples carry no trace context (the Istio
// access logs carry only x-request-id UUIDs), so nothing may be extracted.
func TestRealdataNoFalseIDs(t *testing.T) {
	e := newExtractor(FieldsConfig{})
	files := realLines(t, realPatterns...)
	lines, uuids := 0, 0
	for name, ls := range files {
		for i, l := range ls {
			lines++
			if isUUIDLine(l) {
				uuids++
			}
			assert.Equal(t, none, extractLine(e, l), "%s line %d: %s", name, i+1, l)
		}
	}
	t.Logf("%d lines in %d files, %d with an x-request-id UUID", lines, len(files), uuids)
	assert.GreaterOrEqual(t, lines, 60)
	assert.GreaterOrEqual(t, uuids, 7, "the Istio samples' x-request-id decoys should be present")
}

// isUUIDLine reports whether l contains a quoted UUID (8-4-4-4-12 hex).
func isUUIDLine(l string) bool {
	for i := 0; i+38 <= len(l); i++ {
		if l[i] != '"' || l[i+37] != '"' {
			continue
		}
		u := l[i+1 : i+37]
		if u[8] == '-' && u[13] == '-' && u[18] == '-' && u[23] == '-' &&
			allHex(u[:8]+u[9:13]+u[14:18]+u[19:23]+u[24:]) {
			return true
		}
	}
	return false
}

// TestRealdataWithTraceContext copies every real line and adds trace context
// the way the producer would (a traceparent or b3 header appended to the
// Istio text format, a logfmt pair inside a docker json-file "log" string or
// after a CRI message), then requires the exact IDs back.
func TestRealdataWithTraceContext(t *testing.T) {
	e := newExtractor(FieldsConfig{})
	rng := rand.New(rand.NewPCG(5, 5))
	files := realLines(t, realPatterns...)
	total, hits := 0, 0
	for name, ls := range files {
		for i, l := range ls {
			tr, sp := randHex(rng, 16), randHex(rng, 8)
			body, cr := strings.CutSuffix(l, "\r")
			var variants []string
			switch {
			case strings.HasPrefix(name, "access-istio-text"):
				variants = []string{
					body + ` "00-` + tr + `-` + sp + `-01"`,
					body + ` "` + tr + `-` + sp + `-1"`,
				}
			case strings.HasPrefix(body, `{"log":"`):
				variants = []string{`{"log":"trace_id=` + tr + ` span_id=` + sp + ` ` + body[len(`{"log":"`):]}
			default: // CRI: the message is the rest of the line
				variants = []string{body + ` trace_id=` + tr + ` span_id=` + sp}
			}
			for _, v := range variants {
				if cr {
					v += "\r"
				}
				total++
				got := extractLine(e, v)
				if assert.Equal(t, tr, got.trace, "%s line %d: %s", name, i+1, v) && assert.Equal(t, sp, got.span) {
					hits++
				}
			}
		}
	}
	t.Logf("recall %d/%d", hits, total)
	assert.Equal(t, total, hits)
}

func randHex(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if b[0] != 0 {
			return hex.EncodeToString(b)
		}
	}
}
