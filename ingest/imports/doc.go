// Package imports is bulk usage registration (利用実績登録バッチ):
// POST /v1/usage/imports takes a CSV or NDJSON file of usage records,
// spools it to disk as it arrives (never whole in memory), creates a
// usage_import job (package internal/jobs) and answers 202 with the job id
// at once. The job validates every record exactly as POST /v1/usage does and
// publishes the valid ones to usage.raw as the ingest handler would, in
// acknowledged batches, checkpointing the file offset so that a run resumed
// after a crash continues where the last one stopped.
//
// Modes: partial (default) publishes the valid records and reports the
// invalid ones line by line; atomic first validates the whole file and
// publishes nothing at all if any record is invalid.
//
// File formats, one record per line (a CSV record may not span lines):
//
//   - CSV (text/csv): a header row naming the columns id, customer, element,
//     quantity, time (required), contract (optional) and attribute columns
//     attr.<key>; then one record per row. Empty cells are absent fields.
//   - NDJSON (application/x-ndjson): one JSON usage record per line, the
//     same object POST /v1/usage takes.
//
// Blank lines are skipped. Line numbers in the error report are physical
// line numbers of the file, the CSV header being line 1.
package imports
