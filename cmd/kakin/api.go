package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/admin/catalogapi"
	"github.com/kakin-dev/kakin/admin/clients"
	"github.com/kakin-dev/kakin/admin/corrections"
	usageapi "github.com/kakin-dev/kakin/admin/usage"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/idempotency"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/ratelimit"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/tenants"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/redis/go-redis/v9"
)

// apiRoutes mounts /v1 routes with the rules every route shares, in this
// order: minor version → authentication and scope → rate limit → (for admin
// POSTs) idempotency key → handler.
type apiRoutes struct {
	s       *server
	guard   auth.Guard
	store   *auth.Store // nil in --dev-insecure mode
	limiter *ratelimit.Limiter
	pages   *page.Codec
	idem    *idempotency.Store
	keys    *auth.KeyRing // signs report download URLs (Derive)
}

func (s *server) newAPI(ctx context.Context, clickhouse func() (driver.Conn, error), redisClient func() *redis.Client) (*apiRoutes, error) {
	cfg, log := s.cfg, s.log
	api := &apiRoutes{s: s}
	if cfg.DevInsecure {
		// Development only: the Kakin-Tenant header is trusted as it is.
		if _, err := auth.GenerateKeyFile(cfg.TokenKeysFile); err != nil {
			return nil, fmt.Errorf("token keys: %w", err)
		}
		api.guard = auth.DevInsecure(log)
	}
	keys, err := auth.LoadKeyRing(cfg.TokenKeysFile)
	if err != nil {
		return nil, fmt.Errorf("token keys (create one with `kakin dev`, or see docs/ARCHITECTURE.md): %w", err)
	}
	conn, err := clickhouse()
	if err != nil {
		return nil, err
	}
	api.store = auth.NewStore(conn, tenants.NewStore(conn))
	api.limiter = ratelimit.New(redisClient(), ratelimit.Defaults{
		IngestEventsPerSecond: cfg.IngestEventsPerSec, IngestRequestsPerSecond: cfg.IngestReqsPerSec,
		AdminRequestsPerMinute: cfg.AdminReqsPerMin, MaxEventsPerRequest: cfg.MaxRecords,
		TokenPerAddressPerMinute: cfg.TokenPerAddrPerMin, TokenPerClientPerMinute: cfg.TokenPerClientPerMin,
	}, s.reg).WithLogger(log)
	if !cfg.DevInsecure {
		// The token endpoint's attempts are limited per remote address and
		// per client id before any secret is hashed.
		a, err := auth.New(api.store, keys, auth.Options{TokenTTL: cfg.TokenTTL, RevocationRefresh: cfg.RevocationRefresh,
			Attempts: api.limiter, Log: log, Registerer: s.reg})
		if err != nil {
			return nil, err
		}
		s.addLoop("auth_revocations", a.Run)
		s.checks = append(s.checks, check{"auth", a.Ready})
		s.mux.Handle("POST /oauth/token", a.TokenHandler())
		api.guard = a
	}
	api.pages = page.NewCodec(keys.Derive("pagination cursors"), cfg.PageMaxSize)
	api.keys = keys
	api.idem = idempotency.New(redisClient(), cfg.IdempotencyTTL, log)
	return api, nil
}

// handle mounts h on pattern behind the shared rules.
func (a *apiRoutes) handle(pattern string, scope auth.Scope, class ratelimit.Class, h http.Handler) {
	a.s.mux.Handle(pattern, httpapi.WithVersion(a.guard.Require(scope)(a.limiter.Requests(class)(h))))
}

// handleSelfLimited mounts a handler that checks its rate limits itself (the
// ingest handler checks its request and event budgets together, once it
// knows how many events the request carries).
func (a *apiRoutes) handleSelfLimited(pattern string, scope auth.Scope, h http.Handler) {
	a.s.mux.Handle(pattern, httpapi.WithVersion(a.guard.Require(scope)(h)))
}

// handleWrite mounts an admin POST, PUT or DELETE: like handle, plus
// Idempotency-Key.
func (a *apiRoutes) handleWrite(pattern string, scope auth.Scope, h http.Handler) {
	a.handle(pattern, scope, ratelimit.Admin, a.idem.Middleware(h))
}

// registerAdmin mounts the admin role's routes; corrections of usage records
// are published with producer, the catalogue is kept in catalogStore.
func (a *apiRoutes) registerAdmin(conn driver.Conn, producer corrections.Producer, catalogStore *catalogstore.Store) {
	charges := usageapi.NewCharges(usagedb.NewCharges(conn)).WithPeriods(corrections.NewPeriods(conn))
	unrated := usageapi.NewUnrated(usagedb.NewUnrated(conn), a.pages)
	a.handle("GET /v1/charges", auth.ScopeBillingRead, ratelimit.Admin, charges)
	a.handle("GET /v1/service-contracts/{id}/charges", auth.ScopeBillingRead, ratelimit.Admin,
		usageapi.NewContractCharges(usagedb.NewContractCharges(conn), catalogStore.Replica(), nil))
	a.handle("GET /v1/usage/unrated", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(unrated.ServeSearch))
	a.handle("GET /v1/usage/unrated/count", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(unrated.ServeCount))
	duplicates := usageapi.NewDuplicates(usagedb.NewDuplicates(conn), a.pages)
	a.handle("GET /v1/usage/duplicates", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(duplicates.ServeSearch))
	a.handle("GET /v1/usage/duplicates/count", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(duplicates.ServeCount))
	stored := usagedb.NewRecords(conn)
	records := usageapi.NewRecords(stored, a.pages)
	a.handle("GET /v1/usage", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(records.ServeSearch))
	a.handle("GET /v1/usage/count", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(records.ServeCount))
	a.handle("GET /v1/usage/{usageId}", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(records.ServeGet))
	corrector := corrections.NewService(stored, corrections.NewPeriods(conn), producer, a.s.reg)
	for _, action := range []string{schemas.ActionInvalidate, schemas.ActionCancel} {
		a.handleWrite("POST /v1/usage/{usageId}/"+action, auth.ScopeUsageWrite, corrector.ServeOne(action))
		a.handleWrite("POST /v1/usage/"+action, auth.ScopeUsageWrite, corrector.ServeBulk(action))
	}
	clientAPI := clients.New(a.store, a.pages)
	a.handle("GET /v1/clients", auth.ScopeAdmin, ratelimit.Admin, http.HandlerFunc(clientAPI.List))
	a.handle("GET /v1/clients/count", auth.ScopeAdmin, ratelimit.Admin, http.HandlerFunc(clientAPI.Count))
	a.handle("GET /v1/clients/{clientId}", auth.ScopeAdmin, ratelimit.Admin, http.HandlerFunc(clientAPI.Get))
	a.handleWrite("POST /v1/clients", auth.ScopeAdmin, http.HandlerFunc(clientAPI.Create))
	a.handleWrite("POST /v1/clients/{clientId}/revoke", auth.ScopeAdmin, http.HandlerFunc(clientAPI.Revoke))
	// The catalogue, customers, groups and contracts: the same operations for
	// every kind (catalogapi.Routes).
	for _, rt := range catalogapi.New(catalogStore, a.pages, a.s.log).Routes() {
		if rt.Write {
			a.handleWrite(rt.Pattern(), rt.Scope, rt.Handler)
		} else {
			a.handle(rt.Pattern(), rt.Scope, ratelimit.Admin, rt.Handler)
		}
	}
}
