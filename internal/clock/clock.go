// Package clock is Kakin's one source of the business "now": the time that
// decides whether a record is too old for the dedupe window, which billing
// period is open, which fixed fees are due, when a claim expires.
//
// Latency measurements, deadlines and timeouts keep using time.Now directly;
// only the calendar reads go through here.
//
// The environment variable KAKIN_CLOCK_OFFSET (a Go duration such as 8760h or
// -24h) moves this process's clock. It exists so that the test suite can run as
// if on another day (`make test` runs the packages that read the clock a
// second time a year ahead); production leaves it unset.
package clock

import (
	"fmt"
	"os"
	"time"
)

// OffsetEnv names the environment variable that moves the clock.
const OffsetEnv = "KAKIN_CLOCK_OFFSET"

// offset is read once, at start: a process's clock never jumps.
var offset = mustOffset(os.Getenv(OffsetEnv))

func mustOffset(v string) time.Duration {
	d, err := ParseOffset(v)
	if err != nil {
		panic(err)
	}
	return d
}

// ParseOffset parses a KAKIN_CLOCK_OFFSET value; empty is no offset.
func ParseOffset(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want a Go duration such as 8760h or -24h: %w", OffsetEnv, v, err)
	}
	return d, nil
}

// Now returns the current time, moved by KAKIN_CLOCK_OFFSET when it is set.
// Its signature matches time.Now so that it is the default of every injected
// clock (a stage's now func() time.Time).
func Now() time.Time { return time.Now().Add(offset) }

// Offset returns how far this process's clock is moved from the system's.
func Offset() time.Duration { return offset }
