package loopback

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Ports handed out are also written to a file shared by every process on
// the machine, where they stay claimed for claimTTL: `make test` runs two
// test processes side by side, and a probe only sees the ports already
// bound, not those another process drew a moment ago and is about to bind
// (a backend's config names its port before the backend starts, which can
// take seconds). A draw skips the ports another process claimed. Without
// the file (it cannot be opened or locked) the draw alone keeps processes
// apart, as before.

// claimTTL is how long a port handed out stays claimed: far longer than
// any test takes from the draw to the bind.
const claimTTL = 5 * time.Minute

// claimsFile is the machine's file of claimed ports.
var claimsFile = filepath.Join(os.TempDir(), "weft-loopback-ports")

// claims are the claimed ports read from the locked file, with the time of
// each claim, and the file, to write the new ones back.
type claims struct {
	f     *os.File // nil: no file, nothing claimed
	ports map[int]time.Time
	now   time.Time
}

// openClaims locks the file at path and reads the claims younger than
// claimTTL. With any error it returns claims without a file.
func openClaims(path string, now time.Time) *claims {
	c := &claims{ports: map[int]time.Time{}, now: now}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return c
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		return c
	}
	c.f = f
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		port, at, ok := parseClaim(sc.Bytes())
		if ok && now.Sub(at) < claimTTL {
			c.ports[port] = at
		}
	}
	return c
}

// parseClaim reads a line "port unix-nanoseconds".
func parseClaim(line []byte) (port int, at time.Time, ok bool) {
	p, t, found := bytes.Cut(line, []byte{' '})
	if !found {
		return 0, time.Time{}, false
	}
	port, err := strconv.Atoi(string(p))
	if err != nil {
		return 0, time.Time{}, false
	}
	ns, err := strconv.ParseInt(string(t), 10, 64)
	if err != nil {
		return 0, time.Time{}, false
	}
	return port, time.Unix(0, ns), true
}

// taken reports whether another draw claimed port within claimTTL.
func (c *claims) taken(port int) bool {
	_, ok := c.ports[port]
	return ok
}

// claim records port as handed out now.
func (c *claims) claim(port int) { c.ports[port] = c.now }

// close writes the live claims back (the expired ones are dropped) and
// unlocks the file.
func (c *claims) close() error {
	if c.f == nil {
		return nil
	}
	defer c.f.Close() // closing the file releases the lock
	var b bytes.Buffer
	for port, at := range c.ports {
		fmt.Fprintf(&b, "%d %d\n", port, at.UnixNano())
	}
	if err := c.f.Truncate(0); err != nil {
		return err
	}
	_, err := c.f.WriteAt(b.Bytes(), 0)
	return err
}
