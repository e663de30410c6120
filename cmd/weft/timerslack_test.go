package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTimerSlackFromEnvironment(t *testing.T) {
	env := func(v string) func(string) (string, bool) {
		return func(k string) (string, bool) { return v, k == timerSlackEnv }
	}
	unset := func(string) (string, bool) { return "", false }

	for _, lookup := range []func(string) (string, bool){unset, env("")} {
		d, err := timerSlack(lookup)
		require.NoError(t, err)
		require.Equal(t, defaultTimerSlack, d, "unset or empty: the default")
	}
	for v, want := range map[string]time.Duration{"0": 0, "250us": 250 * time.Microsecond, "100ms": maxTimerSlack} {
		d, err := timerSlack(env(v))
		require.NoError(t, err, v)
		require.Equal(t, want, d, v)
	}
	for v, msg := range map[string]string{
		"1000":  `WEFT_TIMER_SLACK: not a duration (like 1ms, or 0 to keep the slack weft was started with): "1000"`,
		"-1ms":  "WEFT_TIMER_SLACK: must be between 0 and 100ms, got -1ms",
		"101ms": "WEFT_TIMER_SLACK: must be between 0 and 100ms, got 101ms",
	} {
		_, err := timerSlack(env(v))
		require.EqualError(t, err, msg, v)
	}
}

// timerSlackChild is TestApplyTimerSlackReexecutes's child: it prints its
// process ID and slack, calls applyTimerSlack as main does, makes the
// runtime start more threads and prints the slack of all its threads if
// they agree.
func timerSlackChild() {
	fmt.Printf("%d start, slack %s\n", os.Getpid(), readSlack("/proc/self"))
	applyTimerSlack()
	var started sync.WaitGroup
	done := make(chan struct{})
	for range 4 { // each holds a thread of its own until done
		started.Add(1)
		go func() {
			runtime.LockOSThread()
			started.Done()
			<-done
		}()
	}
	started.Wait()
	defer close(done)
	tasks, _ := filepath.Glob("/proc/self/task/*")
	var slacks []string
	for _, t := range tasks {
		// /proc/TID shows the thread's own slack (task/TID has none).
		slacks = append(slacks, readSlack("/proc/"+filepath.Base(t)))
	}
	slices.Sort(slacks)
	slacks = slices.Compact(slacks)
	if len(slacks) != 1 || len(tasks) < 5 {
		fmt.Printf("%d run, %d threads disagree: %v\n", os.Getpid(), len(tasks), slacks)
		return
	}
	fmt.Printf("%d run, every thread %s\n", os.Getpid(), slacks[0])
}

func readSlack(dir string) string {
	b, err := os.ReadFile(dir + "/timerslack_ns")
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(string(b))
}
