package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// currentTimerSlack is the calling thread's timer slack.
func currentTimerSlack() (time.Duration, error) {
	ns, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		return 0, fmt.Errorf("prctl(PR_GET_TIMERSLACK): %w", err)
	}
	return time.Duration(ns), nil
}

// reexecWithTimerSlack returns nil at once when the process already runs
// with slack want; otherwise it sets want on this thread and re-executes
// weft from it, and returns only if that failed (the thread's slack then
// restored).
func reexecWithTimerSlack(want time.Duration) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	got, err := currentTimerSlack()
	if err != nil || got == want {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding weft's binary to re-execute: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(want.Nanoseconds()), 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_TIMERSLACK, %d): %w", want.Nanoseconds(), err)
	}
	err = syscall.Exec(exe, os.Args, os.Environ())
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(got.Nanoseconds()), 0, 0, 0)
	return fmt.Errorf("re-executing %s: %w", exe, err)
}
