package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	adminbilling "github.com/kakin-dev/kakin/admin/billing"
	"github.com/kakin-dev/kakin/admin/corrections"
	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/billing/run"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/ratelimit"
	"github.com/kakin-dev/kakin/tenants"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

// mountBilling mounts the receivable routes of the admin role, registers
// the billing-run job kind on the process's job runner and runs the
// automatic billing runs (run.Auto).
func (a *App) mountBilling() {
	svc := NewBillingService(a.ch, a.rdb, a.replica, a.log, a.reg, BillingWatermark(a.cfg))
	r := a.api
	for _, rt := range adminbilling.New(billingdb.New(a.ch), svc, a.jobStore, a.runner.Wake, r.pages, a.log).
		WithMembers(groupMembers(a.replica)).Routes() {
		if rt.Write {
			r.handleWrite(rt.Pattern(), rt.Scope, rt.Handler)
		} else {
			r.handle(rt.Pattern(), rt.Scope, ratelimit.Admin, rt.Handler)
		}
	}
	a.runner.Register(run.Kind, run.NewJob(svc))
	a.runner.Register(run.CloseKind, run.NewCloseJob(svc))
	a.group.Go("billing-auto-runs", run.NewAuto(svc, run.AutoOptions{Jobs: a.jobStore, Wake: a.runner.Wake, Tenants: a.replica.Tenants,
		Grace: tenants.NewStore(a.ch).BillingGrace}).Loop)
}

// NewBillingService is the rating batch over conn and rdb with the
// catalogues of replica: the admin role's and `kakin billing`'s. wm, when
// not nil, is the pipeline every run and close waits for.
func NewBillingService(conn driver.Conn, rdb *redis.Client, replica *catalogstore.Replica, log *slog.Logger, reg prometheus.Registerer,
	wm *run.Watermark) *run.Service {
	return run.New(run.Options{Store: billingdb.New(conn), Records: usagedb.NewRecords(conn), Catalogues: replica,
		Periods: corrections.NewPeriods(conn), Redis: rdb, Log: log, Registerer: reg,
		MaxLines: detailLineLimit(tenants.NewStore(conn)), Members: groupMembers(replica), Watermark: wm})
}

// BillingWatermark is the wait of billing runs and closes for the
// pipeline's consumer groups (run.PipelineSteps) on cfg's brokers.
func BillingWatermark(cfg Config) *run.Watermark {
	return &run.Watermark{Client: &kafka.Client{Addr: kafka.TCP(cfg.Kafka.BrokerList()...), Timeout: 10 * time.Second},
		Timeout: cfg.Admin.BillingWatermarkTimeout}
}

// groupMembers resolves a customer group from the catalogue replica.
func groupMembers(replica *catalogstore.Replica) func(tenant, group string) ([]string, bool) {
	return func(tenant, group string) ([]string, bool) {
		e, ok := replica.Get(tenant, catalogstore.KindGroup, group)
		if !ok || e.Deleted {
			return nil, false
		}
		g, ok := e.Value.(*catalog.Group)
		if !ok {
			return nil, false
		}
		return g.Members, true
	}
}

// catalogueLimits reads a tenant's customer and contract limits for the
// catalogue store.
func catalogueLimits(store *tenants.Store) catalogstore.DataLimitsFunc {
	return func(ctx context.Context, tenant string) (catalogstore.DataLimits, error) {
		l, err := store.DataLimits(ctx, tenant)
		if err != nil {
			return catalogstore.DataLimits{}, err
		}
		l = l.WithDefaults()
		return catalogstore.DataLimits{Customers: l.Customers, Contracts: l.Contracts}, nil
	}
}

// detailLineLimit reads a tenant's receivable detail-line limit for the
// billing run.
func detailLineLimit(store *tenants.Store) func(ctx context.Context, tenant string) (uint64, error) {
	return func(ctx context.Context, tenant string) (uint64, error) {
		l, err := store.DataLimits(ctx, tenant)
		if err != nil {
			return 0, err
		}
		return uint64(l.WithDefaults().DetailLines), nil
	}
}
