//go:build !linux

package main

import "time"

// reexecWithTimerSlack does nothing where Linux's timer slack does not exist.
func reexecWithTimerSlack(time.Duration) error { return nil }
