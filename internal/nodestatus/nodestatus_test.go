package nodestatus

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegisterSnapshotUnregister(t *testing.T) {
	calls := 0
	unB := RegisterFiles("container_logs/b", func() []File {
		calls++
		return []File{{Path: "/b", Size: 10, Offset: 4}}
	})
	unA := RegisterFiles("container_logs/a", func() []File { return []File{{Path: "/a", Size: 3, Offset: 5}} })
	unT := RegisterTargets("pod_scrape", func() []Target { return []Target{{Job: "envoy", Health: "down", LastError: "connection refused"}} })

	got := Files()
	require.Len(t, got, 2)
	assert.Equal(t, "container_logs/a", got[0].Component, "ordered by component")
	assert.Equal(t, int64(0), got[0].Items[0].Lag(), "a file read past its last known size has no lag")
	assert.Equal(t, int64(6), got[1].Items[0].Lag())
	assert.Equal(t, 1, calls, "snapshots are taken when asked")
	require.Len(t, Targets(), 1)
	assert.Equal(t, "connection refused", Targets()[0].Items[0].LastError)

	unB()
	unA()
	unT()
	unA() // twice is harmless
	assert.Empty(t, Files())
	assert.Empty(t, Targets())
}

// A snapshot function may call back into the registry (e.g. a component that
// registers another source while rendering) without deadlocking.
func TestSnapshotCallsOutsideTheLock(t *testing.T) {
	var inner func()
	un := RegisterFiles("outer", func() []File {
		inner = RegisterFiles("inner", func() []File { return nil })
		return nil
	})
	defer un()
	Files()
	require.NotNil(t, inner)
	inner()
}
