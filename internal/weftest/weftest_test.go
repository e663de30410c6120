package weftest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/component"
)

func TestHost(t *testing.T) {
	id := component.MustNewID("weft_store")
	h := Host{id: struct {
		component.StartFunc
		component.ShutdownFunc
	}{}}
	assert.Len(t, h.GetExtensions(), 1)
	assert.Contains(t, h.GetExtensions(), id)
	assert.Empty(t, Host(nil).GetExtensions())
}

func TestIDs(t *testing.T) {
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", TraceID(t, "4bf92f3577b34da6a3ce929d0e0e4736").String())
	assert.Equal(t, "00f067aa0ba902b7", SpanID(t, "00f067aa0ba902b7").String())
	for _, bad := range []string{"", "4bf92f3577b34da6a3ce929d0e0e473", "4bf92f3577b34da6a3ce929d0e0e4736aa", "zzf92f3577b34da6a3ce929d0e0e4736"} {
		ft := &fakeT{TB: t}
		TraceID(ft, bad)
		assert.True(t, ft.failed, "%q accepted", bad)
	}
}

// fakeT records Fatalf instead of stopping the test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Fatalf(string, ...any) { f.failed = true }
