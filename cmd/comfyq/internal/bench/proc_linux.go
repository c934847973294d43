package bench

import "syscall"

// sysProcAttr makes the kernel kill a started child (a worker) if the
// benchmark process dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
