// Package nodestatus is where weft's receivers publish what they are doing
// on this node (the files they tail, the targets they scrape) for the
// status page of weft_query to show. It is a process-wide registry, like
// expvar: a component registers a snapshot function at Start and removes it
// at Shutdown; readers call the functions when they render.
package nodestatus

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// File is one log file a receiver reads.
type File struct {
	Path      string    // path the file was found at
	Size      int64     // size at the receiver's last check
	Offset    int64     // next byte the receiver reads
	Acked     int64     // offset of the last checkpoint (-1: none yet)
	Records   int64     // records emitted from this file since start
	LastRead  time.Time // when bytes were last read (zero: never)
	Following bool      // false: read to its end once (rotated away)
}

// Lag is the number of bytes written to the file and not read yet.
func (f File) Lag() int64 { return max(f.Size-f.Offset, 0) }

// Target is one endpoint a receiver scrapes.
type Target struct {
	Job          string
	URL          string
	Labels       map[string]string // target labels after relabeling
	Health       string            // "up", "down" or "unknown" (not scraped yet)
	LastScrape   time.Time
	LastDuration time.Duration
	LastError    string // empty when the last scrape succeeded
	Samples      int    // samples in the last successful scrape
}

// Source is one registered component's snapshot.
type Source[T any] struct {
	Component string // component ID, e.g. "container_logs"
	Items     []T
}

type registry[T any] struct {
	mu   sync.Mutex
	next uint64
	fns  map[uint64]source[T]
}

type source[T any] struct {
	component string
	fn        func() []T
}

func (r *registry[T]) register(component string, fn func() []T) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fns == nil {
		r.fns = map[uint64]source[T]{}
	}
	r.next++
	key := r.next
	r.fns[key] = source[T]{component: component, fn: fn}
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.fns, key)
	}
}

// snapshot calls every registered function (outside the lock: a function
// may take its component's own locks) and orders the result by component.
func (r *registry[T]) snapshot() []Source[T] {
	r.mu.Lock()
	srcs := make([]source[T], 0, len(r.fns))
	for _, s := range r.fns {
		srcs = append(srcs, s)
	}
	r.mu.Unlock()
	out := make([]Source[T], 0, len(srcs))
	for _, s := range srcs {
		out = append(out, Source[T]{Component: s.component, Items: s.fn()})
	}
	slices.SortFunc(out, func(a, b Source[T]) int { return strings.Compare(a.Component, b.Component) })
	return out
}

var (
	files   registry[File]
	targets registry[Target]
)

// RegisterFiles publishes a component's tailed files; call the returned
// function to withdraw them (at Shutdown).
func RegisterFiles(component string, fn func() []File) (unregister func()) {
	return files.register(component, fn)
}

// RegisterTargets publishes a component's scrape targets; call the returned
// function to withdraw them (at Shutdown).
func RegisterTargets(component string, fn func() []Target) (unregister func()) {
	return targets.register(component, fn)
}

// Files returns every registered component's files, by component ID.
func Files() []Source[File] { return files.snapshot() }

// Targets returns every registered component's targets, by component ID.
func Targets() []Source[Target] { return targets.snapshot() }
