//go:build linux

package exemplars

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// newRing returns a ring of n entries in anonymous memory outside the Go
// heap. As a large zeroed allocation on the heap (the TSDB's ring), its
// pages become resident as exemplars first fill them; unlike one, the
// collector neither scans it nor counts it towards the heap goal (at
// GOGC 75 the goal of a heap holding a 7.2 MB ring was ~5.4 MB higher, with
// or without exemplars). mapped is what freeRing releases; without a
// mapping the ring is on the heap (mapped nil).
func newRing(n int) (ring []entry, mapped []byte) {
	size := n * int(unsafe.Sizeof(entry{}))
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return make([]entry, n), nil
	}
	return unsafe.Slice((*entry)(unsafe.Pointer(unsafe.SliceData(b))), n), b
}

// freeRing unmaps a ring newRing mapped, once its storage is unreachable.
func freeRing(b []byte) { _ = unix.Munmap(b) }
