//go:build !linux

package containerlogsreceiver

import (
	"errors"
	"time"
)

// notifier: change notifications need Linux's inotify; elsewhere every
// file is polled (newNotifier fails, which the watcher counts and logs).
type notifier struct{}

var errNotifierClosed = errors.New("change notifier closed")

func newNotifier() (*notifier, error) {
	return nil, errors.New("change notifications need Linux's inotify")
}

func (*notifier) add(string) error                                           { return errors.ErrUnsupported }
func (*notifier) setWrites(string, bool) error                               { return errors.ErrUnsupported }
func (*notifier) remove(string)                                              {}
func (*notifier) closeNotifier() error                                       { return nil }
func (*notifier) run(time.Duration, func(notification), func(), func(error)) {}
