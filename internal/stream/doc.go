// Package stream is Kakin's Kafka plumbing: writers tuned for synchronous,
// acknowledged batches, a consumer-group loop that hands a stage one batch at a
// time and commits only after the stage has durably handled it, topic creation,
// and the per-stage Prometheus metrics that loop reports.
package stream
