package storeapi

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
)

// testExt are the external labels of the test stores.
var testExt = map[string]string{"cluster": "c1", "node": "n1"}

// startStore starts a weft_store with testExt (mod may change more).
func startStore(t testing.TB, mod func(*weftstoreextension.Config)) *weftstoreextension.Store {
	t.Helper()
	return weftstoretest.Start(t, func(c *weftstoreextension.Config) {
		c.ExternalLabels = testExt
		if mod != nil {
			mod(c)
		}
	})
}

// serve starts a StoreAPI server over st on a loopback port and returns a
// client connection with the server's codec.
func serve(t *testing.T, st *weftstoreextension.Store, mod func(*Options), extra ...grpc.ServerOption) (*Server, *grpc.ClientConn) {
	t.Helper()
	opts := Options{Store: st, ExternalLabels: st.ExternalLabels()}
	if mod != nil {
		mod(&opts)
	}
	srv := New(opts, extra...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv.Serve(ln)
	conn, err := grpc.NewClient(ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(codec{}), grpc.MaxCallRecvMsgSize(64<<20)))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Stop(ctx)
	})
	return srv, conn
}

// sample is one point to write: a float, or a histogram (h) or float
// histogram (fh).
type sample struct {
	t  int64
	v  float64
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
}

// write appends the series' samples (and exemplars) in one transaction.
func write(t *testing.T, st *weftstoreextension.Store, series map[string][]sample, exemplars map[string][]exemplar.Exemplar) {
	t.Helper()
	app := st.Appendable().Appender(t.Context())
	for s, samples := range series {
		ls := mustLabels(t, s)
		for _, p := range samples {
			var err error
			if p.h != nil || p.fh != nil {
				_, err = app.AppendHistogram(0, ls, p.t, p.h, p.fh)
			} else {
				_, err = app.Append(0, ls, p.t, p.v)
			}
			require.NoError(t, err, "%s at %d", s, p.t)
		}
	}
	for s, exs := range exemplars {
		for _, e := range exs {
			_, err := app.AppendExemplar(0, mustLabels(t, s), e)
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
}

// floats is n samples of value i*step from t0, one per 5s.
func floats(t0 int64, n int, step float64) []sample {
	out := make([]sample, n)
	for i := range out {
		out[i] = sample{t: t0 + int64(i)*5_000, v: float64(i) * step}
	}
	return out
}

func hists(t0 int64, n int, float bool) []sample {
	out := make([]sample, n)
	for i := range out {
		out[i].t = t0 + int64(i)*5_000
		if float {
			out[i].fh = tsdbutil.GenerateTestFloatHistogram(int64(i))
		} else {
			out[i].h = tsdbutil.GenerateTestHistogram(int64(i))
		}
	}
	return out
}

func mustLabels(t *testing.T, s string) labels.Labels {
	t.Helper()
	ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(s)
	require.NoError(t, err)
	b := labels.NewScratchBuilder(len(ms))
	for _, m := range ms {
		b.Add(m.Name, m.Value)
	}
	b.Sort()
	return b.Labels()
}
