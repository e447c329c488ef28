// Package auth authenticates API callers: OAuth 2.0 client-credentials tokens
// issued to API clients of a tenant, verified on every request without a
// shared session store, with scopes and per-client limits.
package auth

import (
	"context"
	"slices"

	"github.com/kakin-dev/kakin/internal/tenant"
)

// Scope is a permission a client can be granted.
type Scope string

// The scopes of the v1 API.
const (
	ScopeUsageWrite     Scope = "usage:write"
	ScopeUsageRead      Scope = "usage:read"
	ScopeCatalogRead    Scope = "catalog:read"
	ScopeCatalogWrite   Scope = "catalog:write"
	ScopeCustomersRead  Scope = "customers:read"
	ScopeCustomersWrite Scope = "customers:write"
	ScopeBillingRead    Scope = "billing:read"
	ScopeBillingWrite   Scope = "billing:write"
	ScopeAdmin          Scope = "admin"
)

// AllScopes lists every scope, in documentation order.
var AllScopes = []Scope{ScopeUsageWrite, ScopeUsageRead, ScopeCatalogRead, ScopeCatalogWrite,
	ScopeCustomersRead, ScopeCustomersWrite, ScopeBillingRead, ScopeBillingWrite, ScopeAdmin}

// ValidScope reports whether s names a known scope.
func ValidScope(s string) bool { return slices.Contains(AllScopes, Scope(s)) }

// Limits are a client's rate limits; zero fields fall back to the tenant's,
// then to the process defaults.
type Limits struct {
	IngestEventsPerSecond   int `json:"ingest_events_per_second,omitempty"`
	IngestRequestsPerSecond int `json:"ingest_requests_per_second,omitempty"`
	AdminRequestsPerMinute  int `json:"admin_requests_per_minute,omitempty"`
}

// Or returns l with its zero fields taken from fallback.
func (l Limits) Or(fallback Limits) Limits {
	if l.IngestEventsPerSecond == 0 {
		l.IngestEventsPerSecond = fallback.IngestEventsPerSecond
	}
	if l.IngestRequestsPerSecond == 0 {
		l.IngestRequestsPerSecond = fallback.IngestRequestsPerSecond
	}
	if l.AdminRequestsPerMinute == 0 {
		l.AdminRequestsPerMinute = fallback.AdminRequestsPerMinute
	}
	return l
}

// Principal is the authenticated caller of a request.
type Principal struct {
	Tenant   string
	ClientID string
	Scopes   []Scope
	Limits   Limits // the client's limits, already merged with its tenant's
}

// Has reports whether the principal holds scope s (admin holds every scope).
func (p Principal) Has(s Scope) bool {
	return slices.Contains(p.Scopes, s) || slices.Contains(p.Scopes, ScopeAdmin)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p, and p's tenant for tenant.From.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return tenant.With(context.WithValue(ctx, principalKey{}, p), p.Tenant)
}

// FromContext returns the request's principal.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
