package podscrapereceiver

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/stretchr/testify/require"
)

// omExemplarDiff parses body with Prometheus's OpenMetrics parser and, for
// every sample line, compares omExemplar's reading of the line with the
// parser's Exemplar. It returns how many lines omExemplar read (ok) and
// how many carried an exemplar; with strict, every line must be read.
func omExemplarDiff(t *testing.T, body []byte, strict bool) (read, found int) {
	t.Helper()
	p := textparse.NewOpenMetricsParser(body, labels.NewSymbolTable())
	sb := labels.NewScratchBuilder(4)
	for {
		e, err := p.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && strict {
				t.Fatalf("parser refused the body: %v", err)
			}
			return read, found
		}
		if e != textparse.EntrySeries {
			continue
		}
		met, _, _ := p.Series()
		rest, ok := omLineRest(body, met)
		require.True(t, ok, "series %q not found within the body", met)
		var got exemplar.Exemplar
		gotFound, ok := omExemplar(rest, &sb, &got)
		var want exemplar.Exemplar
		wantFound := p.Exemplar(&want)
		if !ok {
			require.False(t, strict, "line of %q not read: %q", met, rest)
			continue
		}
		read++
		require.Equal(t, wantFound, gotFound, "exemplar found, line of %q: %q", met, rest)
		if !wantFound {
			continue
		}
		found++
		require.True(t, labels.Equal(want.Labels, got.Labels), "labels, line of %q: parser %s, here %s", met, want.Labels, got.Labels)
		require.Equal(t, math.Float64bits(want.Value), math.Float64bits(got.Value), "value, line of %q: parser %v, here %v", met, want.Value, got.Value)
		require.Equal(t, want.HasTs, got.HasTs, "has timestamp, line of %q", met)
		require.Equal(t, want.Ts, got.Ts, "timestamp, line of %q", met)
	}
}

// The real sample (Prometheus's OpenMetrics test data, with dummyID
// exemplars and timestamps) and the store-memory payload: every line read
// here as the parser reads it.
func TestOMExemplarMatchesParser(t *testing.T) {
	real, err := os.ReadFile(filepath.Join(realdata, "openmetrics-exemplars-prometheus-omtestdata.txt"))
	require.NoError(t, err)
	read, found := omExemplarDiff(t, real, true)
	require.Equal(t, 6, found, "the sample's exemplars")
	require.Greater(t, read, 50)

	payload := openMetricsPayload(2000, true, 7)
	read, found = omExemplarDiff(t, payload, true)
	lines := bytes.Split(bytes.TrimSuffix(payload, []byte("\n")), []byte("\n"))
	samples := 0
	for _, l := range lines {
		if !bytes.HasPrefix(l, []byte("#")) {
			samples++
		}
	}
	require.Equal(t, samples, read, "every sample line read")
	require.Equal(t, bytes.Count(payload, []byte(" # {")), found, "every exemplar")
}

// Lines whose exemplars are odd but valid OpenMetrics.
func TestOMExemplarOddLines(t *testing.T) {
	body := []byte(`# TYPE c counter
c_total{a="x # y"} 1 # {trace_id="abc",span_id="1"} 2
c_total{a="no"} 1 1700000000.5 # {} 3
c_total{a="comma"} 1 # {x="1",} 4 1700000000.25
c_total{a="esc"} 1 # {x="q\"u}o\\te",y="a,b"} NaN
c_total{a="quoted"} 1 # {"quoted.name"="v"} -Inf 1.7e9
c_total{a="plain"} 1
c_total{a="exp"} 1 # {x="1"} 1e3 1700000000.001
# EOF
`)
	read, found := omExemplarDiff(t, body, true)
	require.Equal(t, 7, read)
	require.Equal(t, 6, found)
}

// What omExemplar cannot read it says so (ok false), so that the caller
// asks the parser; it never reads a line wrong.
func TestOMExemplarGivesUp(t *testing.T) {
	sb := labels.NewScratchBuilder(2)
	var e exemplar.Exemplar
	for _, rest := range []string{
		` 1 # trace_id="a"} 1`,
		` 1 # {trace_id="a} 1`,
		` 1 # {trace_id="a"}`,
		` 1 # {trace_id="a"} 1 2 3`,
		` 1 # {trace_id="a"} 0x1p3`,
		` 1 # {trace_id="a"} 1 NaN`,
		` 1 # {trace_id} 1`,
		` 1 # {trace_id="a" span_id="b"} 1`,
	} {
		found, ok := omExemplar([]byte(rest), &sb, &e)
		require.True(t, found, "%q", rest)
		require.False(t, ok, "%q", rest)
	}
	found, ok := omExemplar([]byte(" 1 1700000000"), &sb, &e)
	require.False(t, found)
	require.True(t, ok)

	_, ok = omLineRest([]byte("a 1\n"), []byte("a"))
	require.False(t, ok, "a series outside the chunk")
}

// FuzzOMExemplar: for any body the OpenMetrics parser reads, every line
// omExemplar reads, it reads as the parser does.
func FuzzOMExemplar(f *testing.F) {
	f.Add([]byte("# TYPE c counter\nc_total 1 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"} 1 1.5\n# EOF\n"))
	f.Add([]byte("# TYPE h histogram\nh_bucket{le=\"1\"} 1 # {a=\"\\\"}\"} NaN\nh_bucket{le=\"+Inf\"} 2 # {} +Inf 1e9\nh_sum 3\nh_count 2\n# EOF\n"))
	f.Add([]byte("# TYPE c counter\nc_total{\"x\"=\"#\"} 1 2 # {\"a b\"=\"c\",} -1.5e-3 1700000000.123\n# EOF\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		omExemplarDiff(t, body, false)
	})
}

// The labels omExemplar returns are the exemplar's own: the line they were
// read from is reused for the next chunk of the body.
func TestOMExemplarOwnsLabels(t *testing.T) {
	line := []byte(` 1 # {trace_id="0af7651916cd43dd8448eb211c80319c",span_id="b7ad6b7169203331",user="a\"b"} 2.5 1700000000.5`)
	sb := labels.NewScratchBuilder(3)
	var e exemplar.Exemplar
	found, ok := omExemplar(line, &sb, &e)
	require.True(t, found)
	require.True(t, ok)
	want := labels.FromStrings("span_id", "b7ad6b7169203331", "trace_id", "0af7651916cd43dd8448eb211c80319c", "user", `a\"b`)
	require.Equal(t, want, e.Labels)
	for i := range line {
		line[i] = 'x'
	}
	require.Equal(t, want, e.Labels, "unchanged after the line was overwritten")
	require.Equal(t, 2.5, e.Value)
	require.Equal(t, int64(1700000000500), e.Ts)
}
