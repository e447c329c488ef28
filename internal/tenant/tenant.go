// Package tenant carries the authenticated tenant of a request through its
// context. Handlers read the tenant only from here; the authentication
// middleware (the access token, or the development header) puts it there.
package tenant

import "context"

type ctxKey struct{}

// With returns ctx carrying tenant t.
func With(ctx context.Context, t string) context.Context {
	return context.WithValue(ctx, ctxKey{}, t)
}

// From returns the tenant in ctx.
func From(ctx context.Context) (string, bool) {
	t, ok := ctx.Value(ctxKey{}).(string)
	return t, ok && t != ""
}

// Header is the development-only request header naming the tenant
// (--dev-insecure mode; see auth.DevInsecure).
const Header = "Kakin-Tenant"
