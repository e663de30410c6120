package main

import (
	"fmt"
	"os"
	"time"
)

// timerSlackEnv names the environment variable that sets the timer slack
// weft runs with: a Go duration, 0 to keep the slack weft was started
// with. Unset: defaultTimerSlack.
const timerSlackEnv = "WEFT_TIMER_SLACK"

// defaultTimerSlack is how late the kernel may wake any of weft's threads
// from a timed sleep, so that it can wake them together (Linux's timer
// slack, PR_SET_TIMERSLACK; the kernel's default is 50 µs).
//
// The slack matters for the Go runtime's sysmon thread. sysmon sleeps
// deeply while every P is idle, and the first system call after that wakes
// it and restarts its polling at 20 µs sleeps, which it backs off from only
// after 50 rounds. An agent busy a fifth of a core in short bursts (a span
// request every 20 ms, a log read every 200 ms) restarts it at every burst:
// at bench/compare's nominal load on a 2-core virtual machine, sysmon woke
// ~775 times a second and spent 0.72 s of the process's 7.37 s over 40 s.
// With 1 ms of slack those 20 µs sleeps last ~1 ms, so a burst costs sysmon
// one or two wakes instead of about twelve: 0.38 s of 7.26 s, context
// switches 65,341 → 40,701 (bench/RESULTS.md, issue #21 session 20). Every
// timed wait in weft may end up to the slack late; its own are tens of
// milliseconds and longer (retry backoffs, batch flushes, read ticks).
const defaultTimerSlack = time.Millisecond

// maxTimerSlack bounds WEFT_TIMER_SLACK: beyond it the lateness starts to
// show in flushes, probes and scrape timestamps.
const maxTimerSlack = 100 * time.Millisecond

// timerSlack is the slack to run with, from the environment (lookup is
// os.LookupEnv; set but empty counts as unset, as a manifest's empty
// value would be); 0 keeps the slack weft was started with.
func timerSlack(lookup func(string) (string, bool)) (time.Duration, error) {
	v, ok := lookup(timerSlackEnv)
	if !ok || v == "" {
		return defaultTimerSlack, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: not a duration (like 1ms, or 0 to keep the slack weft was started with): %q", timerSlackEnv, v)
	}
	if d < 0 || d > maxTimerSlack {
		return 0, fmt.Errorf("%s: must be between 0 and %s, got %s", timerSlackEnv, maxTimerSlack, d)
	}
	return d, nil
}

// applyTimerSlack makes weft run with the slack the environment asks for.
// A thread's slack is inherited by the threads it creates and kept across
// execve, but the runtime starts sysmon before any of weft's code runs, so
// the slack is set on the calling thread and weft re-executes itself (same
// binary, arguments, environment and process ID); the re-executed process
// finds its slack set and goes on. It exits on a bad WEFT_TIMER_SLACK, and
// runs with the slack it has when the slack cannot be set (saying so).
func applyTimerSlack() {
	want, err := timerSlack(os.LookupEnv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "weft: %v\n", err)
		os.Exit(2)
	}
	if want == 0 {
		return
	}
	if err := reexecWithTimerSlack(want); err != nil {
		fmt.Fprintf(os.Stderr, "weft: running with the timer slack it was started with: %v\n", err)
	}
}
