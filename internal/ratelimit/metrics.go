package ratelimit

import "github.com/prometheus/client_golang/prometheus"

// classMetrics are one class's series, resolved once so a check does no
// label lookups.
type classMetrics struct {
	allowed, limited, failedOpen prometheus.Counter
	seconds                      prometheus.Observer
}

// newMetrics registers kakin_ratelimit_decisions_total{class,outcome} and
// kakin_ratelimit_check_seconds{class} with reg.
func newMetrics(reg prometheus.Registerer) map[Class]*classMetrics {
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kakin_ratelimit_decisions_total",
		Help: "Rate limit decisions by class and outcome (allowed, limited, failed_open = Redis unreachable, allowed unchecked).",
	}, []string{"class", "outcome"})
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "kakin_ratelimit_check_seconds", Help: "Time of one rate limit check against Redis, failures included.",
		Buckets: prometheus.ExponentialBuckets(0.00001, 2, 14), // 10µs … 82ms (the check timeout is 50ms)
	}, []string{"class"})
	reg.MustRegister(decisions, seconds)
	m := make(map[Class]*classMetrics)
	for _, c := range []Class{Ingest, Admin, IngestEvents, TokenAddress, TokenClient} {
		m[c] = &classMetrics{
			allowed:    decisions.WithLabelValues(string(c), "allowed"),
			limited:    decisions.WithLabelValues(string(c), "limited"),
			failedOpen: decisions.WithLabelValues(string(c), "failed_open"),
			seconds:    seconds.WithLabelValues(string(c)),
		}
	}
	return m
}
