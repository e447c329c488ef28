package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	reportsapi "github.com/kakin-dev/kakin/admin/reports"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/ratelimit"
	"github.com/kakin-dev/kakin/reports"
	"github.com/redis/go-redis/v9"
)

// reportDir is the directory report files are kept in.
func (c *config) reportDir() string {
	if c.ReportDir != "" {
		return c.ReportDir
	}
	return filepath.Join(os.TempDir(), "kakin-reports")
}

// registerReports mounts the usage report routes (spec 003) and runs report
// jobs in the admin role; names come from the catalogue replica.
func (s *server) registerReports(conn driver.Conn, redisClient func() *redis.Client, api *apiRoutes, cat reports.Catalogue) error {
	dir := s.cfg.reportDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--report-dir: %w", err)
	}
	store, db := jobs.NewStore(conn), reports.NewDB(conn)
	runner := s.jobRunner(store, redisClient())
	h := reports.NewHandler(db, cat, dir, s.log)
	runner.Register(reports.Kind, h)
	a := reportsapi.New(reportsapi.Options{Jobs: store, DB: db, Handler: h, Pages: api.pages, Redis: redisClient(),
		Signer: reports.NewSigner(api.keys.Derive("report downloads"), 0), Wake: runner.Wake, Log: s.log})
	api.handleWrite("POST /v1/reports", auth.ScopeBillingWrite, http.HandlerFunc(a.Create))
	api.handle("GET /v1/reports", auth.ScopeBillingRead, ratelimit.Admin, http.HandlerFunc(a.List))
	api.handle("GET /v1/reports/{reportId}", auth.ScopeBillingRead, ratelimit.Admin, http.HandlerFunc(a.Get))
	api.handleWrite("DELETE /v1/reports/{reportId}", auth.ScopeBillingWrite, http.HandlerFunc(a.Delete))
	// The signed URL is the credential: no token, no version header.
	s.mux.HandleFunc("GET "+reports.FilePath+"{reportId}", a.Download)
	s.log.Info("usage reports enabled", "report_dir", dir)
	return nil
}
