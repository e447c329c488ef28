package imports

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the import counters.
type Metrics struct {
	uploadBytes   prometheus.Counter
	uploads       *prometheus.CounterVec
	records       *prometheus.CounterVec
	batchSeconds  prometheus.Histogram
	publishErrors prometheus.Counter
	throttled     prometheus.Counter
	spoolSwept    prometheus.Counter
}

// NewMetrics registers the import metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		uploadBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "kakin_import_upload_bytes_total",
			Help: "Bytes of import files received and spooled."}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kakin_import_uploads_total",
			Help: "Import uploads by outcome (accepted: a job was created; or the refusal code)."}, []string{"outcome"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kakin_import_records_total",
			Help: "Import records handled: accepted (published to usage.raw) or rejected (in the error report)."}, []string{"outcome"}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kakin_import_publish_seconds",
			Help: "Time to publish one batch of import records (rate-limit waits included).", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "kakin_import_publish_errors_total",
			Help: "Failed Kafka writes of import batches (each is retried)."}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{Name: "kakin_import_throttled_seconds_total",
			Help: "Time import publishing waited for the uploader's ingest event budget."}),
		spoolSwept: prometheus.NewCounter(prometheus.CounterOpts{Name: "kakin_import_spool_files_swept_total",
			Help: "Spooled upload files deleted by the spool sweep: of finished jobs, or of uploads whose process died before creating their job."}),
	}
	if reg != nil {
		reg.MustRegister(m.uploadBytes, m.uploads, m.records, m.batchSeconds, m.publishErrors, m.throttled, m.spoolSwept)
	}
	return m
}
