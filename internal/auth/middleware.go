package auth

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/schemas"
)

// Problem codes of refused API requests.
const (
	CodeUnauthenticated   = "unauthenticated"    // 401: no bearer token
	CodeClientRevoked     = "client_revoked"     // 401: the token's client was revoked
	CodeInsufficientScope = "insufficient_scope" // 403
	CodeAuthUnavailable   = "auth_unavailable"   // 503: revocation list not loaded yet
)

// Require returns middleware that lets a request through only with a valid
// bearer access token of a non-revoked client holding scope (scope "" only
// authenticates). The principal goes into the request context with
// WithPrincipal, which also sets the tenant for tenant.From.
//
// Refusals are application/problem+json: 401 unauthenticated /
// invalid_token / token_expired / client_revoked with a WWW-Authenticate
// Bearer challenge (RFC 6750), 403 insufficient_scope naming the scope.
func (a *Authenticator) Require(scope Scope) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := bearerToken(r)
			if !ok {
				a.refuse(w, http.StatusUnauthorized, CodeUnauthenticated,
					"this request needs an access token: Authorization: Bearer <token> (get one from POST /oauth/token)",
					`Bearer realm="kakin"`)
				return
			}
			p, err := a.tokens.Verify(tok)
			if err != nil {
				code, detail := CodeInvalidToken, "the access token is invalid"
				if te, ok := err.(*TokenError); ok && te.Code == CodeTokenExpired {
					code, detail = CodeTokenExpired, "the access token has expired; get a new one"
				}
				a.log.Debug("access token refused", "code", code, "err", err)
				a.refuse(w, http.StatusUnauthorized, code, detail,
					`Bearer realm="kakin", error="invalid_token", error_description="`+detail+`"`)
				return
			}
			revoked, loaded := a.revoked.Revoked(p.ClientID)
			if !loaded {
				httpapi.RetryAfter(w, time.Second)
				a.m.rejected.WithLabelValues(CodeAuthUnavailable).Inc()
				httpapi.WriteProblem(w, http.StatusServiceUnavailable, CodeAuthUnavailable,
					"authentication is starting up (revocation list not loaded); retry shortly")
				return
			}
			if revoked {
				a.refuse(w, http.StatusUnauthorized, CodeClientRevoked, "the client of this access token has been revoked",
					`Bearer realm="kakin", error="invalid_token", error_description="client revoked"`)
				return
			}
			if scope != "" && !p.Has(scope) {
				a.refuse(w, http.StatusForbidden, CodeInsufficientScope,
					"this request needs scope "+string(scope)+"; the token has: "+scopeList(p.Scopes),
					`Bearer realm="kakin", error="insufficient_scope", scope="`+string(scope)+`"`)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

func (a *Authenticator) refuse(w http.ResponseWriter, status int, code, detail, challenge string) {
	a.m.rejected.WithLabelValues(code).Inc()
	w.Header().Set("WWW-Authenticate", challenge)
	httpapi.WriteProblem(w, status, code, detail)
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	return tok, tok != ""
}

func scopeList(s []Scope) string {
	if len(s) == 0 {
		return "(none)"
	}
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = string(x)
	}
	return strings.Join(parts, " ")
}

// DevClientID is the client id of principals made by DevInsecure.
const DevClientID = "dev-insecure"

type devInsecure struct{ scopes []Scope }

// DevInsecure returns the Guard of --dev-insecure mode: it authenticates
// nothing, trusts the Kakin-Tenant header (tenant.Header) and grants every
// scope with default limits. It logs a warning once, now. Never use it where
// the API is reachable by anyone but the developer.
func DevInsecure(log *slog.Logger) Guard {
	if log == nil {
		log = slog.Default()
	}
	log.Warn("AUTHENTICATION DISABLED (--dev-insecure): any caller may act as any tenant via the " +
		tenant.Header + " header, with every scope")
	return devInsecure{scopes: slices.Clone(AllScopes)}
}

func (d devInsecure) Require(Scope) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t := r.Header.Get(tenant.Header)
			if !schemas.ValidTenant(t) {
				httpapi.WriteProblem(w, http.StatusUnauthorized, CodeUnauthenticated,
					"dev-insecure mode: missing or malformed "+tenant.Header+" header (1-64 of a-z, 0-9, -)")
				return
			}
			p := Principal{Tenant: t, ClientID: DevClientID, Scopes: d.scopes}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}
