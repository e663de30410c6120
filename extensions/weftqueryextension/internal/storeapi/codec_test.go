package storeapi

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/thanos/pkg/info/infopb"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// TestGlobalCodecUntouched: serving the StoreAPI leaves the process-wide
// "proto" codec (the collector's OTLP and Jaeger receivers use it) as
// grpc-go registered it; Thanos's extgrpc would replace it.
func TestGlobalCodecUntouched(t *testing.T) {
	before := encoding.GetCodecV2("proto")
	require.NotNil(t, before)
	st := startStore(t, nil)
	_, conn := serve(t, st, nil)
	_, err := infopb.NewInfoClient(conn).Info(t.Context(), &infopb.InfoRequest{})
	require.NoError(t, err)
	after := encoding.GetCodecV2("proto")
	require.Equal(t, fmt.Sprintf("%T", before), fmt.Sprintf("%T", after))
	require.Equal(t, "*proto.codecV2", fmt.Sprintf("%T", after), "grpc-go's own proto codec")
	require.Nil(t, encoding.GetCodec("weft"))
}

// TestCodecCopies: decoded strings do not point into the received buffer,
// which grpc-go reuses.
func TestCodecCopies(t *testing.T) {
	in := &storepb.SeriesResponse{Result: &storepb.SeriesResponse_Series{Series: &storepb.Series{Labels: zlabels(mustLabels(t, `{__name__="up", job="a"}`))}}}
	b, err := codec{}.Marshal(in)
	require.NoError(t, err)
	raw := b.Materialize()
	var out storepb.SeriesResponse
	require.NoError(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(raw)}, &out))
	clear(raw)
	require.Equal(t, "up", out.GetSeries().Labels[0].Value)

	_, err = codec{}.Marshal("not a message")
	require.Error(t, err)
}
