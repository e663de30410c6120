//go:build unix

package index

import "golang.org/x/sys/unix"

// osAlloc maps n bytes of anonymous memory.
func osAlloc(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
}

// osFree unmaps a block osAlloc returned.
func osFree(b []byte) { _ = unix.Munmap(b) }
