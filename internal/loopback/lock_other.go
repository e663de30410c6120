//go:build !unix

package loopback

import (
	"errors"
	"os"
)

// lockFile: no shared claims file without flock(2); the draw alone keeps
// processes apart.
func lockFile(*os.File) error { return errors.New("no file locking on this system") }
