package limits

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestCountNodes(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	for q, want := range map[string]int{
		`up`: 1, `-up`: 2, `(up)`: 2, `sum by (job) (rate(up[5m]))`: 4, `up{a="b"} + on(c) group_left 2 * up`: 5,
		`max_over_time(up[10m:1m]) > bool 1`: 5, `label_replace(up, "a", "$1", "b", "(.*)")`: 6,
	} {
		e, err := p.ParseExpr(q)
		require.NoError(t, err)
		assert.Equal(t, want, CountNodes(e, 1000), q)
		assert.Equal(t, min(want, 2), CountNodes(e, 2), "%s: stops at the limit", q)
	}
}

func TestParserBounds(t *testing.T) {
	p := NewParser(parser.NewParser(parser.Options{}), 10, 3)
	_, err := p.ParseExpr("sum(rate(up[5m]))")
	var le *Error
	require.ErrorAs(t, err, &le)
	assert.Equal(t, ReasonQueryLength, le.Key)
	_, err = p.ParseExpr("-(-(-up))")
	require.ErrorAs(t, err, &le)
	assert.Equal(t, ReasonQueryNodes, le.Key)
	_, err = p.ParseExpr("-up")
	require.NoError(t, err)
	_, err = p.ParseMetricSelectors([]string{"up", `{__name__="a_long_name"}`})
	require.ErrorAs(t, err, &le)
}

func TestGate(t *testing.T) {
	g := NewGate(1, 1, 50*time.Millisecond)
	release, err := g.Acquire(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, g.Running())
	// The queue holds one waiter; it times out.
	_, err = g.Acquire(t.Context())
	require.ErrorIs(t, err, ErrQueueTimeout)
	// A canceled waiter leaves.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = g.Acquire(ctx)
	require.ErrorIs(t, err, context.Canceled)
	release()
	assert.Equal(t, 0, g.Running())
	assert.Equal(t, 0, g.Queued())
}

func TestGateQueueFull(t *testing.T) {
	g := NewGate(1, 0, time.Minute)
	release, err := g.Acquire(t.Context())
	require.NoError(t, err)
	defer release()
	_, err = g.Acquire(t.Context())
	require.ErrorIs(t, err, ErrQueueFull)
}

func TestConnLimitListener(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := NewConnLimitListener(tcp, 1)
	defer l.Close()
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", tcp.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		sc, err := l.Accept()
		require.NoError(t, err)
		conns = append(conns, sc)
	}
	assert.False(t, ProbesOnly(ConnContext(t.Context(), conns[0])), "within max_connections")
	assert.True(t, ProbesOnly(ConnContext(t.Context(), conns[1])), "past max_connections: the probe reserve")
	for _, c := range conns {
		require.NoError(t, c.Close())
	}
	require.NoError(t, l.Close())
	_, err = l.Accept()
	require.True(t, errors.Is(err, net.ErrClosed), "%v", err)
}

func TestCounters(t *testing.T) {
	c := NewCounters(RefusalReasons, InterruptedReasons)
	c.Add(ReasonQueueFull)
	c.Add(ReasonQueueFull)
	assert.Equal(t, int64(2), c.Get(ReasonQueueFull))
	assert.Equal(t, int64(0), c.Get(ReasonCanceled))
}

// BenchmarkParseShapes parses 16 KiB (max_query_length) of the shapes whose
// parsing cost grows with the square of their length (README "Query
// bounds"); ns/op is one parse.
func BenchmarkParseShapes(b *testing.B) {
	const n = 16 << 10
	p := NewParser(parser.NewParser(parser.Options{}), n, n)
	for _, bc := range []struct{ name, query string }{
		{"unary_minus", strings.Repeat("-", n-2) + "up"},
		{"parentheses", strings.Repeat("(", n/2-1) + "up" + strings.Repeat(")", n/2-1)},
		{"or_chain", strings.Repeat("up or ", n/6-1) + "up"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.query)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.ParseExpr(bc.query); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
