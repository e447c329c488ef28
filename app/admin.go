package app

import (
	"context"
	"fmt"

	"github.com/kakin-dev/kakin/admin/corrections"
	"github.com/kakin-dev/kakin/admin/rerates"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/vault"
	"github.com/kakin-dev/kakin/usagedb"
)

// initAdmin mounts the admin API (mountAdminRoutes): the catalogue and
// customers (their personal fields sealed with the master keys), usage
// queries, corrections published to Kafka, clients, re-rates run as jobs
// that publish one request per customer to usage.accepted, receivables and
// the rating batch (mountBilling), and usage reports (mountReports).
func (a *App) initAdmin(context.Context) error {
	cfg := a.cfg.Admin
	if a.cfg.API.DevInsecure {
		if _, err := vault.GenerateMasterKeyFile(cfg.MasterKeyFile); err != nil {
			return err
		}
	}
	master, err := vault.LoadMasterKeys(cfg.MasterKeyFile)
	if err != nil {
		return fmt.Errorf("customers' personal fields need a master key (create one with `kakin dev`, or see docs/ARCHITECTURE.md): %w", err)
	}
	store := catalogstore.NewStore(a.ch, a.rdb, a.replica, vault.New(a.ch, a.rdb, master),
		catalogstore.StoreOptions{Log: a.log, Registerer: a.reg, MaxFutureSkew: a.cfg.Ingest.MaxFutureSkew,
			DataLimits: catalogueLimits(a.tenants)})
	a.mountAdminRoutes(a.writer(""), store)

	a.runner.Register(rerates.Kind, rerates.NewHandler(usagedb.NewRecords(a.ch), a.writer("")))
	a.api.handleWrite("POST /v1/rerate", auth.ScopeUsageWrite, rerates.NewRequests(a.jobStore, a.runner.Wake).WithPeriods(corrections.NewPeriods(a.ch)))
	a.mountBilling()
	return a.mountReports()
}
