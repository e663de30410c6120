package index

import "reflect"

// handle names a heap object an entry refers to (a resource, a postings
// list, a name) in a table: entries hold handles, not pointers, so that
// they can live outside the Go heap (ring.go). 0 is no object.
type handle uint32

// table hands out handles for objects kept on the heap; freed handles are
// reused.
type table[T any] struct {
	items []*T // items[0] is nil: handle 0
	free  []handle
}

// add stores p and returns its handle.
func (t *table[T]) add(p *T) handle {
	if len(t.items) == 0 {
		t.items = append(t.items, nil)
	}
	if n := len(t.free); n > 0 {
		h := t.free[n-1]
		t.free = t.free[:n-1]
		t.items[h] = p
		return h
	}
	t.items = append(t.items, p)
	return handle(len(t.items) - 1)
}

// get returns the object of h (nil for 0).
func (t *table[T]) get(h handle) *T {
	if h == 0 {
		return nil
	}
	return t.items[h]
}

// remove frees h.
func (t *table[T]) remove(h handle) {
	t.items[h] = nil
	t.free = append(t.free, h)
}

// hasPointers reports whether values of t hold pointers the collector
// must see (pointers, slices, strings, maps, channels, functions,
// interfaces).
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	default:
		return true
	}
}
