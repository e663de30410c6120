//go:build !unix

package fluentforwardexporter

import "net"

// peerGone cannot peek without blocking here; a closed idle connection is
// then noticed by the failed write or the missing ack.
func peerGone(net.Conn) bool { return false }
