package refusal

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestSourceOf(t *testing.T) {
	for _, tt := range []struct {
		attrs map[string]any
		want  Source
	}{
		{map[string]any{"job": "envoy-stats", "instance": "10.0.3.4:15090", "service.name": "ignored"}, Source{"envoy-stats@10.0.3.4:15090", "envoy-stats", "10.0.3.4:15090"}},
		{map[string]any{"service.name": "cart", "service.namespace": "shop", "service.instance.id": "cart-1"}, Source{"shop/cart@cart-1", "shop/cart", "cart-1"}},
		{map[string]any{"service.name": "cart", "k8s.namespace.name": "shop", "k8s.pod.name": "cart-5f"}, Source{"cart@shop/cart-5f", "cart", "shop/cart-5f"}},
		{map[string]any{"service.namespace": "shop"}, Source{"unknown", "", ""}},
		{map[string]any{"instance": "x:1"}, Source{"@x:1", "", "x:1"}},
		{map[string]any{"job": "j", "instance": int64(7)}, Source{"j@7", "j", "7"}},
	} {
		m := pcommon.NewMap()
		assert.NoError(t, m.FromRaw(tt.attrs))
		assert.Equal(t, tt.want, SourceOf(m), "%v", tt.attrs)
	}
}

// TestOverflow: past MaxKeys pairs, new sources are counted together.
func TestOverflow(t *testing.T) {
	c := New()
	now := time.Unix(1_800_000_000, 0)
	for i := range MaxKeys {
		c.Note(now, "r", fmt.Sprint("src-", i), 1)
	}
	logNow, n := c.Note(now, "r", "late-1", 2)
	assert.True(t, logNow)
	assert.Equal(t, int64(2), n)
	logNow, _ = c.Note(now, "r", "late-2", 3)
	assert.False(t, logNow, "late-2 shares the overflow entry, logged a moment ago")
	logNow, _ = c.Note(now, "r", "src-5", 1)
	assert.False(t, logNow, "src-5 logged a moment ago")
	s := c.Snapshot()["r"]
	assert.Len(t, s, MaxKeys+1)
	assert.Equal(t, int64(5), s[OverflowSource])
	assert.Equal(t, int64(2), s["src-5"])
	assert.Equal(t, int64(MaxKeys+1+5), c.Total("r"))
	assert.Equal(t, int64(0), c.Total("other reason"))
}
