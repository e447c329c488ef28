package stream

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the per-stage series every consumer stage reports. One Metrics
// value is shared by all stages of a process; the stage is a label.
type Metrics struct {
	Records      *prometheus.CounterVec   // records by stage and outcome
	BatchSize    *prometheus.HistogramVec // records per handled batch
	BatchSeconds *prometheus.HistogramVec // time to handle one batch
	Lag          *prometheus.GaugeVec     // consumer lag in records
	Errors       *prometheus.CounterVec   // failed batch attempts by stage and kind
	EndToEnd     *prometheus.HistogramVec // ingest time → handled by stage
	// Parked counts the records a stage's runner parked on usage.unrated
	// (or, in the aggregator, in usage_unrated) because they could not be
	// read; they are in Records too, under the stage's own outcome.
	Parked *prometheus.CounterVec
	// KafkaUp is 1 while the stage's consumer can fetch (or has not failed
	// yet), 0 while its fetches fail (see Health).
	KafkaUp *prometheus.GaugeVec
	// KafkaBlockedSince is the Unix time of the first failed fetch of the
	// current outage; 0 when not blocked.
	KafkaBlockedSince *prometheus.GaugeVec
}

// NewMetrics creates the stage metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kakin_stage_records_total", Help: "Records handled by a stage, by outcome.",
		}, []string{"stage", "outcome"}),
		BatchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kakin_stage_batch_records", Help: "Records per batch handled by a stage.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}, []string{"stage"}),
		BatchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kakin_stage_batch_seconds", Help: "Time a stage took to handle one batch, commit included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"stage"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kakin_stage_consumer_lag_records", Help: "Records behind the end of the topic, as last seen by the stage's reader.",
		}, []string{"stage"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kakin_stage_errors_total", Help: "Failed batch attempts (the batch is retried, never skipped).",
		}, []string{"stage", "kind"}),
		EndToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kakin_stage_ingest_to_handled_seconds", Help: "Time from ingest to a record being handled by the stage.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"stage"}),
		Parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kakin_stage_parked_total", Help: "Records a stage could not read and parked as malformed_record (with their raw bytes and the reason), never dropped.",
		}, []string{"stage"}),
		KafkaUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kakin_stage_kafka_up", Help: "1 while the stage's consumer can fetch from Kafka (or has not failed yet), 0 while its fetches fail (it retries; it is not ready meanwhile).",
		}, []string{"stage"}),
		KafkaBlockedSince: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kakin_stage_kafka_blocked_since_seconds", Help: "Unix time of the stage's first failed fetch of the current Kafka outage; 0 when not blocked.",
		}, []string{"stage"}),
	}
	reg.MustRegister(m.Records, m.BatchSize, m.BatchSeconds, m.Lag, m.Errors, m.EndToEnd, m.Parked, m.KafkaUp, m.KafkaBlockedSince)
	return m
}
