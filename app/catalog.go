package app

import (
	"context"

	"github.com/kakin-dev/kakin/catalog/catalogstore"
)

// initCatalogReplica starts the catalogue replica the rater and the admin
// API share (component "catalog_replica", readiness "catalog"). Without
// the admin role it holds no personal data (raters need none).
func (a *App) initCatalogReplica(context.Context) error {
	a.replica = catalogstore.NewReplica(a.ch, catalogstore.ReplicaOptions{PollInterval: a.cfg.Catalog.PollInterval,
		WithoutPII: !a.hasRole(Admin), Log: a.log, Registerer: a.reg})
	a.group.Go("catalog_replica", a.replica.Run)
	a.group.Check("catalog", a.replica.Healthy)
	return nil
}
