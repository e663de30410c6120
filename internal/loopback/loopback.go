// Package loopback hands out free TCP ports on 127.0.0.1 for tests, the demo
// and benchmarks, so that nothing weft runs on its own binds a fixed host port
// or an address outside the loopback range.
package loopback

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Host is the only address weft's demo, tests and benchmarks bind to.
const Host = "127.0.0.1"

// Ports are drawn from [lowestPort, start of the kernel's ephemeral range).
// A port the kernel picked for "127.0.0.1:0" lies inside the ephemeral range,
// where every outgoing connection on the machine takes its source port and
// every other listen on port 0 its port: between FreeAddrs closing its probe
// and the caller binding, the test's own clients and servers (a simulated
// node starting beside the agent) could take it, and the bind failed with
// "address already in use" (CI stop 29). Below the range only another
// FreeAddrs caller can collide, by a random draw from ~20,000.
const lowestPort = 12000

// ephemeralRange is where Linux says it reads the range from.
const ephemeralRange = "/proc/sys/net/ipv4/ip_local_port_range"

// FreeAddrs returns n distinct "127.0.0.1:port" addresses that were free a
// moment ago for both TCP and UDP (memberlist binds both on one port). The
// probes are held until all n are found, so the ports differ from each other.
func FreeAddrs(n int) ([]string, error) {
	low, high, ok := probeRange()
	c := openClaims(claimsFile, time.Now())
	addrs, err := freeAddrs(n, low, high, ok, c)
	if cerr := c.close(); err == nil && cerr != nil {
		return nil, fmt.Errorf("record the claimed loopback ports in %s: %w", claimsFile, cerr)
	}
	return addrs, err
}

// freeAddrs draws n ports from [low, high) if ok, else takes the kernel's,
// skipping and recording claims (see claims.go).
func freeAddrs(n, low, high int, ok bool, c *claims) ([]string, error) {
	var closers []func() error
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	addrs := make([]string, 0, n)
	for tries := 0; len(addrs) < n; tries++ {
		port := 0 // the kernel's choice, when there is no room below its range
		if ok {
			port = low + rand.IntN(high-low)
			if c.taken(port) {
				if tries < 100*n {
					continue
				}
				return nil, fmt.Errorf("find a free loopback port: every port drawn was claimed by a draw of the last %s (%s)", claimTTL, claimsFile)
			}
		}
		l, err := net.Listen("tcp", net.JoinHostPort(Host, strconv.Itoa(port)))
		if err != nil {
			if ok && tries < 100*n {
				continue // taken: draw again
			}
			return nil, fmt.Errorf("find a free loopback port: %w", err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(Host, strconv.Itoa(port)))
		if err != nil {
			_ = l.Close()
			if tries < 100*n {
				continue
			}
			return nil, fmt.Errorf("find a free loopback port: %w", err)
		}
		closers = append(closers, l.Close, u.Close)
		c.claim(port)
		addrs = append(addrs, net.JoinHostPort(Host, strconv.Itoa(port)))
	}
	return addrs, nil
}

// probeRange returns the ports to draw from: from lowestPort up to the start
// of the ephemeral range, when that leaves at least 1,000 ports.
func probeRange() (low, high int, ok bool) {
	start, err := ephemeralStart()
	if err != nil || start-lowestPort < 1000 {
		return 0, 0, false
	}
	return lowestPort, start, true
}

// ephemeralStart reads the first port of the kernel's ephemeral range.
func ephemeralStart() (int, error) {
	b, err := os.ReadFile(ephemeralRange)
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0, errors.New(ephemeralRange + ": want two ports, got " + strconv.Quote(string(b)))
	}
	return strconv.Atoi(fields[0])
}
