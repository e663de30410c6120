// Package loopback hands out free TCP ports on 127.0.0.1 for tests, the demo
// and benchmarks, so that nothing weft runs on its own binds a fixed host port
// or an address outside the loopback range.
package loopback

import (
	"fmt"
	"net"
	"strconv"
)

// Host is the only address weft's demo, tests and benchmarks bind to.
const Host = "127.0.0.1"

// FreeAddrs returns n distinct "127.0.0.1:port" addresses that were free a
// moment ago. The listeners are held until all n are found, so the ports
// differ from each other.
func FreeAddrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(Host, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free loopback port: %w", err)
		}
		listeners = append(listeners, l)
		addrs = append(addrs, net.JoinHostPort(Host, strconv.Itoa(l.Addr().(*net.TCPAddr).Port)))
	}
	return addrs, nil
}
