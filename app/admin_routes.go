package app

import (
	"net/http"

	"github.com/kakin-dev/kakin/admin/catalogapi"
	"github.com/kakin-dev/kakin/admin/clients"
	"github.com/kakin-dev/kakin/admin/corrections"
	usageapi "github.com/kakin-dev/kakin/admin/usage"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/ratelimit"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
)

// mountAdminRoutes mounts the admin role's routes, one admin/ sub-package
// each; corrections of usage records are published with producer, the
// catalogue is kept in catalogStore.
func (a *App) mountAdminRoutes(producer corrections.Producer, catalogStore *catalogstore.Store) {
	r, conn := a.api, a.ch
	charges := usageapi.NewCharges(usagedb.NewCharges(conn)).WithPeriods(corrections.NewPeriods(conn))
	unrated := usageapi.NewUnrated(usagedb.NewUnrated(conn), r.pages)
	r.handle("GET /v1/charges", auth.ScopeBillingRead, ratelimit.Admin, charges)
	r.handle("GET /v1/service-contracts/{id}/charges", auth.ScopeBillingRead, ratelimit.Admin,
		usageapi.NewContractCharges(usagedb.NewContractCharges(conn), catalogStore.Replica(), nil))
	r.handle("GET /v1/usage/unrated", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(unrated.ServeSearch))
	r.handle("GET /v1/usage/unrated/count", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(unrated.ServeCount))
	duplicates := usageapi.NewDuplicates(usagedb.NewDuplicates(conn), r.pages)
	r.handle("GET /v1/usage/duplicates", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(duplicates.ServeSearch))
	r.handle("GET /v1/usage/duplicates/count", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(duplicates.ServeCount))
	stored := usagedb.NewRecords(conn)
	records := usageapi.NewRecords(stored, r.pages)
	r.handle("GET /v1/usage", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(records.ServeSearch))
	r.handle("GET /v1/usage/count", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(records.ServeCount))
	r.handle("GET /v1/usage/{usageId}", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(records.ServeGet))
	corrector := corrections.NewService(stored, corrections.NewPeriods(conn), producer, a.reg)
	for _, action := range []string{schemas.ActionInvalidate, schemas.ActionCancel} {
		r.handleWrite("POST /v1/usage/{usageId}/"+action, auth.ScopeUsageWrite, corrector.ServeOne(action))
		r.handleWrite("POST /v1/usage/"+action, auth.ScopeUsageWrite, corrector.ServeBulk(action))
	}
	clientAPI := clients.New(r.store, r.pages)
	r.handle("GET /v1/clients", auth.ScopeAdmin, ratelimit.Admin, http.HandlerFunc(clientAPI.List))
	r.handle("GET /v1/clients/count", auth.ScopeAdmin, ratelimit.Admin, http.HandlerFunc(clientAPI.Count))
	r.handle("GET /v1/clients/{clientId}", auth.ScopeAdmin, ratelimit.Admin, http.HandlerFunc(clientAPI.Get))
	r.handleWrite("POST /v1/clients", auth.ScopeAdmin, http.HandlerFunc(clientAPI.Create))
	r.handleWrite("POST /v1/clients/{clientId}/revoke", auth.ScopeAdmin, http.HandlerFunc(clientAPI.Revoke))
	// The catalogue, customers, groups and contracts: the same operations for
	// every kind (catalogapi.Routes).
	for _, rt := range catalogapi.New(catalogStore, r.pages, a.log).Routes() {
		if rt.Write {
			r.handleWrite(rt.Pattern(), rt.Scope, rt.Handler)
		} else {
			r.handle(rt.Pattern(), rt.Scope, ratelimit.Admin, rt.Handler)
		}
	}
}
