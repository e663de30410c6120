package containerlogsreceiver

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// TestCheckpointsOwner: the owner lists every saved key in the index, loads
// them back oldest first, and forgets a key with its value.
func TestCheckpointsOwner(t *testing.T) {
	ctx := t.Context()
	store := newMemStore()
	c := newCheckpoints(zap.NewNop())
	c.store = store

	cps, first := c.load(ctx)
	assert.True(t, first, "no index: first start")
	assert.Empty(t, cps)
	cps, first = c.load(ctx)
	assert.False(t, first, "the first load writes an empty index")
	assert.Empty(t, cps)

	k1, k2 := c.newKey(), c.newKey()
	require.Less(t, k1, k2, "keys sort by creation")
	require.NoError(t, c.save(ctx, k2, checkpoint{Path: "/b", Offset: 2}))
	require.NoError(t, c.save(ctx, k1, checkpoint{Path: "/a", Offset: 1}))
	require.NoError(t, c.save(ctx, k1, checkpoint{Path: "/a", Offset: 10}))
	var idx []string
	b, _ := store.Get(ctx, indexKey)
	require.NoError(t, json.Unmarshal(b, &idx))
	assert.Equal(t, []string{k1, k2}, idx)

	// Another owner over the same store (a restart) finds both, oldest first.
	re := newCheckpoints(zap.NewNop())
	re.store = store
	cps, first = re.load(ctx)
	assert.False(t, first)
	require.Len(t, cps, 2)
	assert.Equal(t, k1, cps[0].key)
	assert.Equal(t, int64(10), cps[0].cp.Offset)
	assert.Equal(t, "/b", cps[1].cp.Path)

	require.NoError(t, re.forget(ctx, k1))
	v, _ := store.Get(ctx, k1)
	assert.Empty(t, v, "value deleted")
	b, _ = store.Get(ctx, indexKey)
	require.NoError(t, json.Unmarshal(b, &idx))
	assert.Equal(t, []string{k2}, idx)

	// A key listed without a value, or with an unreadable one, is dropped.
	require.NoError(t, store.Set(ctx, indexKey, []byte(`["`+k2+`","file/x","file/y"]`)))
	require.NoError(t, store.Set(ctx, "file/y", []byte("{")))
	again := newCheckpoints(zap.NewNop())
	again.store = store
	cps, _ = again.load(ctx)
	require.Len(t, cps, 1)
	b, _ = store.Get(ctx, indexKey)
	require.NoError(t, json.Unmarshal(b, &idx))
	assert.Equal(t, []string{k2}, idx)
	assert.NoError(t, again.close(ctx))
	assert.NoError(t, newCheckpoints(zap.NewNop()).close(ctx), "close before Start")
}
