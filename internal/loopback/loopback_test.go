package loopback

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFreeAddrsAreDistinctAndLoopback(t *testing.T) {
	addrs, err := FreeAddrs(8)
	require.NoError(t, err)
	require.Len(t, addrs, 8)
	seen := map[string]bool{}
	for _, a := range addrs {
		require.False(t, seen[a], "address %s handed out twice", a)
		seen[a] = true
		host, _, err := net.SplitHostPort(a)
		require.NoError(t, err)
		require.True(t, net.ParseIP(host).IsLoopback(), "%s is not loopback", a)
		// The port must be usable right away.
		l, err := net.Listen("tcp", a)
		require.NoError(t, err)
		require.NoError(t, l.Close())
	}
}
