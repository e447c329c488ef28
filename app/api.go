package app

import (
	"context"
	"fmt"
	"net/http"

	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/idempotency"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/ratelimit"
	"github.com/kakin-dev/kakin/schemas/openapi"
)

// apiRoutes mounts /v1 routes with the rules every route shares, in this
// order: minor version → authentication and scope → rate limit → (for admin
// POSTs) idempotency key → handler.
type apiRoutes struct {
	mux     *http.ServeMux
	guard   auth.Guard
	store   *auth.Store
	limiter *ratelimit.Limiter
	pages   *page.Codec
	idem    *idempotency.Store
	keys    *auth.KeyRing // signs report download URLs (Derive)
}

// initAPI sets up the rules of the ingest and admin roles' HTTP API:
// access tokens (POST /oauth/token, component "auth_revocations",
// readiness "auth") or, with --dev-insecure, the trusted Kakin-Tenant
// header; rate limits; pagination cursors; idempotency keys. It mounts the
// OpenAPI document and its page.
func (a *App) initAPI(context.Context) error {
	cfg := a.cfg.API
	api := &apiRoutes{mux: a.mux}
	if cfg.DevInsecure {
		// Development only: the Kakin-Tenant header is trusted as it is.
		if _, err := auth.GenerateKeyFile(cfg.TokenKeysFile); err != nil {
			return fmt.Errorf("token keys: %w", err)
		}
		api.guard = auth.DevInsecure(a.log)
	}
	keys, err := auth.LoadKeyRing(cfg.TokenKeysFile)
	if err != nil {
		return fmt.Errorf("token keys (create one with `kakin dev`, or see docs/ARCHITECTURE.md): %w", err)
	}
	api.store = auth.NewStore(a.ch, a.tenants)
	api.limiter = ratelimit.New(a.rdb, ratelimit.Defaults{
		IngestEventsPerSecond: cfg.IngestEventsPerSec, IngestRequestsPerSecond: cfg.IngestReqsPerSec,
		AdminRequestsPerMinute: cfg.AdminReqsPerMin, MaxEventsPerRequest: a.cfg.Ingest.MaxRecords,
		TokenPerAddressPerMinute: cfg.TokenPerAddrPerMin, TokenPerClientPerMinute: cfg.TokenPerClientPerMin,
	}, a.reg).WithLogger(a.log)
	if !cfg.DevInsecure {
		// The token endpoint's attempts are limited per remote address and
		// per client id before any secret is hashed.
		authn, err := auth.New(api.store, keys, auth.Options{TokenTTL: cfg.TokenTTL, RevocationRefresh: cfg.RevocationRefresh,
			Attempts: api.limiter, Log: a.log, Registerer: a.reg})
		if err != nil {
			return err
		}
		a.group.Go("auth_revocations", authn.Run)
		a.group.Check("auth", authn.Ready)
		a.mux.Handle("POST /oauth/token", authn.TokenHandler())
		api.guard = authn
	}
	api.pages = page.NewCodec(keys.Derive("pagination cursors"), cfg.PageMaxSize)
	api.keys = keys
	api.idem = idempotency.New(a.rdb, cfg.IdempotencyTTL, a.log)
	a.api = api
	a.mux.Handle("GET /openapi.json", openapi.OpenAPIHandler())
	a.mux.Handle("GET /docs", openapi.DocsHandler())
	return nil
}

// handle mounts h on pattern behind the shared rules.
func (r *apiRoutes) handle(pattern string, scope auth.Scope, class ratelimit.Class, h http.Handler) {
	r.mux.Handle(pattern, httpapi.WithVersion(r.guard.Require(scope)(r.limiter.Requests(class)(h))))
}

// handleSelfLimited mounts a handler that checks its rate limits itself (the
// ingest handler checks its request and event budgets together, once it
// knows how many events the request carries).
func (r *apiRoutes) handleSelfLimited(pattern string, scope auth.Scope, h http.Handler) {
	r.mux.Handle(pattern, httpapi.WithVersion(r.guard.Require(scope)(h)))
}

// handleWrite mounts an admin POST, PUT or DELETE: like handle, plus
// Idempotency-Key.
func (r *apiRoutes) handleWrite(pattern string, scope auth.Scope, h http.Handler) {
	r.handle(pattern, scope, ratelimit.Admin, r.idem.Middleware(h))
}
