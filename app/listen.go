package app

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// ListenError explains a failure to listen on addr: what the listener is
// for, and the flag and environment variable that move it (form is what
// they take: HOST:PORT or PORT). The cause stays wrapped.
func ListenError(err error, what, addr, flagName, form string) error {
	return ExplainListen(err, AddrInUse(err), what, addr, flagName, form)
}

// ExplainListen is ListenError when the caller knows whether addr is taken.
func ExplainListen(err error, inUse bool, what, addr, flagName, form string) error {
	move := fmt.Sprintf("--%s=%s or %s=%s", flagName, form, EnvName(flagName), form)
	if inUse {
		return fmt.Errorf("%s: %s is already in use by another process; stop that process, or pick another with %s: %w",
			what, addr, move, err)
	}
	return fmt.Errorf("%s: cannot listen on %s (set it with %s): %w", what, addr, move, err)
}

// AddrInUse reports whether err says that an address is taken: a listen of
// this process, or the log of a server it started.
func AddrInUse(err error) bool {
	if errors.Is(err, syscall.EADDRINUSE) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "address already in use") || strings.Contains(msg, "port in use")
}
