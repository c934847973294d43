//go:build !linux

package testenv

import "syscall"

// sysProcAttr: other systems have no parent-death signal; t.Cleanup stops the
// servers.
func sysProcAttr() *syscall.SysProcAttr { return nil }
