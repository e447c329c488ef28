// Package usagedb holds the ClickHouse usage tables: columns, inserts and
// queries; no HTTP. The aggregator stage inserts the pipeline's outcomes with its Append
// functions; the admin API (package admin/usage), corrections and re-rates
// read them back with Records, Duplicates, Unrated and Charges. Tables are
// ReplacingMergeTree keyed by deterministic ids and read with FINAL.
package usagedb
