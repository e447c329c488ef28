// Package billingdb stores receivables (債権), their detail lines, billing
// runs, reconciliations, period close/reopen events and the tenants' number
// formats in ClickHouse (migration 0008_receivables.sql, where every column
// is documented). Every read of a versioned table uses FINAL; rows are keyed
// by deterministic ids (package billing), so a repeated write collapses.
package billingdb
