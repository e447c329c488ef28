// Package billing serves the receivable routes: billing runs (POST
// /v1/billing-runs, a job on the jobs API; GET /v1/billing-runs/{runId} and
// its reconciliation as JSON or CSV), receivables (get, search, count, lines,
// delete) and the close and reopen of a tenant's period. The tenant is always
// the authenticated principal's (httpapi.RequestTenant). The work is done by
// billing/run over billingdb.
package billing
