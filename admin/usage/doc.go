// Package usage holds the handlers of the admin API that read a tenant's
// usage: GET /v1/usage (search, count, one record's detail),
// /v1/usage/unrated, /v1/usage/duplicates and /v1/charges, with the query
// parameters each route understands (QueryParams). The queries are package
// usagedb's; routes are mounted, with authentication, rate limits and
// versions, by the binary (cmd/kakin/api.go).
package usage
