package fluentforwardexporter

import (
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tinylib/msgp/msgp"
)

// TestAppendEventTimeMatchesLibrary: the hand-framed EventTime equals the
// library's extension encoding and decodes to the same nanosecond.
func TestAppendEventTimeMatchesLibrary(t *testing.T) {
	for _, ts := range []time.Time{
		time.Date(2026, 11, 25, 20, 1, 2, 123456789, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(2038, 1, 19, 3, 14, 7, 999999999, time.UTC),
	} {
		got, err := appendEventTime(nil, ts)
		require.NoError(t, err)
		et := fluent.EventTime(ts)
		want, err := msgp.AppendExtension(nil, &et)
		require.NoError(t, err)
		assert.Equal(t, want, got)

		var back fluent.EventTime
		_, err = msgp.ReadExtensionBytes(got, &back)
		require.NoError(t, err)
		assert.True(t, ts.Equal(time.Time(back)), "%s != %s", ts, time.Time(back))
	}
}
