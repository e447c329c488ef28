// Package auth authenticates API callers: OAuth 2.0 client-credentials tokens
// issued to API clients of a tenant, verified on every request without a
// shared session store, with scopes and per-client limits.
package auth

import (
	"context"
	"slices"

	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/tenants"
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

// Principal is the authenticated caller of a request.
type Principal struct {
	Tenant   string
	ClientID string
	Scopes   []Scope
	Limits   tenants.Limits // the client's limits, already merged with its tenant's
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
