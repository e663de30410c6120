// Package nodestatus is the route by which weft's receivers tell the status
// page what they are doing on this node (the files they tail, the targets
// they scrape). A Board belongs to an extension that shows status (weft_query
// owns one); a receiver finds every board among the host's extensions at
// Start, publishes a snapshot function on each, and withdraws it at
// Shutdown. Readers call the functions when they render. There is no
// process-wide state: two collectors in one process (tests) see only their
// own components.
package nodestatus

import (
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
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

// Board collects what components publish for one status page. The zero
// value is ready to use.
type Board struct {
	files   registry[File]
	targets registry[Target]
}

// Files returns every published component's files, by component ID.
func (b *Board) Files() []Source[File] { return b.files.snapshot() }

// Targets returns every published component's targets, by component ID.
func (b *Board) Targets() []Source[Target] { return b.targets.snapshot() }

// Owner is an extension that shows status: it owns a Board.
type Owner interface {
	StatusBoard() *Board
}

// boards returns the boards of every extension on the host that owns one.
func boards(host component.Host) []*Board {
	var out []*Board
	for _, ext := range host.GetExtensions() {
		if o, ok := ext.(Owner); ok {
			out = append(out, o.StatusBoard())
		}
	}
	return out
}

// PublishFiles publishes a component's tailed files on every board of the
// host (none: nothing to do); call the returned function to withdraw them
// (at Shutdown).
func PublishFiles(host component.Host, component string, fn func() []File) (withdraw func()) {
	return publish(host, component, fn, func(b *Board) *registry[File] { return &b.files })
}

// PublishTargets publishes a component's scrape targets on every board of
// the host; call the returned function to withdraw them (at Shutdown).
func PublishTargets(host component.Host, component string, fn func() []Target) (withdraw func()) {
	return publish(host, component, fn, func(b *Board) *registry[Target] { return &b.targets })
}

func publish[T any](host component.Host, component string, fn func() []T, reg func(*Board) *registry[T]) func() {
	var withdraw []func()
	for _, b := range boards(host) {
		withdraw = append(withdraw, reg(b).register(component, fn))
	}
	return func() {
		for _, w := range withdraw {
			w()
		}
	}
}
