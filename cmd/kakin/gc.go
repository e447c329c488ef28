package main

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the garbage collector's target (GOGC) of kakin serve
// and kakin dev when the environment sets none: 200 lets the heap grow to
// three times the live data between collections instead of twice, which
// halves how often the pipeline's short-lived batches are collected
// (docs/BENCHMARKS.md, issue 17: box CPU per event 70.8 → 58.2 µs in make
// bench). A process holding a large catalogue replica (≈1.5 GB for a million
// customers) grows with it: set GOGC=100, or GOMEMLIMIT, there
// (docs/OPERATIONS.md).
const defaultGCPercent = 200

// setGC applies defaultGCPercent unless GOGC is set (the runtime applied
// that already).
func setGC() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(defaultGCPercent)
	}
}
