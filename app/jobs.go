package app

import (
	"context"
	"net/http"

	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/ratelimit"
)

// initJobs starts the process's job runner (component "jobs"), shared by
// every job kind: the ingest role registers usage imports, the admin role
// re-rates. It mounts the job routes: an uploader polls its import where
// it uploaded it, or on an admin process.
func (a *App) initJobs(context.Context) error {
	a.jobStore = jobs.NewStore(a.ch)
	a.runner = jobs.NewRunner(jobs.Options{Store: a.jobStore, Redis: a.rdb, LeaseTTL: a.cfg.Jobs.Lease,
		Workers: a.cfg.Jobs.Workers, Log: a.log, Registerer: a.reg})
	a.group.Go("jobs", a.runner.Run)

	api := jobs.NewAPI(a.jobStore, a.api.pages, a.log)
	a.api.handle("GET /v1/jobs", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(api.List))
	a.api.handle("GET /v1/jobs/count", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(api.Count))
	a.api.handle("GET /v1/jobs/{jobId}", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(api.Get))
	a.api.handle("GET /v1/jobs/{jobId}/errors", auth.ScopeUsageRead, ratelimit.Admin, http.HandlerFunc(api.Errors))
	a.api.handleWrite("POST /v1/jobs/{jobId}/cancel", auth.ScopeUsageWrite, http.HandlerFunc(api.Cancel))
	return nil
}
