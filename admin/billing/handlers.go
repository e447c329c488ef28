package billing

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/billing/run"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// API serves the receivable routes.
type API struct {
	store *billingdb.Store
	svc   *run.Service
	jobs  *jobs.Store
	wake  func()
	pages *page.Codec
	log   *slog.Logger
	// members resolves a customer group (the catalogue replica's groups).
	members func(tenant, group string) ([]string, bool)
}

// WithMembers lets searches filter by customer group.
func (a *API) WithMembers(m func(tenant, group string) ([]string, bool)) *API {
	a.members = m
	return a
}

// New returns the routes; wake starts the job runner's scan at once.
func New(store *billingdb.Store, svc *run.Service, js *jobs.Store, wake func(), pages *page.Codec, log *slog.Logger) *API {
	if wake == nil {
		wake = func() {}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{store: store, svc: svc, jobs: js, wake: wake, pages: pages, log: log}
}

// Route is one route of the package.
type Route struct {
	Method, Path string
	Scope        auth.Scope
	Write        bool // a POST or DELETE: mounted with Idempotency-Key
	Handler      http.Handler
}

// Pattern is the route's ServeMux pattern.
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// receivableFilters are the receivable search's filters.
var receivableFilters = []string{"customer", "group", "basic_contract", "period", "status", "number", "min_total", "max_total",
	"issued_from", "issued_to"}

// QueryParams lists the query parameters each route understands (any other
// is refused, httpapi.UnknownQuery).
var QueryParams = map[string][]string{
	"POST /v1/billing-runs":                       nil,
	"GET /v1/billing-runs/{runId}":                nil,
	"GET /v1/billing-runs/{runId}/reconciliation": {"outcome", "format"},
	"GET /v1/receivables":                         page.Params(receivableFilters...),
	"GET /v1/receivables/count":                   receivableFilters,
	"GET /v1/receivables/preview":                 {"customer", "basic_contract", "period"},
	"GET /v1/receivables/{receivableId}":          nil,
	"GET /v1/receivables/{receivableId}/lines":    page.Params(),
	"DELETE /v1/receivables/{receivableId}":       nil,
	"POST /v1/billing-periods/{period}/close":     nil,
	"POST /v1/billing-closes":                     nil,
	"GET /v1/billing-closes/{closeId}":            nil,
	"POST /v1/billing-periods/{period}/reopen":    nil,
	"PUT /v1/billing-settings":                    nil,
	"GET /v1/billing-settings":                    nil,
}

// Routes lists the package's routes.
func (a *API) Routes() []Route {
	return []Route{
		{"POST", "/v1/billing-runs", auth.ScopeAdmin, true, http.HandlerFunc(a.CreateRun)},
		{"GET", "/v1/billing-runs/{runId}", auth.ScopeBillingRead, false, http.HandlerFunc(a.GetRun)},
		{"GET", "/v1/billing-runs/{runId}/reconciliation", auth.ScopeBillingRead, false, http.HandlerFunc(a.Reconciliation)},
		{"GET", "/v1/receivables", auth.ScopeBillingRead, false, http.HandlerFunc(a.Search)},
		{"GET", "/v1/receivables/count", auth.ScopeBillingRead, false, http.HandlerFunc(a.Count)},
		{"GET", "/v1/receivables/preview", auth.ScopeBillingRead, false, http.HandlerFunc(a.Preview)},
		{"GET", "/v1/receivables/{receivableId}", auth.ScopeBillingRead, false, http.HandlerFunc(a.Get)},
		{"GET", "/v1/receivables/{receivableId}/lines", auth.ScopeBillingRead, false, http.HandlerFunc(a.Lines)},
		{"DELETE", "/v1/receivables/{receivableId}", auth.ScopeAdmin, true, http.HandlerFunc(a.Delete)},
		{"POST", "/v1/billing-periods/{period}/close", auth.ScopeAdmin, true, http.HandlerFunc(a.Close)},
		{"POST", "/v1/billing-closes", auth.ScopeAdmin, true, http.HandlerFunc(a.CreateClose)},
		{"GET", "/v1/billing-closes/{closeId}", auth.ScopeBillingRead, false, http.HandlerFunc(a.GetClose)},
		{"POST", "/v1/billing-periods/{period}/reopen", auth.ScopeAdmin, true, http.HandlerFunc(a.Reopen)},
		{"PUT", "/v1/billing-settings", auth.ScopeAdmin, true, http.HandlerFunc(a.PutSettings)},
		{"GET", "/v1/billing-settings", auth.ScopeBillingRead, false, http.HandlerFunc(a.GetSettings)},
	}
}

func (a *API) failed(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("billing: request failed", "path", r.URL.Path, "request_id", httpapi.RequestID(r.Context()), "error", err)
	httpapi.RetryAfter(w, 5*time.Second)
	httpapi.WriteProblem(w, http.StatusServiceUnavailable, "storage_unavailable", "the billing store could not answer; retry")
}

// serviceError answers the run service's client errors; others are 503.
func (a *API) serviceError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, run.ErrClosed):
		httpapi.WriteProblem(w, http.StatusConflict, "period_closed", err.Error())
	case errors.Is(err, run.ErrNotClosed):
		httpapi.WriteProblem(w, http.StatusConflict, "period_not_closed", err.Error())
	case errors.Is(err, run.ErrNotLatest):
		httpapi.WriteProblem(w, http.StatusConflict, "not_latest_closed_period", err.Error())
	case errors.Is(err, run.ErrNoSuchContract):
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, run.ErrNoCatalogue):
		httpapi.WriteProblem(w, http.StatusConflict, "no_catalogue", err.Error())
	case errors.Is(err, run.ErrLimit):
		httpapi.WriteProblem(w, http.StatusUnprocessableEntity, "limit_exceeded", err.Error(),
			httpapi.FieldError{Field: "receivable_detail_lines", Reason: err.Error()})
	case errors.Is(err, run.ErrLagging):
		httpapi.RetryAfter(w, time.Minute)
		httpapi.WriteProblem(w, http.StatusServiceUnavailable, "pipeline_behind", err.Error())
	case errors.Is(err, run.ErrAlreadyDeleted):
		httpapi.WriteProblem(w, http.StatusConflict, "already_deleted", err.Error())
	case errors.Is(err, run.ErrReasonRequired):
		httpapi.WriteProblem(w, http.StatusUnprocessableEntity, "invalid_request", err.Error(),
			httpapi.FieldError{Field: "reason", Reason: "is required to void a final receivable"})
	default:
		a.failed(w, r, err)
	}
}

func actor(ctx context.Context) string {
	if p, ok := auth.FromContext(ctx); ok {
		return p.ClientID
	}
	return ""
}

// RunView is a billing run: its job and, once it ran, its result.
type RunView struct {
	ID       string         `json:"id"`
	Period   string         `json:"period"`
	Customer string         `json:"customer,omitempty"`
	Status   string         `json:"status"`
	Job      jobs.View      `json:"job"`
	Result   *billingdb.Run `json:"result,omitempty"`
}

func runView(j jobs.Job, row *billingdb.Run) RunView {
	var p run.Params
	_ = json.Unmarshal(j.Params, &p)
	return RunView{ID: j.ID, Period: p.Period, Customer: p.Customer, Status: string(j.Status), Job: jobs.NewView(j, false), Result: row}
}

// RunPath is the path of a billing run.
func RunPath(id string) string { return "/v1/billing-runs/" + id }

// CreateRun serves POST /v1/billing-runs {period, customer?}: 202 with the
// run, which a job runs (GET /v1/billing-runs/{runId} or /v1/jobs/{id}).
func (a *API) CreateRun(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok || !httpapi.KnownQuery(w, r) {
		return
	}
	var p run.Params
	if !httpapi.DecodeStrict(w, r, &p, false) {
		return
	}
	var errs []httpapi.FieldError
	if _, err := pricing.ParsePeriod(p.Period); err != nil {
		errs = append(errs, httpapi.FieldError{Field: "period", Reason: periodFormat})
	}
	if p.Customer != "" && !schemas.ValidCode(p.Customer) {
		errs = append(errs, httpapi.FieldError{Field: "customer", Reason: "is not a customer id"})
	}
	if p.Group != "" && !schemas.ValidCode(p.Group) {
		errs = append(errs, httpapi.FieldError{Field: "group", Reason: "is not a group id"})
	}
	if len(errs) > 0 {
		httpapi.WriteProblem(w, http.StatusUnprocessableEntity, "invalid_request", "the billing run request is invalid", errs...)
		return
	}
	pj, _ := json.Marshal(p)
	j, err := a.jobs.Create(r.Context(), jobs.Job{Tenant: ten, ID: jobs.NewID(), Kind: run.Kind, Params: pj, CreatedBy: actor(r.Context())})
	if err != nil {
		a.failed(w, r, err)
		return
	}
	a.wake()
	w.Header().Set("Location", RunPath(j.ID))
	httpapi.WriteJSON(w, http.StatusAccepted, runView(j, nil))
}

// GetRun serves GET /v1/billing-runs/{runId}.
func (a *API) GetRun(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok || !httpapi.KnownQuery(w, r) {
		return
	}
	id := r.PathValue("runId")
	j, err := a.jobs.Get(r.Context(), ten, id)
	if errors.Is(err, jobs.ErrNotFound) || err == nil && j.Kind != run.Kind {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no such billing run in this tenant")
		return
	}
	if err != nil {
		a.failed(w, r, err)
		return
	}
	row, err := a.store.GetRun(r.Context(), ten, id)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, runView(j, row))
}

// ReconciliationCSVHeader is the header row of the CSV reconciliation.
var ReconciliationCSVHeader = []string{"customer", "charge_period", "item", "outcome", "batch_amount", "stream_amount"}

// Reconciliation serves GET /v1/billing-runs/{runId}/reconciliation: every
// charge key the run compared (outcome filters: match, differ,
// only_in_stream, only_in_batch), as JSON {items} or, with format=csv or
// Accept: text/csv, as CSV.
func (a *API) Reconciliation(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	errs := httpapi.UnknownQuery(q, QueryParams["GET /v1/billing-runs/{runId}/reconciliation"]...)
	outcome, format := q.Get("outcome"), q.Get("format")
	if outcome != "" && !slices.Contains([]string{billingdb.Match, billingdb.Differ, billingdb.OnlyInStream, billingdb.OnlyInBatch}, outcome) {
		errs = append(errs, httpapi.FieldError{Field: "outcome", Reason: "must be match, differ, only_in_stream or only_in_batch"})
	}
	if format != "" && format != "json" && format != "csv" {
		errs = append(errs, httpapi.FieldError{Field: "format", Reason: "must be json or csv"})
	}
	if len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	id := r.PathValue("runId")
	row, err := a.store.GetRun(r.Context(), ten, id)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	if row == nil {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no such billing run in this tenant, or it has not run yet")
		return
	}
	if format == "csv" || format == "" && strings.Contains(r.Header.Get("Accept"), "text/csv") {
		var diffs []billingdb.Diff
		if err := a.store.Reconciliation(r.Context(), ten, id, outcome, func(d billingdb.Diff) error {
			diffs = append(diffs, d)
			return nil
		}); err != nil {
			a.failed(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="reconciliation-`+id+`.csv"`)
		cw := csv.NewWriter(w)
		_ = cw.Write(ReconciliationCSVHeader)
		for _, d := range diffs {
			_ = cw.Write([]string{d.Customer, d.ChargePeriod, d.Item, d.Outcome, d.Batch.String(), d.Stream.String()})
		}
		cw.Flush()
		return
	}
	items := []billingdb.Diff{}
	if err := a.store.Reconciliation(r.Context(), ten, id, outcome, func(d billingdb.Diff) error {
		items = append(items, d)
		return nil
	}); err != nil {
		a.failed(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[billingdb.Diff]{Items: items})
}

// parseFilter reads the receivable search's filters.
func parseFilter(q url.Values) (billingdb.Filter, []httpapi.FieldError) {
	f := billingdb.Filter{Customer: q.Get("customer"), BasicContract: q.Get("basic_contract"), Period: q.Get("period"),
		Status: q.Get("status"), Number: q.Get("number")}
	var errs []httpapi.FieldError
	if f.Period != "" {
		if _, err := pricing.ParsePeriod(f.Period); err != nil {
			errs = append(errs, httpapi.FieldError{Field: "period", Reason: periodFormat})
		}
	}
	if f.Status != "" && !slices.Contains([]string{string(billing.StatusDraft), string(billing.StatusFinal),
		string(billing.StatusVoided), string(billing.StatusDiscarded)}, f.Status) {
		errs = append(errs, httpapi.FieldError{Field: "status", Reason: "must be draft, final, voided or discarded"})
	}
	for _, p := range []struct {
		name string
		dst  **decimal.Decimal
	}{{"min_total", &f.MinTotal}, {"max_total", &f.MaxTotal}} {
		if s := q.Get(p.name); s != "" {
			d, err := decimal.NewFromString(s)
			if err != nil || d.Exponent() < -9 || d.Abs().Cmp(decimal.New(1, 27)) >= 0 {
				errs = append(errs, httpapi.FieldError{Field: p.name, Reason: "must be a decimal amount"})
				continue
			}
			*p.dst = &d
		}
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"issued_from", &f.IssuedFrom}, {"issued_to", &f.IssuedTo}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				errs = append(errs, httpapi.FieldError{Field: p.name, Reason: "must be an RFC 3339 timestamp"})
				continue
			}
			*p.dst = &t
		}
	}
	return f, errs
}

// withGroup narrows f to a group's members: an unknown or empty group
// matches nothing (Customers holds the empty id, which no customer has).
func (a *API) withGroup(ten, group string, f *billingdb.Filter) {
	if group == "" {
		return
	}
	var members []string
	if a.members != nil {
		members, _ = a.members(ten, group)
	}
	if len(members) == 0 {
		members = []string{""}
	}
	f.Customers = members
}

// ReceivablePage is the body of GET /v1/receivables before API version
// 2027-01-01.
type ReceivablePage struct {
	Receivables []ReceivableView `json:"receivables"`
	NextPage    string           `json:"nextPage,omitempty"`
}

// Search serves GET /v1/receivables: filters customer, basic_contract,
// period, status, number, min_total, max_total (total, inclusive),
// issued_from (inclusive), issued_to (exclusive); ordered by period and id.
func (a *API) Search(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	errs := httpapi.UnknownQuery(q, page.Params(receivableFilters...)...)
	f, ferrs := parseFilter(q)
	scope := []string{}
	for _, k := range receivableFilters {
		scope = append(scope, q.Get(k))
	}
	preq, perrs := a.pages.Parse(q, page.Scope(ten, "receivables", scope...))
	if errs = append(append(errs, ferrs...), perrs...); len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	a.withGroup(ten, q.Get("group"), &f)
	var after *billingdb.Key
	if len(preq.After) == 2 {
		after = &billingdb.Key{Period: preq.After[0], ID: preq.After[1]}
	}
	recs, err := a.store.Search(r.Context(), ten, f, after, preq.Size+1)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	more := len(recs) > preq.Size
	if more {
		recs = recs[:preq.Size]
	}
	views := make([]ReceivableView, len(recs))
	for i, s := range recs {
		views[i] = NewReceivableView(s)
	}
	var next string
	if more {
		last := recs[len(recs)-1]
		next = a.pages.Next(preq, true, last.Period, last.ID)
	}
	httpapi.WriteList(w, r, views, next, ReceivablePage{Receivables: views, NextPage: next})
}

// Count serves GET /v1/receivables/count.
func (a *API) Count(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	errs := httpapi.UnknownQuery(q, receivableFilters...)
	f, ferrs := parseFilter(q)
	if errs = append(errs, ferrs...); len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	a.withGroup(ten, q.Get("group"), &f)
	n, err := a.store.Count(r.Context(), ten, f)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]uint64{"count": n})
}

func (a *API) receivable(w http.ResponseWriter, r *http.Request) (*billingdb.Stored, bool) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return nil, false
	}
	id := r.PathValue("receivableId")
	s, err := a.store.Get(r.Context(), ten, id)
	if err != nil {
		a.failed(w, r, err)
		return nil, false
	}
	if s == nil {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no such receivable in this tenant")
		return nil, false
	}
	return s, true
}

// Get serves GET /v1/receivables/{receivableId}.
func (a *API) Get(w http.ResponseWriter, r *http.Request) {
	if !httpapi.KnownQuery(w, r) {
		return
	}
	if s, ok := a.receivable(w, r); ok {
		httpapi.WriteJSON(w, http.StatusOK, NewReceivableView(s))
	}
}

// LinePage is the body of GET /v1/receivables/{id}/lines before API version
// 2027-01-01.
type LinePage struct {
	Lines    []LineView `json:"lines"`
	NextPage string     `json:"nextPage,omitempty"`
}

// Lines serves GET /v1/receivables/{receivableId}/lines, in the
// receivable's order, paged.
func (a *API) Lines(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	errs := httpapi.UnknownQuery(q, page.Params()...)
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	id := r.PathValue("receivableId")
	preq, perrs := a.pages.Parse(q, page.Scope(ten, "receivable-lines", id))
	if errs = append(errs, perrs...); len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	var after *billingdb.LineKey
	if len(preq.After) == 2 {
		if n, err := strconv.ParseUint(preq.After[0], 10, 32); err == nil {
			after = &billingdb.LineKey{Seq: uint32(n), ID: preq.After[1]}
		}
	}
	s, ls, err := a.store.GetWithLines(r.Context(), ten, id, after, preq.Size+1)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	if s == nil {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no such receivable in this tenant")
		return
	}
	more := len(ls) > preq.Size
	if more {
		ls = ls[:preq.Size]
	}
	views := make([]LineView, len(ls))
	for i, l := range ls {
		views[i] = NewLineView(s.Currency, l)
	}
	var next string
	if more {
		last := ls[len(ls)-1]
		next = a.pages.Next(preq, true, strconv.Itoa(last.Seq), last.ID)
	}
	httpapi.WriteList(w, r, views, next, LinePage{Lines: views, NextPage: next})
}

// reasonBody is the body of a delete or reopen.
type reasonBody struct {
	Reason string `json:"reason"`
}

// Delete serves DELETE /v1/receivables/{receivableId} (optional body
// {reason}): a draft is discarded; a final receivable is voided with the
// reason (required), kept, its number never reused.
func (a *API) Delete(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok || !httpapi.KnownQuery(w, r) {
		return
	}
	var b reasonBody
	if !httpapi.DecodeStrict(w, r, &b, true) {
		return
	}
	if len(b.Reason) > 1000 {
		httpapi.WriteProblem(w, http.StatusUnprocessableEntity, "invalid_request", "the reason is too long",
			httpapi.FieldError{Field: "reason", Reason: "at most 1000 characters"})
		return
	}
	id := r.PathValue("receivableId")
	s, err := a.svc.Delete(r.Context(), ten, id, b.Reason, actor(r.Context()))
	if err != nil {
		a.serviceError(w, r, err)
		return
	}
	if s == nil {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no such receivable in this tenant")
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, NewReceivableView(s))
}

// CloseView is the answer to a close.
type CloseView struct {
	Period      string `json:"period"`
	Finalised   uint64 `json:"finalised"`
	FirstNumber uint64 `json:"first_seq,omitempty"`
	LastNumber  uint64 `json:"last_seq,omitempty"`
	Receivables uint64 `json:"recomputed"`
	Frozen      uint64 `json:"already_final"`
}

// periodLabels are the billing period labels (pricing.ParsePeriod): a
// month, a day, or a week by its first day. A weekly label holds a '/', so
// in a URL path it is sent escaped: /v1/billing-periods/2019-03-04%2FP1W/close.
const periodLabels = "YYYY-MM, YYYY-MM-DD or YYYY-MM-DD/P1W"

// periodFormat is the reason given for a period that is not a label.
const periodFormat = "must be " + periodLabels

func pathPeriod(w http.ResponseWriter, r *http.Request) (string, bool) {
	p := r.PathValue("period")
	if _, err := pricing.ParsePeriod(p); err != nil {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no period "+p+" (want "+periodLabels+")")
		return "", false
	}
	return p, true
}

// Close serves POST /v1/billing-periods/{period}/close: the period is
// marked closed, its drafts recomputed once more and finalised with the
// tenant's next numbers. Safe to repeat: a second close finishes what is
// left and assigns nothing twice.
func (a *API) Close(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok || !httpapi.KnownQuery(w, r) {
		return
	}
	p, ok := pathPeriod(w, r)
	if !ok {
		return
	}
	res, err := a.svc.Close(r.Context(), ten, p, actor(r.Context()))
	if err != nil {
		a.serviceError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, CloseView{Period: p, Finalised: res.Finalised, FirstNumber: res.FirstSeq,
		LastNumber: res.LastSeq, Receivables: res.Run.Receivables, Frozen: res.Run.Frozen})
}

// CloseJobView is a period close run as a job: its job and, once it
// finished, what it did.
type CloseJobView struct {
	ID     string            `json:"id"`
	Period string            `json:"period"`
	Status string            `json:"status"`
	Job    jobs.View         `json:"job"`
	Result *run.CloseOutcome `json:"result,omitempty"`
}

func closeView(j jobs.Job) CloseJobView {
	var p run.CloseParams
	_ = json.Unmarshal(j.Params, &p)
	v := CloseJobView{ID: j.ID, Period: p.Period, Status: string(j.Status), Job: jobs.NewView(j, false)}
	if j.Status == jobs.StatusCompleted && len(j.Checkpoint) > 0 {
		var o run.CloseOutcome
		if json.Unmarshal(j.Checkpoint, &o) == nil {
			v.Result = &o
		}
	}
	return v
}

// ClosePath is the path of a close job.
func ClosePath(id string) string { return "/v1/billing-closes/" + id }

// CreateClose serves POST /v1/billing-closes {period}: 202 with the close,
// which a job runs (GET /v1/billing-closes/{closeId} or /v1/jobs/{id}); its
// result has the receivables finalised and the numbers given.
func (a *API) CreateClose(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok || !httpapi.KnownQuery(w, r) {
		return
	}
	var p run.CloseParams
	if !httpapi.DecodeStrict(w, r, &p, false) {
		return
	}
	if _, err := pricing.ParsePeriod(p.Period); err != nil {
		httpapi.WriteProblem(w, http.StatusUnprocessableEntity, "invalid_request", "the close request is invalid",
			httpapi.FieldError{Field: "period", Reason: periodFormat})
		return
	}
	pj, _ := json.Marshal(p)
	j, err := a.jobs.Create(r.Context(), jobs.Job{Tenant: ten, ID: jobs.NewID(), Kind: run.CloseKind, Params: pj, CreatedBy: actor(r.Context())})
	if err != nil {
		a.failed(w, r, err)
		return
	}
	a.wake()
	w.Header().Set("Location", ClosePath(j.ID))
	httpapi.WriteJSON(w, http.StatusAccepted, closeView(j))
}

// GetClose serves GET /v1/billing-closes/{closeId}.
func (a *API) GetClose(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok || !httpapi.KnownQuery(w, r) {
		return
	}
	j, err := a.jobs.Get(r.Context(), ten, r.PathValue("closeId"))
	if errors.Is(err, jobs.ErrNotFound) || err == nil && j.Kind != run.CloseKind {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no such billing close in this tenant")
		return
	}
	if err != nil {
		a.failed(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, closeView(j))
}

// Reopen serves POST /v1/billing-periods/{period}/reopen {reason}: only the
// tenant's latest closed period; its receivables become drafts and keep
// their numbers.
func (a *API) Reopen(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok || !httpapi.KnownQuery(w, r) {
		return
	}
	p, ok := pathPeriod(w, r)
	if !ok {
		return
	}
	var b reasonBody
	if !httpapi.DecodeStrict(w, r, &b, false) {
		return
	}
	if strings.TrimSpace(b.Reason) == "" || len(b.Reason) > 1000 {
		httpapi.WriteProblem(w, http.StatusUnprocessableEntity, "invalid_request", "a reopen needs a reason",
			httpapi.FieldError{Field: "reason", Reason: "is required (at most 1000 characters)"})
		return
	}
	n, err := a.svc.Reopen(r.Context(), ten, p, b.Reason, actor(r.Context()))
	if err != nil {
		a.serviceError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"period": p, "reopened": n})
}

// Settings are a tenant's billing settings.
type Settings struct {
	NumberFormat string `json:"number_format"`
}

// PutSettings serves PUT /v1/billing-settings {number_format}.
func (a *API) PutSettings(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok || !httpapi.KnownQuery(w, r) {
		return
	}
	var s Settings
	if !httpapi.DecodeStrict(w, r, &s, false) {
		return
	}
	if err := billing.CheckNumberFormat(s.NumberFormat); err != nil {
		httpapi.WriteProblem(w, http.StatusUnprocessableEntity, "invalid_request", "the number format is invalid",
			httpapi.FieldError{Field: "number_format", Reason: err.Error()})
		return
	}
	if err := a.store.SetNumberFormat(r.Context(), ten, s.NumberFormat, actor(r.Context()), time.Now()); err != nil {
		a.failed(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, s)
}

// GetSettings serves GET /v1/billing-settings.
func (a *API) GetSettings(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok || !httpapi.KnownQuery(w, r) {
		return
	}
	f, err := a.store.NumberFormat(r.Context(), ten)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	if f == "" {
		f = billing.DefaultNumberFormat
	}
	httpapi.WriteJSON(w, http.StatusOK, Settings{NumberFormat: f})
}

// PreviewView is a live draft: the receivable a billing run would write
// now, with its lines.
type PreviewView struct {
	ReceivableView
	LineItems []LineView `json:"line_items"`
}

// PreviewPage is the body of GET /v1/receivables/preview.
type PreviewPage struct {
	Items []PreviewView `json:"items"`
}

// Preview serves GET /v1/receivables/preview?customer=C[&basic_contract=B][&period=P]:
// the draft receivables of the customer's basic contracts (or of one) for
// the period (default: each basic contract's open period at the business
// clock), computed now by the billing run's own code path and stored
// nowhere, so they are what the run and the close will write if nothing
// else arrives (status "preview", revision 0). A closed period is 409
// period_closed (read its final receivables instead).
func (a *API) Preview(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	errs := httpapi.UnknownQuery(q, QueryParams["GET /v1/receivables/preview"]...)
	req := run.PreviewRequest{Tenant: ten, Customer: q.Get("customer"), BasicContract: q.Get("basic_contract"), Period: q.Get("period")}
	if req.Customer == "" && req.BasicContract == "" {
		errs = append(errs, httpapi.FieldError{Field: "customer", Reason: "name a customer or a basic_contract"})
	}
	for _, f := range []struct{ name, v string }{{"customer", req.Customer}, {"basic_contract", req.BasicContract}} {
		if len(f.v) > 128 {
			errs = append(errs, httpapi.FieldError{Field: f.name, Reason: "at most 128 characters"})
		}
	}
	if req.Period != "" {
		if _, err := pricing.ParsePeriod(req.Period); err != nil {
			errs = append(errs, httpapi.FieldError{Field: "period", Reason: periodFormat})
		}
	}
	if len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	drafts, err := a.svc.Preview(r.Context(), req)
	if err != nil {
		a.serviceError(w, r, err)
		return
	}
	out := PreviewPage{Items: []PreviewView{}}
	for _, d := range drafts {
		v := PreviewView{ReceivableView: NewReceivableView(&billingdb.Stored{Receivable: d, Status: "preview",
			LineCount: uint32(len(d.Lines))}), LineItems: make([]LineView, len(d.Lines))}
		for i, l := range d.Lines {
			v.LineItems[i] = NewLineView(d.Currency, l)
		}
		out.Items = append(out.Items, v)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}
