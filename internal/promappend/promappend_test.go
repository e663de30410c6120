package promappend

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.uber.org/goleak"

	"github.com/weftobs/weft/internal/weftest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeAppendable is an Appendable told apart by its name.
type fakeAppendable struct{ name string }

func (fakeAppendable) Appender(context.Context) storage.Appender { return nil }

// provider is an extension with an Appendable.
type provider struct {
	component.StartFunc
	component.ShutdownFunc
	a storage.Appendable
}

func (p provider) Appendable() storage.Appendable { return p.a }

// other is an extension that takes no samples.
type other struct {
	component.StartFunc
	component.ShutdownFunc
}

func TestFromHost(t *testing.T) {
	store := component.MustNewID("weft_store")
	rw := component.MustNewIDWithName("weft_remote_write", "x")
	health := component.MustNewID("health_check")
	nilRW := component.MustNewIDWithName("weft_remote_write", "nil")
	host := weftest.Host{
		store:  provider{a: fakeAppendable{"store"}},
		rw:     provider{a: fakeAppendable{"rw"}},
		health: other{},
		nilRW:  provider{},
	}

	a, err := FromHost(host, rw)
	require.NoError(t, err)
	assert.Equal(t, fakeAppendable{"rw"}, a)

	all, err := AllFromHost(host, "appendables", []component.ID{store, rw})
	require.NoError(t, err)
	assert.Equal(t, []storage.Appendable{fakeAppendable{"store"}, fakeAppendable{"rw"}}, all)

	for _, tt := range []struct {
		name string
		ids  []component.ID
		want []string
	}{
		{"missing", []component.ID{store, component.MustNewIDWithName("weft_remote_write", "y")},
			[]string{"appendables[1]: extension weft_remote_write/y is not configured"}},
		{"wrong type", []component.ID{health}, []string{"appendables[0]: extension health_check does not accept samples"}},
		{"no appendable", []component.ID{nilRW}, []string{"appendables[0]: extension weft_remote_write/nil does not accept samples"}},
		{"every bad entry", []component.ID{health, store, component.MustNewID("nope")},
			[]string{"appendables[0]: extension health_check does not accept", "appendables[2]: extension nope is not configured"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AllFromHost(host, "appendables", tt.ids)
			require.Error(t, err)
			assert.Nil(t, got)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
