// Package admin holds the handlers of the admin API that manage a tenant's
// own resources: today its API clients; the catalogue, customers and
// contracts join them here. Routes are mounted, with authentication, rate
// limits, versions and idempotency keys, by the binary (cmd/kakin/api.go).
package admin
