package index

import "golang.org/x/sys/unix"

// populate makes the pages of a new block resident with one system call
// (MADV_POPULATE_WRITE, Linux 5.14) instead of a page fault for each 4 KiB
// as records are copied in: a block is filled to its end before the next
// one is taken, so this adds nothing to the RSS it would reach. On a
// virtual machine a fault can cost over 10 µs (bench/RESULTS.md, issue
// #21 session 17); 256 of them per 1 MiB block, while the budget fills.
// Older kernels refuse the advice (EINVAL) and fault as before.
func populate(b []byte) { _ = unix.Madvise(b, unix.MADV_POPULATE_WRITE) }
