package devstack

import "syscall"

// sysProcAttr puts the child in its own process group and has the kernel
// SIGKILL it when the parent dies.
//
// Pdeathsig fires when the OS thread that forked the child exits. The Go
// runtime keeps its threads alive unless a goroutine exits while locked to
// one with runtime.LockOSThread, which this package never does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
