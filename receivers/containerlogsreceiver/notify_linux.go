//go:build linux

package containerlogsreceiver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dirMask is what a directory's watch reports: entries created, removed
// and renamed, writes to and attribute changes of the files in it, and
// the directory's own removal or move.
const dirMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE |
	unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// notifier is one inotify instance with a watch per directory, read in
// batches: after each read it waits settle before the next, so that the
// notifications of the writes in between are read together and a busy
// node's thousands of writes a second cost tens of wakes, not one each
// (the kernel queues them meanwhile, up to fs.inotify.max_queued_events,
// past which it reports an overflow).
type notifier struct {
	f *os.File // non-blocking descriptor in the runtime's poller: Close ends a Read

	mu     sync.Mutex
	dirs   map[int32]string // watch descriptor → directory
	wds    map[string]int32 // directory → watch descriptor
	closed bool

	// The names of one read's write notifications so far: a file written
	// many times since the last read is woken once (its reader reads
	// after the wake, so after every one of those writes).
	writes []written

	testRead func() // tests: called after each read
}

type written struct {
	wd   int32
	name string
}

// maxWrites bounds written: past it, writes are handed on as they come.
const maxWrites = 64

// seenWrite reports whether this read already handed on a write to name
// in the directory wd, and remembers it if not.
func (n *notifier) seenWrite(wd int32, name []byte) bool {
	for _, w := range n.writes {
		if w.wd == wd && w.name == string(name) {
			return true
		}
	}
	if len(n.writes) < maxWrites {
		n.writes = append(n.writes, written{wd, string(name)})
	}
	return false
}

// errNotifierClosed is add's error after close.
var errNotifierClosed = errors.New("change notifier closed")

func newNotifier() (*notifier, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	return &notifier{
		f:    os.NewFile(uintptr(fd), "inotify"),
		dirs: map[int32]string{},
		wds:  map[string]int32{},
	}, nil
}

// add watches dir (again: a watch of the same directory is replaced).
func (n *notifier) add(dir string) error { return n.addMask(dir, dirMask) }

// setWrites changes dir's watch to report writes to its files or not (a
// watch that reports no writes still reports entries and attributes).
func (n *notifier) setWrites(dir string, on bool) error {
	if on {
		return n.addMask(dir, dirMask)
	}
	return n.addMask(dir, dirMask&^unix.IN_MODIFY)
}

func (n *notifier) addMask(dir string, mask uint32) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errNotifierClosed
	}
	var wd int
	err := n.control(func(fd int) (err error) {
		wd, err = unix.InotifyAddWatch(fd, dir, mask|unix.IN_ONLYDIR)
		return err
	})
	if err != nil {
		return &fs.PathError{Op: "inotify_add_watch", Path: dir, Err: err}
	}
	if old, ok := n.wds[dir]; ok && old != int32(wd) { //nolint:gosec // watch descriptors are int32 in the events
		delete(n.dirs, old)
	}
	n.dirs[int32(wd)], n.wds[dir] = dir, int32(wd) //nolint:gosec // as above
	return nil
}

// remove drops dir's watch; one the kernel already dropped is no error.
func (n *notifier) remove(dir string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.removeLocked(dir)
}

func (n *notifier) removeLocked(dir string) {
	wd, ok := n.wds[dir]
	if !ok {
		return
	}
	delete(n.wds, dir)
	delete(n.dirs, wd)
	if !n.closed {
		_ = n.control(func(fd int) error {
			_, err := unix.InotifyRmWatch(fd, uint32(wd)) //nolint:gosec // a watch descriptor is never negative
			return err
		})
	}
}

// control runs f on the descriptor.
func (n *notifier) control(f func(fd int) error) error {
	rc, err := n.f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil { //nolint:gosec // a descriptor fits an int
		return err
	}
	return ferr
}

// closeNotifier closes the instance; run returns.
func (n *notifier) closeNotifier() error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	return n.f.Close()
}

// run reads notifications until the notifier is closed, hands each to
// event in order and reports a queue overflow (notifications were lost)
// to overflow, waiting settle after every read. A read error other than
// the close is given to fail and ends it.
func (n *notifier) run(settle time.Duration, event func(notification), overflow func(), fail func(error)) {
	buf := make([]byte, 64<<10)
	for {
		k, err := n.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				fail(fmt.Errorf("read inotify events: %w", err))
			}
			return
		}
		if n.testRead != nil {
			n.testRead()
		}
		n.dispatch(buf[:k], event, overflow)
		time.Sleep(settle)
	}
}

// dispatch decodes the events in b.
func (n *notifier) dispatch(b []byte, event func(notification), overflow func()) {
	n.writes = n.writes[:0]
	for len(b) >= unix.SizeofInotifyEvent {
		raw := (*unix.InotifyEvent)(unsafe.Pointer(&b[0])) //nolint:gosec // the kernel's struct inotify_event
		end := unix.SizeofInotifyEvent + int(raw.Len)
		if end > len(b) {
			return // never split by the kernel
		}
		name := b[unix.SizeofInotifyEvent:end]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		mask := raw.Mask
		wd := raw.Wd
		b = b[end:]
		if mask&unix.IN_Q_OVERFLOW != 0 {
			overflow()
			continue
		}
		if mask == unix.IN_MODIFY && n.seenWrite(wd, name) {
			continue
		}
		n.mu.Lock()
		dir, ok := n.dirs[wd]
		if ok && mask&(unix.IN_IGNORED|unix.IN_MOVE_SELF|unix.IN_DELETE_SELF) != 0 {
			// The watch is gone (IN_IGNORED, after a removal) or watches
			// an inode that left its path: forget it, so that a directory
			// made again under the path is watched again when listed.
			n.removeLocked(dir)
		}
		n.mu.Unlock()
		if !ok || mask&unix.IN_IGNORED != 0 {
			continue
		}
		ev := notification{name: dir}
		if len(name) > 0 {
			ev.name = dir + "/" + string(name)
		}
		switch {
		case mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
			ev.op = opCreate
		case mask&(unix.IN_DELETE|unix.IN_DELETE_SELF) != 0:
			ev.op = opRemove
		case mask&(unix.IN_MOVED_FROM|unix.IN_MOVE_SELF) != 0:
			ev.op = opRename
		case mask&unix.IN_MODIFY != 0:
			ev.op = opWrite
		case mask&unix.IN_ATTRIB != 0:
			ev.op = opChmod
		default:
			continue
		}
		event(ev)
	}
}
