package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// The weft binary (this test binary, through TestMain's timerSlackChild)
// re-executes itself once with the slack set, keeping its process ID, and
// then every thread of the runtime has it: sysmon, started before any of
// weft's code, included. WEFT_TIMER_SLACK=0 runs on at once with the
// slack it was started with, and a bad value stops it before it runs.
func TestApplyTimerSlackReexecutes(t *testing.T) {
	run := func(slack string) ([]string, error) {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "WEFT_TEST_TIMER_SLACK_CHILD=1", timerSlackEnv+"="+slack)
		out, err := cmd.CombinedOutput()
		return strings.Split(strings.TrimSpace(string(out)), "\n"), err
	}
	lines, err := run("2ms")
	require.NoError(t, err, "%q", lines)
	require.Len(t, lines, 3, "started, re-executed, ran: %q", lines)
	pid, _, _ := strings.Cut(lines[0], " ")
	require.Equal(t, pid+" start, slack 2000000", lines[1], "re-executed: same process ID, the slack kept across execve")
	require.Equal(t, pid+" run, every thread 2000000", lines[2])

	lines, err = run("0")
	require.NoError(t, err, "%q", lines)
	require.Len(t, lines, 2, "no re-execution: %q", lines)
	pid, _, _ = strings.Cut(lines[0], " ")
	require.NotContains(t, lines[1], "2000000")
	require.Contains(t, lines[1], pid+" run, every thread ")

	lines, err = run("2 ms")
	require.Error(t, err)
	require.Equal(t, `weft: WEFT_TIMER_SLACK: not a duration (like 1ms, or 0 to keep the slack weft was started with): "2 ms"`, lines[len(lines)-1])
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
