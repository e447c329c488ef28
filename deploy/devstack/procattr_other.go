//go:build unix && !linux

package devstack

import "syscall"

// sysProcAttr puts the child in its own process group. Only Linux can kill
// children when the parent dies; elsewhere call Stop.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
