package loopback

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

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
	base, ls := freeBlock(t, 30)
	free := map[string]bool{}
	for i := 2; i < 30; i += 3 { // release every third port
		free[ls[i].Addr().String()] = true
		require.NoError(t, ls[i].Close())
	}
	got, err := freeAddrs(len(free), base, base+30, true, noClaims())
	require.NoError(t, err)
	for _, a := range got {
		require.True(t, free[a], "%s is held by a listener", a)
		delete(free, a)
		l, err := net.Listen("tcp", a) // released on return: hold it now
		require.NoError(t, err)
		ls = append(ls, l)
	}
	require.Empty(t, free, "every free port is found")

	_, err = freeAddrs(1, base, base+30, true, noClaims())
	require.ErrorContains(t, err, "address already in use")
}

// freeBlock finds n consecutive ports nobody holds and holds them; the
// listeners are closed when the test ends (or by the caller).
func freeBlock(t *testing.T, n int) (int, []net.Listener) {
	t.Helper()
	var ls []net.Listener
	t.Cleanup(func() {
		for _, l := range ls {
			_ = l.Close()
		}
	})
	for base := lowestPort; base+n <= 65536; base += n {
		ls = ls[:0]
		for p := base; p < base+n; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort(Host, strconv.Itoa(p)))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		if len(ls) == n {
			return base, ls
		}
		for _, l := range ls {
			_ = l.Close()
		}
	}
	t.Fatalf("no free block of %d ports", n)
	return 0, nil
}

func noClaims() *claims { return &claims{ports: map[int]time.Time{}} }

// TestClaimsKeepProcessesApart: ports one draw handed out are skipped by the
// next draw that reads the same claims file, though nothing is bound to
// them, until claimTTL has passed; a line the file should not hold is
// ignored.
func TestClaimsKeepProcessesApart(t *testing.T) {
	base, ls := freeBlock(t, 30)
	for _, l := range ls {
		require.NoError(t, l.Close())
	}
	path := filepath.Join(t.TempDir(), "claims")
	require.NoError(t, os.WriteFile(path, []byte("garbage\n12 x\n"), 0o600))
	now := time.Now()

	c := openClaims(path, now)
	require.NotNil(t, c.f, "the file is open and locked")
	first, err := freeAddrs(20, base, base+30, true, c)
	require.NoError(t, err)
	require.NoError(t, c.close())

	// Another process, a minute later: only the 10 unclaimed ports.
	c = openClaims(path, now.Add(time.Minute))
	second, err := freeAddrs(10, base, base+30, true, c)
	require.NoError(t, err)
	taken := map[string]bool{}
	for _, a := range first {
		taken[a] = true
	}
	for _, a := range second {
		require.False(t, taken[a], "%s handed out twice within the claim time", a)
	}
	_, err = freeAddrs(1, base, base+30, true, c)
	require.ErrorContains(t, err, "claimed by a draw of the last 5m0s")
	require.NoError(t, c.close())

	// Once the claims are older than claimTTL, every port is free again.
	c = openClaims(path, now.Add(time.Minute+claimTTL))
	require.Empty(t, c.ports)
	all, err := freeAddrs(30, base, base+30, true, c)
	require.NoError(t, err)
	require.Len(t, all, 30)
	require.NoError(t, c.close())

	// Without a usable file nothing is claimed and the draw still works.
	c = openClaims(filepath.Join(path, "not-a-directory", "claims"), now)
	require.Nil(t, c.f)
	got, err := freeAddrs(5, base, base+30, true, c)
	require.NoError(t, err)
	require.Len(t, got, 5)
	require.NoError(t, c.close())
}
