//go:build unix

package fluentforwardexporter

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// peerGone reports whether the peer closed an idle connection or sent
// something unrequested (a forward server only ever answers acks). It peeks
// at the socket without blocking and without consuming data.
func peerGone(nc net.Conn) bool {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn() // a TLS close_notify shows up as unread bytes
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	err = rc.Read(func(fd uintptr) bool {
		var one [1]byte
		_, _, rerr := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK):
			gone = false // nothing to read: open and quiet
		case rerr != nil:
			gone = true
		default:
			gone = true // 0 bytes is EOF; any byte is unexpected data
		}
		return true // never wait for readiness
	})
	return gone || err != nil
}
