package main

import "syscall"

// agentSysProcAttr makes the kernel send the agent SIGTERM if the demo dies
// without stopping it (SIGKILL, a test binary's timeout), so no agent is
// left holding the demo's ports.
func agentSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
