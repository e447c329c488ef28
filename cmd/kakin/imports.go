package main

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/admin/corrections"
	"github.com/kakin-dev/kakin/admin/rerates"
	"github.com/kakin-dev/kakin/ingest"
	"github.com/kakin-dev/kakin/ingest/imports"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/ratelimit"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/redis/go-redis/v9"
)

// registerImports mounts POST /v1/usage/imports and runs the import jobs of
// the ingest role: they publish through the ingest handler's own writer.
func (s *server) registerImports(clickhouse func() (driver.Conn, error), redisClient func() *redis.Client,
	api *apiRoutes, raw ingest.Producer, lim ingest.Limits) error {
	conn, err := clickhouse()
	if err != nil {
		return err
	}
	dir := s.cfg.importDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--import-dir: %w", err)
	}
	store := jobs.NewStore(conn)
	runner := s.jobRunner(store, redisClient())
	cfg := imports.Config{Dir: dir, MaxBytes: s.cfg.MaxImportBytes, Producer: raw, Limits: lim,
		Limiter: api.limiter, Log: s.log, Metrics: imports.NewMetrics(s.reg)}
	importer := imports.NewImporter(cfg)
	runner.Register(imports.Kind, importer)
	s.addLoop("imports_spool_sweeper", func(ctx context.Context) error { return importer.RunSpoolSweeper(ctx, store, 0) })
	api.handle("POST /v1/usage/imports", auth.ScopeUsageWrite, ratelimit.Ingest, imports.NewUploads(cfg, store, runner.Wake))
	s.log.Info("usage imports enabled", "import_dir", dir, "max_import_bytes", s.cfg.MaxImportBytes, "job_workers", s.cfg.JobWorkers)
	return nil
}

// registerRerate mounts POST /v1/rerate and runs re-rate jobs in the admin
// role: they publish one request per customer to usage.accepted.
func (s *server) registerRerate(conn driver.Conn, redisClient func() *redis.Client, api *apiRoutes, producer rerates.Producer) {
	store := jobs.NewStore(conn)
	runner := s.jobRunner(store, redisClient())
	runner.Register(rerates.Kind, rerates.NewHandler(usagedb.NewRecords(conn), producer))
	api.handleWrite("POST /v1/rerate", auth.ScopeUsageWrite, rerates.NewRequests(store, runner.Wake).WithPeriods(corrections.NewPeriods(conn)))
}

// registerJobs mounts the job routes (ingest and admin roles: an uploader
// polls its import where it uploaded it, or on an admin process).
func (a *apiRoutes) registerJobs(conn driver.Conn) {
	api := jobs.NewAPI(jobs.NewStore(conn), a.pages, a.s.log)
	a.handle("GET /v1/jobs", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(api.List))
	a.handle("GET /v1/jobs/count", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(api.Count))
	a.handle("GET /v1/jobs/{jobId}", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(api.Get))
	a.handle("GET /v1/jobs/{jobId}/errors", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(api.Errors))
	a.handleWrite("POST /v1/jobs/{jobId}/cancel", auth.ScopeUsageWrite, http.HandlerFunc(api.Cancel))
}
