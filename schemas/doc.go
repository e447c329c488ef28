// Package schemas holds Kakin's data contracts: the records that travel on each
// Kafka topic, the topics themselves, the deterministic ids every stage derives,
// and the versioned ClickHouse migrations (clickhouse/NNNN_name.sql).
package schemas
