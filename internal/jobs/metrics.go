package jobs

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	finished   *prometheus.CounterVec
	running    *prometheus.GaugeVec
	runSeconds *prometheus.HistogramVec
	takeovers  *prometheus.CounterVec
	leaseLost  *prometheus.CounterVec
	unfinished prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kakin_jobs_finished_total",
			Help: "Jobs that reached a final status, by kind and status."}, []string{"kind", "status"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kakin_jobs_running",
			Help: "Jobs this process is running now, by kind."}, []string{"kind"}),
		runSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kakin_jobs_run_seconds",
			Help: "Duration of one run of a job, by kind.", Buckets: prometheus.ExponentialBuckets(0.05, 3, 10)}, []string{"kind"}),
		takeovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kakin_jobs_takeovers_total",
			Help: "Runs that resumed a job whose previous run ended without handing over (crash, lost lease)."}, []string{"kind"}),
		leaseLost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kakin_jobs_lease_lost_total",
			Help: "Runs stopped because their lease could not be renewed."}, []string{"kind"}),
		unfinished: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kakin_jobs_unfinished",
			Help: "Unfinished jobs of the kinds this process runs, at the last scan (all tenants)."}),
	}
	reg.MustRegister(m.finished, m.running, m.runSeconds, m.takeovers, m.leaseLost, m.unfinished)
	return m
}
