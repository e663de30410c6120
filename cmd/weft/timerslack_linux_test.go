package main

import (
	"os"
	"os/exec"
	"strings"
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
