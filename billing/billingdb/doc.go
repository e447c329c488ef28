// Package billingdb stores receivables (債権), their detail lines, billing
// runs, reconciliations, period close/reopen events and the tenants' number
// formats in ClickHouse (migration 0008_receivables.sql, where every column
// is documented). Rows are keyed by deterministic ids (package billing), so a
// repeated write collapses, and every read answers each row's newest version:
// with FINAL, or (the receivable reads the routes serve: Get, Lines, a
// search's page) by reading every stored row of the ids asked for and
// keeping the newest revision (argMax in SQL or a comparison in Go), which
// gives the same answer for less work.
package billingdb
