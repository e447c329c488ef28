// Package tenant carries the authenticated tenant of a request through its
// context. Handlers read the tenant only from here; how it got there (the
// development header today, an access token later) is the middleware's job.
package tenant

import (
	"context"
	"net/http"

	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/schemas"
)

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

// Header is the development-only request header naming the tenant.
const Header = "Kakin-Tenant"

// FromHeader is a development middleware that trusts the Kakin-Tenant header.
// It authenticates nothing; production deployments replace it with token
// authentication. Requests without a well-formed tenant get 401.
func FromHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := r.Header.Get(Header)
		if !schemas.ValidTenant(t) {
			httpapi.WriteProblem(w, http.StatusUnauthorized, "unauthenticated",
				"development mode: the Kakin-Tenant header must name a tenant (1-64 of a-z, 0-9, -)")
			return
		}
		next.ServeHTTP(w, r.WithContext(With(r.Context(), t)))
	})
}
