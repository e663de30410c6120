package loopback

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFreeAddrs checks that the addresses are distinct loopback ones,
// usable right away for TCP and UDP, and below the kernel's ephemeral
// range (where no outgoing connection takes a source port between the
// probe and the caller's bind) when there is room below it.
func TestFreeAddrs(t *testing.T) {
	low, high, below := probeRange()
	addrs, err := FreeAddrs(50)
	require.NoError(t, err)
	require.Len(t, addrs, 50)
	seen := map[string]bool{}
	for _, a := range addrs {
		require.False(t, seen[a], "address %s handed out twice", a)
		seen[a] = true
		host, p, err := net.SplitHostPort(a)
		require.NoError(t, err)
		require.True(t, net.ParseIP(host).IsLoopback(), "%s is not loopback", a)
		if below {
			port, err := strconv.Atoi(p)
			require.NoError(t, err)
			require.GreaterOrEqual(t, port, low, a)
			require.Less(t, port, high, "%s lies in the ephemeral range", a)
		}
		l, err := net.Listen("tcp", a)
		require.NoError(t, err)
		require.NoError(t, l.Close())
		u, err := net.ListenPacket("udp", a)
		require.NoError(t, err)
		require.NoError(t, u.Close())
	}
}

// TestFreeAddrsSkipTakenPorts holds two thirds of a small range and checks
// that the draw finds exactly the free third, and fails naming the cause
// once the range is full.
func TestFreeAddrsSkipTakenPorts(t *testing.T) {
	// A block of 30 ports nobody holds right now.
	var base int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for base = lowestPort; base+30 <= 65536; base += 30 {
		ls = ls[:0]
		for p := base; p < base+30; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort(Host, strconv.Itoa(p)))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		if len(ls) == 30 {
			break
		}
		for _, l := range ls {
			_ = l.Close()
		}
	}
	require.Len(t, ls, 30, "no free block of 30 ports")
	free := map[string]bool{}
	for i := 2; i < 30; i += 3 { // release every third port
		free[ls[i].Addr().String()] = true
		require.NoError(t, ls[i].Close())
	}
	got, err := freeAddrs(len(free), base, base+30, true)
	require.NoError(t, err)
	for _, a := range got {
		require.True(t, free[a], "%s is held by a listener", a)
		delete(free, a)
		l, err := net.Listen("tcp", a) // released on return: hold it now
		require.NoError(t, err)
		ls = append(ls, l)
	}
	require.Empty(t, free, "every free port is found")

	_, err = freeAddrs(1, base, base+30, true)
	require.ErrorContains(t, err, "address already in use")
}
