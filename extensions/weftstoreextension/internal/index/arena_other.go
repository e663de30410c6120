//go:build !unix

package index

import "errors"

// osAlloc: no arena outside the heap on this platform; blocks come from
// the heap.
func osAlloc(int) ([]byte, error) { return nil, errors.ErrUnsupported }

func osFree([]byte) {}
