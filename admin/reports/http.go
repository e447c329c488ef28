// Package reports serves asynchronous usage reports (spec 003):
// POST /v1/reports creates one (a job), GET /v1/reports/{reportId} answers
// its status and, once completed, a temporary signed download URL,
// GET /v1/reports lists them, DELETE /v1/reports/{reportId} removes one (its
// URL stops working at once), and GET /report-files/{reportId} serves the
// file to whoever holds a valid URL. The reports themselves are built by
// the reports package.
package reports

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/redislock"
	usagereports "github.com/kakin-dev/kakin/reports"
	"github.com/redis/go-redis/v9"
)

// Options configure the API.
type Options struct {
	Jobs    *jobs.Store
	DB      *usagereports.DB
	Handler *usagereports.Handler // the files' directory
	Signer  *usagereports.Signer
	Pages   *page.Codec
	Redis   redis.UniversalClient // serialises creation per report key
	Wake    func()                // a job was created
	// Now is the business clock the dates are checked against (default
	// clock.Now).
	Now func() time.Time
	Log *slog.Logger
}

// API serves the report routes.
type API struct{ o Options }

// New returns the report routes' handlers.
func New(o Options) *API {
	if o.Now == nil {
		o.Now = clock.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Wake == nil {
		o.Wake = func() {}
	}
	return &API{o: o}
}

// QueryParams lists the query parameters each report route understands.
var QueryParams = map[string][]string{
	"POST /v1/reports":              nil,
	"GET /v1/reports":               page.Params(listFilters...),
	"GET /v1/reports/{reportId}":    nil,
	"DELETE /v1/reports/{reportId}": nil,
}

// DownloadQueryParams are the query parameters of GET /report-files/{reportId}
// (the signed URL's).
var DownloadQueryParams = []string{"tenant", "expires", "signature"}

var listFilters = []string{"from", "to", "type", "sort"}

// The statuses a report shows (spec 003: in progress, completed, failed).
const (
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusFailed     = "failed"
)

// View is a report as the API shows it.
type View struct {
	ID                string     `json:"id"`
	Type              string     `json:"type"`
	From              string     `json:"from"`
	To                string     `json:"to"`
	Group             string     `json:"group,omitempty"`
	Format            string     `json:"format"`
	TimeZone          string     `json:"time_zone"`
	Status            string     `json:"status"`
	Rows              *int64     `json:"rows,omitempty"`
	Bytes             *int64     `json:"bytes,omitempty"`
	SHA256            string     `json:"sha256,omitempty"`
	Error             string     `json:"error,omitempty"`
	CreatedBy         string     `json:"created_by"`
	CreatedAt         time.Time  `json:"created_at"`
	FinishedAt        *time.Time `json:"finished_at,omitempty"`
	DownloadURL       string     `json:"download_url,omitempty"`
	DownloadExpiresAt *time.Time `json:"download_expires_at,omitempty"`
}

// Status maps a job status to a report status.
func Status(s jobs.Status) string {
	switch s {
	case jobs.StatusCompleted:
		return StatusCompleted
	case jobs.StatusFailed, jobs.StatusCancelled:
		return StatusFailed
	default:
		return StatusInProgress
	}
}

// Path is the API path of a report.
func Path(id string) string { return "/v1/reports/" + id }

func (a *API) view(r usagereports.Report, withURL bool) View {
	j := r.Job
	v := View{ID: j.ID, Type: string(r.Params.Type), From: r.Params.From, To: r.Params.To, Group: r.Params.Group,
		Format: string(r.Params.Format), TimeZone: r.Params.TimeZone, Status: Status(j.Status), Error: j.Error,
		CreatedBy: j.CreatedBy, CreatedAt: j.CreatedAt.UTC()}
	if j.Status == jobs.StatusCancelled && v.Error == "" {
		v.Error = "cancelled"
	}
	if !j.FinishedAt.IsZero() {
		at := j.FinishedAt.UTC()
		v.FinishedAt = &at
	}
	if j.Status == jobs.StatusCompleted {
		rows, bytes := r.Result.Rows, r.Result.Bytes
		v.Rows, v.Bytes, v.SHA256 = &rows, &bytes, r.Result.SHA256
		if withURL {
			u, exp := a.o.Signer.URL(j.Tenant, j.ID, time.Now())
			v.DownloadURL, v.DownloadExpiresAt = u, &exp
		}
	}
	return v
}

func (a *API) failed(w http.ResponseWriter, r *http.Request, err error) {
	a.o.Log.Error("reports: request failed", "request_id", httpapi.RequestID(r.Context()), "err", err)
	httpapi.RetryAfter(w, 2*time.Second)
	httpapi.WriteProblem(w, http.StatusServiceUnavailable, "storage_unavailable", "the report store did not answer; retry later")
}

func notFound(w http.ResponseWriter) {
	httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no such report in this tenant")
}

// load reads the tenant's report named by the path, or answers 404 (also for
// another tenant's, a deleted one, or a job of another kind).
func (a *API) load(w http.ResponseWriter, r *http.Request, ten string) (usagereports.Report, bool) {
	id := r.PathValue("reportId")
	if !jobs.ValidID(id) {
		notFound(w)
		return usagereports.Report{}, false
	}
	rep, found, err := a.get(r.Context(), ten, id)
	if err != nil {
		a.failed(w, r, err)
		return rep, false
	}
	if !found {
		notFound(w)
		return rep, false
	}
	return rep, true
}

func (a *API) get(ctx context.Context, ten, id string) (usagereports.Report, bool, error) {
	j, err := a.o.Jobs.Get(ctx, ten, id)
	if errors.Is(err, jobs.ErrNotFound) {
		return usagereports.Report{}, false, nil
	}
	if err != nil {
		return usagereports.Report{}, false, err
	}
	if j.Kind != usagereports.Kind {
		return usagereports.Report{}, false, nil
	}
	deleted, err := a.o.DB.Deleted(ctx, ten, id)
	if err != nil || deleted {
		return usagereports.Report{}, false, err
	}
	rep, err := usagereports.FromJob(j)
	return rep, err == nil, err
}

// Create serves POST /v1/reports: 202 with the report (in progress) and
// Location; 409 report_exists while a completed report of the same type and
// period (and group and time zone) exists; 422 naming each invalid field.
func (a *API) Create(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok || !httpapi.KnownQuery(w, r) {
		return
	}
	var p usagereports.Params
	if !httpapi.DecodeStrict(w, r, &p, false) {
		return
	}
	p.Normalize()
	if errs := p.Validate(a.o.Now()); len(errs) > 0 {
		httpapi.WriteProblem(w, http.StatusUnprocessableEntity, "invalid_request", "the report request is invalid", errs...)
		return
	}
	ctx := r.Context()
	// One creation per report key at a time across processes: the check for
	// an existing report and the creation must not interleave.
	sum := sha256.Sum256([]byte(p.Key()))
	lock, err := redislock.Acquire(ctx, a.o.Redis, "report:create:{"+ten+"}:"+hex.EncodeToString(sum[:12]), jobs.NewID(), 15*time.Second, 10*time.Second)
	if err != nil {
		a.failed(w, r, fmt.Errorf("report creation lock: %w", err))
		return
	}
	defer func() { _ = lock.Release(context.WithoutCancel(ctx)) }()
	existing, err := usagereports.Reports(ctx, a.o.Jobs, a.o.DB, ten)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	for _, e := range existing {
		if e.Params.Key() == p.Key() && e.Job.Status == jobs.StatusCompleted {
			httpapi.WriteProblem(w, http.StatusConflict, "report_exists",
				fmt.Sprintf("report %s already covers this type and period; delete it (DELETE %s) before generating it again", e.Job.ID, Path(e.Job.ID)))
			return
		}
	}
	principal, _ := auth.FromContext(ctx)
	pj, _ := json.Marshal(p)
	j, err := a.o.Jobs.Create(ctx, jobs.Job{Tenant: ten, ID: jobs.NewID(), Kind: usagereports.Kind, Params: pj, CreatedBy: principal.ClientID})
	if err != nil {
		a.failed(w, r, err)
		return
	}
	a.o.Wake()
	rep, _ := usagereports.FromJob(j)
	w.Header().Set("Location", Path(j.ID))
	httpapi.WriteJSON(w, http.StatusAccepted, a.view(rep, false))
}

// Get serves GET /v1/reports/{reportId}.
func (a *API) Get(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok || !httpapi.KnownQuery(w, r) {
		return
	}
	rep, ok := a.load(w, r, ten)
	if !ok {
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, a.view(rep, true))
}

// Delete serves DELETE /v1/reports/{reportId}: the report disappears, its
// file is removed and its download URLs stop working at once; a report
// still in progress is cancelled. 204.
func (a *API) Delete(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok || !httpapi.KnownQuery(w, r) {
		return
	}
	rep, ok := a.load(w, r, ten)
	if !ok {
		return
	}
	principal, _ := auth.FromContext(r.Context())
	if err := a.o.DB.Delete(r.Context(), ten, rep.Job.ID, principal.ClientID); err != nil {
		a.failed(w, r, err)
		return
	}
	if !rep.Job.Status.Final() {
		if err := a.o.Jobs.RequestCancel(r.Context(), ten, rep.Job.ID, principal.ClientID); err != nil {
			a.o.Log.Warn("reports: cancel of a deleted report not recorded; its run removes its file when it ends", "report", rep.Job.ID, "err", err)
		}
	}
	if err := usagereports.RemoveFile(a.o.Handler.Dir(), ten, rep.Job.ID); err != nil {
		a.o.Log.Warn("reports: file of a deleted report not removed", "report", rep.Job.ID, "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
}

// Page is the list body before API version 2027-01-01.
type Page struct {
	Reports  []View `json:"reports"`
	NextPage string `json:"nextPage,omitempty"`
}

// sortKey is a report's position in a list sorted by field.
func sortKey(rep usagereports.Report, field string) string {
	if field == "from" {
		return rep.Params.From
	}
	return fmt.Sprintf("%020d", rep.Job.CreatedAt.Unix())
}

// List serves GET /v1/reports: filters from (reports whose period ends on
// or after it), to (whose period starts on or before it) and type; sort
// created_at, -created_at (default, newest first), from or -from.
func (a *API) List(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	errs := httpapi.UnknownQuery(q, QueryParams["GET /v1/reports"]...)
	var from, to catalog.Date
	for _, f := range []struct {
		name string
		d    *catalog.Date
	}{{"from", &from}, {"to", &to}} {
		if s := q.Get(f.name); s != "" {
			d, err := catalog.ParseDate(s)
			if err != nil || d.String() != s {
				errs = append(errs, httpapi.FieldError{Field: f.name, Reason: "must be a date YYYY-MM-DD"})
			}
			*f.d = d
		}
	}
	typ := usagereports.Type(q.Get("type"))
	if typ != "" && !typ.Valid() {
		errs = append(errs, httpapi.FieldError{Field: "type", Reason: "must be one of partner, customer, user"})
	}
	sortBy := q.Get("sort")
	if sortBy == "" {
		sortBy = "-created_at"
	}
	field, desc := strings.TrimPrefix(sortBy, "-"), strings.HasPrefix(sortBy, "-")
	if field != "created_at" && field != "from" {
		errs = append(errs, httpapi.FieldError{Field: "sort", Reason: "must be one of created_at, -created_at, from, -from"})
	}
	req, perrs := a.o.Pages.Parse(q, page.Scope(ten, "reports", q.Get("from"), q.Get("to"), string(typ), sortBy))
	if errs = append(errs, perrs...); len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	all, err := usagereports.Reports(r.Context(), a.o.Jobs, a.o.DB, ten)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	var list []usagereports.Report
	for _, rep := range all {
		if typ != "" && rep.Params.Type != typ {
			continue
		}
		if !from.IsZero() && rep.Params.To < from.String() {
			continue
		}
		if !to.IsZero() && rep.Params.From > to.String() {
			continue
		}
		list = append(list, rep)
	}
	cmp := func(ka, ia, kb, ib string) int {
		c := strings.Compare(ka, kb)
		if c == 0 {
			c = strings.Compare(ia, ib)
		}
		if desc {
			c = -c
		}
		return c
	}
	slices.SortFunc(list, func(x, y usagereports.Report) int {
		return cmp(sortKey(x, field), x.Job.ID, sortKey(y, field), y.Job.ID)
	})
	if len(req.After) == 2 {
		i := 0
		for i < len(list) && cmp(sortKey(list[i], field), list[i].Job.ID, req.After[0], req.After[1]) <= 0 {
			i++
		}
		list = list[i:]
	}
	more := len(list) > req.Size
	if more {
		list = list[:req.Size]
	}
	views := make([]View, 0, len(list))
	for _, rep := range list {
		views = append(views, a.view(rep, false))
	}
	var next string
	if more {
		last := list[len(list)-1]
		next = a.o.Pages.Next(req, true, sortKey(last, field), last.Job.ID)
	}
	httpapi.WriteList(w, r, views, next, Page{Reports: views, NextPage: next})
}

// Download serves GET /report-files/{reportId}?tenant=&expires=&signature=:
// the file of a completed report, to whoever holds a URL that GET
// /v1/reports/{reportId} signed and that has not expired. A deleted report's
// URL answers 404 at once.
func (a *API) Download(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if errs := httpapi.UnknownQuery(q, DownloadQueryParams...); len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	ten, id := q.Get("tenant"), r.PathValue("reportId")
	switch err := a.o.Signer.Check(ten, id, q.Get("expires"), q.Get("signature"), time.Now()); {
	case errors.Is(err, usagereports.ErrExpired):
		httpapi.WriteProblem(w, http.StatusForbidden, "url_expired", "the download URL has expired; get the report again for a fresh one")
		return
	case err != nil:
		httpapi.WriteProblem(w, http.StatusForbidden, "invalid_signature", "the download URL is not valid")
		return
	}
	rep, ok := a.load(w, r, ten)
	if !ok {
		return
	}
	if rep.Job.Status != jobs.StatusCompleted {
		notFound(w)
		return
	}
	f, err := a.o.Handler.Open(rep)
	if errors.Is(err, usagereports.ErrNoFile) {
		notFound(w)
		return
	}
	if err != nil {
		a.failed(w, r, err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", rep.Params.Format.ContentType())
	w.Header().Set("Content-Disposition", `attachment; filename="`+rep.Job.ID+"."+rep.Params.Format.Ext()+`"`)
	w.Header().Set("Cache-Control", "private, no-store")
	if rep.Result.SHA256 != "" {
		w.Header().Set("ETag", strconv.Quote(rep.Result.SHA256))
	}
	http.ServeContent(w, r, "", rep.Job.FinishedAt, f)
}
