package otlpwire

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSplitOTLPMalformed(t *testing.T) {
	for _, in := range [][]byte{
		{0x0a, 0x05, 0x12},       // length past the end
		{0x0a, 0x02, 0x12, 0x09}, // nested length past the end
		{0xff},                   // truncated tag
	} {
		_, err := Split(in, nil)
		require.ErrorIs(t, err, ErrMalformed, "%x", in)
	}
}

// FuzzSplitOTLP: Split never panics, and on valid traces it finds every
// span.
func FuzzSplitOTLP(f *testing.F) {
	var m ptrace.ProtoMarshaler
	_, td, _, _ := simtest.Simulate(simtest.NewRand(1), 3, time.Unix(1700000000, 0))
	valid, err := m.MarshalTraces(td)
	require.NoError(f, err)
	f.Add(valid)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		ws, err := Split(in, nil)
		if err != nil {
			return
		}
		var u ptrace.ProtoUnmarshaler
		td, uerr := u.UnmarshalTraces(in)
		if uerr != nil {
			return
		}
		if td.SpanCount() > 0 {
			n := 0
			for _, w := range ws {
				n += len(w.Recs)
			}
			assert.Equal(t, td.SpanCount(), n)
		}
	})
}
