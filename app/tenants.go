package app

import (
	"context"

	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/tenantwindow"
)

// initTenantWindows loads every tenant's dedupe window, for ingest (how old
// an event may be) and dedupe (how long its ids are remembered), and
// reloads them (component and readiness "tenant_windows").
func (a *App) initTenantWindows(context.Context) error {
	t := a.cfg.Tenants
	a.windows = tenantwindow.New(auth.NewStore(a.ch), t.DedupeWindow, t.Refresh, a.log, a.reg)
	a.group.Go("tenant_windows", a.windows.Run)
	a.group.Check("tenant_windows", a.windows.Ready)
	return nil
}
