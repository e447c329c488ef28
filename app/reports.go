package app

import (
	"fmt"
	"net/http"
	"os"

	reportsapi "github.com/kakin-dev/kakin/admin/reports"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/ratelimit"
	"github.com/kakin-dev/kakin/reports"
)

// mountReports mounts the usage report routes (spec 003) and registers the
// report job kind of the admin role; names come from the catalogue
// replica. A report file is downloaded by a signed URL.
func (a *App) mountReports() error {
	dir := a.cfg.Admin.ReportsDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--report-dir: %w", err)
	}
	db := reports.NewDB(a.ch)
	h := reports.NewHandler(db, a.replica, dir, a.log)
	a.runner.Register(reports.Kind, h)
	r := a.api
	api := reportsapi.New(reportsapi.Options{Jobs: a.jobStore, DB: db, Handler: h, Pages: r.pages, Redis: a.rdb,
		Signer: reports.NewSigner(r.keys.Derive("report downloads"), 0), Wake: a.runner.Wake, Log: a.log})
	r.handleWrite("POST /v1/reports", auth.ScopeBillingWrite, http.HandlerFunc(api.Create))
	r.handle("GET /v1/reports", auth.ScopeBillingRead, ratelimit.Admin, http.HandlerFunc(api.List))
	r.handle("GET /v1/reports/{reportId}", auth.ScopeBillingRead, ratelimit.Admin, http.HandlerFunc(api.Get))
	r.handleWrite("DELETE /v1/reports/{reportId}", auth.ScopeBillingWrite, http.HandlerFunc(api.Delete))
	// The signed URL is the credential: no token, no version header.
	a.mux.HandleFunc("GET "+reports.FilePath+"{reportId}", api.Download)
	a.log.Info("usage reports enabled", "report_dir", dir)
	return nil
}
