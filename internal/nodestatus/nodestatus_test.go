package nodestatus

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"

	"github.com/weftobs/weft/internal/weftest"
)

// owner is an extension that shows status.
type owner struct {
	component.StartFunc
	component.ShutdownFunc
	board Board
}

func (o *owner) StatusBoard() *Board { return &o.board }

// plain is an extension that shows none.
type plain struct {
	component.StartFunc
	component.ShutdownFunc
}

func TestPublishSnapshotWithdraw(t *testing.T) {
	a, b := &owner{}, &owner{}
	host := weftest.Host{
		component.MustNewIDWithName("weft_query", "a"): a,
		component.MustNewIDWithName("weft_query", "b"): b,
		component.MustNewID("weft_store"):              plain{},
	}
	calls := 0
	wB := PublishFiles(host, "container_logs/b", func() []File {
		calls++
		return []File{{Path: "/b", Size: 10, Offset: 4}}
	})
	wA := PublishFiles(host, "container_logs/a", func() []File { return []File{{Path: "/a", Size: 3, Offset: 5}} })
	wT := PublishTargets(host, "pod_scrape", func() []Target { return []Target{{Job: "envoy", Health: "down", LastError: "connection refused"}} })

	for _, o := range []*owner{a, b} {
		got := o.board.Files()
		require.Len(t, got, 2, "every board on the host gets the files")
		assert.Equal(t, "container_logs/a", got[0].Component, "ordered by component")
		assert.Equal(t, int64(0), got[0].Items[0].Lag(), "a file read past its last known size has no lag")
		assert.Equal(t, int64(6), got[1].Items[0].Lag())
		require.Len(t, o.board.Targets(), 1)
		assert.Equal(t, "connection refused", o.board.Targets()[0].Items[0].LastError)
	}
	assert.Equal(t, 2, calls, "snapshots are taken when a board is read, once per read")

	wB()
	wA()
	wT()
	wA() // twice is harmless
	assert.Empty(t, a.board.Files())
	assert.Empty(t, b.board.Targets())
}

// Two collectors in one process keep their status apart: a board sees only
// what was published on its own host.
func TestBoardsAreNotShared(t *testing.T) {
	a, b := &owner{}, &owner{}
	defer PublishFiles(weftest.Host{component.MustNewID("weft_query"): a}, "container_logs", func() []File { return []File{{Path: "/a"}} })()
	assert.Len(t, a.board.Files(), 1)
	assert.Empty(t, b.board.Files())
	// A host without a status owner: publishing is a no-op.
	PublishFiles(weftest.Host{}, "container_logs", func() []File { return nil })()
}

// A snapshot function may publish on the board again while the board is
// being read without deadlocking.
func TestSnapshotCallsOutsideTheLock(t *testing.T) {
	o := &owner{}
	host := weftest.Host{component.MustNewID("weft_query"): o}
	var inner func()
	w := PublishFiles(host, "outer", func() []File {
		inner = PublishFiles(host, "inner", func() []File { return nil })
		return nil
	})
	defer w()
	o.board.Files()
	require.NotNil(t, inner)
	inner()
}
