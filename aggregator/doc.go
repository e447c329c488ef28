// Package aggregator is the last hop of the data path: it consumes rated lines,
// duplicates and unrated records and batch-inserts them into ClickHouse's
// usage tables (package usagedb), where the charges query reads them. Tables are ReplacingMergeTree keyed by
// deterministic ids and read with FINAL, so a redelivered batch can never
// double a charge.
package aggregator
