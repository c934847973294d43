//go:build !linux

package bench

import "syscall"

// sysProcAttr: outside Linux there is no parent-death signal; children are stopped
// by Close.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
