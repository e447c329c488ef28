// Package admin is the admin role's HTTP surface, one sub-package per area;
// each exposes its handlers and the binary mounts them with authentication,
// rate limits, versions and idempotency keys (cmd/kakin/api.go):
//
//   - catalogapi: the price catalogue, customers, groups and contracts
//   - clients: a tenant's OAuth2 API clients
//   - usage: the usage read API (records, duplicates, unrated, charges)
//   - corrections: invalidate/cancel of stored records, period markers
//   - rerates: re-rate requests and their history
package admin
