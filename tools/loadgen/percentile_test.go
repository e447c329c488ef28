package loadgen

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := time.Millisecond
	seq := func(n int) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration(i+1) * ms
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		q       float64
		want    time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one sample p50", []time.Duration{7 * ms}, 0.5, 7 * ms},
		{"one sample p99", []time.Duration{7 * ms}, 0.99, 7 * ms},
		{"two p50 is the lower", []time.Duration{1 * ms, 9 * ms}, 0.5, 1 * ms},
		{"two p99 is the upper", []time.Duration{1 * ms, 9 * ms}, 0.99, 9 * ms},
		{"1..100 p50", seq(100), 0.5, 50 * ms},
		{"1..100 p99", seq(100), 0.99, 99 * ms},
		{"1..100 p100", seq(100), 1, 100 * ms},
		{"1..100 p0", seq(100), 0, 1 * ms},
		{"1..1000 p99", seq(1000), 0.99, 990 * ms},
		{"1..10 p99 is the max", seq(10), 0.99, 10 * ms},
		{"q above one", seq(10), 1.5, 10 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.samples, tc.q); got != tc.want {
				t.Fatalf("Percentile(q=%v) = %s, want %s", tc.q, got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		want    Latency
	}{
		{"none", nil, Latency{}},
		{"unsorted", []time.Duration{30 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond},
			Latency{Count: 3, P50ms: 20, P99ms: 30, Maxms: 30}},
		{"sub-millisecond", []time.Duration{1500 * time.Microsecond}, Latency{Count: 1, P50ms: 1.5, P99ms: 1.5, Maxms: 1.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summarize(tc.samples); got != tc.want {
				t.Fatalf("Summarize = %+v, want %+v", got, tc.want)
			}
		})
	}
}
