package storeapi

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"google.golang.org/grpc"
)

// discardStream is a Series stream that counts the marshaled bytes.
type discardStream struct {
	grpc.ServerStream
	ctx    context.Context
	bytes  int64
	series int
}

func (d *discardStream) Context() context.Context { return d.ctx }

func (d *discardStream) Send(r *storepb.SeriesResponse) error {
	d.bytes += int64(r.Size())
	d.series++
	return nil
}

// BenchmarkSeries streams 5000 series of 120 samples each (one chunk)
// through Series, without the network: SetBytes is the marshaled size.
func BenchmarkSeries(b *testing.B) {
	st := startStore(b, nil)
	t0 := time.Now().Add(-15 * time.Minute).UnixMilli()
	app := st.Appendable().Appender(context.Background())
	for i := range 5000 {
		ls := labels.FromStrings("__name__", fmt.Sprintf("envoy_metric_%d", i%50), "job", "envoy", "instance", fmt.Sprintf("10.0.0.%d:15090", i))
		for j := range 120 {
			_, err := app.Append(0, ls, t0+int64(j)*5_000, float64(j))
			require.NoError(b, err)
		}
	}
	require.NoError(b, app.Commit())
	srv := New(Options{Store: st, ExternalLabels: st.ExternalLabels()})
	req := &storepb.SeriesRequest{MinTime: math.MinInt64, MaxTime: math.MaxInt64,
		Matchers: []storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "job", Value: "envoy"}}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d := &discardStream{ctx: context.Background()}
		if err := (storeServer{srv}).Series(req, d); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(d.bytes)
		if d.series != 5000 {
			b.Fatalf("%d series", d.series)
		}
	}
}
