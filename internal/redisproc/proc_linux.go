package redisproc

import "syscall"

// sysProcAttr makes the kernel kill a started server if the process that started it dies
// without stopping it (a panic, a test timeout, SIGKILL).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
