package app

import (
	"context"
	"fmt"
	"os"

	"github.com/kakin-dev/kakin/ingest"
	"github.com/kakin-dev/kakin/ingest/imports"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/ratelimit"
	"github.com/kakin-dev/kakin/schemas"
)

// initIngest mounts POST /v1/usage, which publishes to usage.raw, and the
// usage imports that publish through the same writer.
func (a *App) initIngest(context.Context) error {
	cfg := a.cfg.Ingest
	lim := ingest.Limits{MaxBodyBytes: cfg.MaxBodyBytes, MaxRecords: cfg.MaxRecords,
		MaxFutureSkew: cfg.MaxFutureSkew, MaxAge: a.cfg.Tenants.DedupeWindow}
	raw := a.writer(schemas.TopicRaw)
	h := ingest.NewHandler(raw, lim, a.metrics, a.log)
	h.LimitEvents(a.api.limiter.IngestLimiter())
	h.UseWindows(a.windows)
	a.api.handleSelfLimited("POST /v1/usage", auth.ScopeUsageWrite, h)
	return a.mountImports(raw, lim)
}

// mountImports mounts POST /v1/usage/imports and registers the import job
// kind (component "imports_spool_sweeper" removes spooled files of ended
// jobs).
func (a *App) mountImports(raw ingest.Producer, lim ingest.Limits) error {
	dir := a.cfg.Ingest.SpoolDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--import-dir: %w", err)
	}
	cfg := imports.Config{Dir: dir, MaxBytes: a.cfg.Ingest.MaxImportBytes, Producer: raw, Limits: lim,
		Limiter: a.api.limiter, Log: a.log, Metrics: imports.NewMetrics(a.reg)}
	importer := imports.NewImporter(cfg)
	a.runner.Register(imports.Kind, importer)
	a.group.Go("imports_spool_sweeper", func(ctx context.Context) error { return importer.RunSpoolSweeper(ctx, a.jobStore, 0) })
	a.api.handle("POST /v1/usage/imports", auth.ScopeUsageWrite, ratelimit.Ingest, imports.NewUploads(cfg, a.jobStore, a.runner.Wake))
	a.log.Info("usage imports enabled", "import_dir", dir, "max_import_bytes", a.cfg.Ingest.MaxImportBytes, "job_workers", a.cfg.Jobs.Workers)
	return nil
}
