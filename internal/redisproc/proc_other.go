//go:build !linux

package redisproc

import "syscall"

// sysProcAttr: other systems have no parent-death signal; Stop and Close stop the
// servers.
func sysProcAttr() *syscall.SysProcAttr { return nil }
