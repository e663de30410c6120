package index

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestArenaBlockIsPopulated: a block the arena takes from the operating
// system is resident as a whole once the first record lands in it, not
// page by page as records are copied in.
func TestArenaBlockIsPopulated(t *testing.T) {
	probe, err := unix.Mmap(-1, 0, 1<<16, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	require.NoError(t, err)
	if err := unix.Madvise(probe, unix.MADV_POPULATE_WRITE); err != nil {
		t.Skipf("this kernel refuses MADV_POPULATE_WRITE (%v): blocks fault in page by page", err)
	}
	require.NoError(t, unix.Munmap(probe))
	a := newArena(64 << 20)
	defer a.st.freeAll()
	p, _ := a.alloc(10)
	copy(p, "0123456789")
	b := a.st.blocks[0]
	require.True(t, b.os, "the block is mapped outside the heap")
	pages := len(b.buf) / unix.Getpagesize()
	require.Greater(t, pages, 1)
	vec := make([]byte, pages)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b.buf[0])), uintptr(len(b.buf)), uintptr(unsafe.Pointer(&vec[0])))
	require.Zero(t, errno, "mincore")
	resident := 0
	for _, v := range vec {
		resident += int(v & 1)
	}
	assert.Equal(t, pages, resident, "pages of the block resident after one record")
}
