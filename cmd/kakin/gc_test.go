package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// serve and dev collect at defaultGCPercent unless GOGC says otherwise.
func TestSetGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tc := range []struct {
		name string
		env  string // "" = unset
		want int
	}{
		{"GOGC unset", "", defaultGCPercent},
		{"GOGC set", "77", 77},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(77) // as the runtime would have applied GOGC=77
			if tc.env == "" {
				t.Setenv("GOGC", "")
				os.Unsetenv("GOGC")
			} else {
				t.Setenv("GOGC", tc.env)
			}
			setGC()
			if got := debug.SetGCPercent(100); got != tc.want {
				t.Errorf("GC percent %d, want %d", got, tc.want)
			}
		})
	}
}
