// Package stream is Kakin's Kafka plumbing: writers tuned for synchronous,
// acknowledged batches, a consumer-group loop that hands a stage one batch at a
// time and commits only after the stage has durably handled it, topic creation,
// the stage runner every stage runs its logic through (decode, park what
// cannot be read on usage.unrated, write through one Producer, count), and
// the per-stage Prometheus metrics they report.
package stream
