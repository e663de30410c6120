//go:build !linux

package main

import "syscall"

// agentSysProcAttr: only Linux can tie the agent's life to the demo's.
func agentSysProcAttr() *syscall.SysProcAttr { return nil }
