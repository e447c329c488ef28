package loadgen

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the q-quantile (0 ≤ q ≤ 1) of sorted by the
// nearest-rank method: the smallest sample with at least q of the samples at
// or below it. It returns 0 for no samples.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if q <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(q * float64(n)))
	return sorted[min(max(rank, 1), n)-1]
}

// Latency summarises a set of durations in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	Maxms float64 `json:"max_ms"`
}

// Summarize sorts samples in place and returns their p50, p99 and maximum.
func Summarize(samples []time.Duration) Latency {
	slices.Sort(samples)
	l := Latency{Count: len(samples)}
	if len(samples) == 0 {
		return l
	}
	l.P50ms = ms(Percentile(samples, 0.50))
	l.P99ms = ms(Percentile(samples, 0.99))
	l.Maxms = ms(samples[len(samples)-1])
	return l
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }
