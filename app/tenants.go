package app

import (
	"context"

	"github.com/kakin-dev/kakin/tenants"
)

// initTenants opens the tenant registry: tenants, their limits and dedupe
// windows (the API checks a client's tenant and limits through it).
func (a *App) initTenants(context.Context) error {
	a.tenants = tenants.NewStore(a.ch)
	return nil
}

// initTenantWindows loads every tenant's dedupe window, for ingest (how old
// an event may be) and dedupe (how long its ids are remembered), and
// reloads them (component and readiness "tenant_windows").
func (a *App) initTenantWindows(context.Context) error {
	t := a.cfg.Tenants
	a.windows = tenants.NewWindows(a.tenants, t.DedupeWindow, t.Refresh, a.log, a.reg)
	a.group.Go("tenant_windows", a.windows.Run)
	a.group.Check("tenant_windows", a.windows.Ready)
	return nil
}
