package jobs

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
)

// API serves the job routes: get, list, count, error report, cancel.
type API struct {
	store *Store
	pages *page.Codec
	log   *slog.Logger
}

// NewAPI returns the job routes' handlers.
func NewAPI(store *Store, pages *page.Codec, log *slog.Logger) *API {
	return &API{store: store, pages: pages, log: log}
}

// View is a job as the API shows it.
type View struct {
	ID              string          `json:"id"`
	Kind            string          `json:"kind"`
	Status          Status          `json:"status"`
	Params          json.RawMessage `json:"params"`
	Total           uint64          `json:"total"`
	Processed       uint64          `json:"processed"`
	Accepted        uint64          `json:"accepted"`
	Rejected        uint64          `json:"rejected"`
	Error           string          `json:"error,omitempty"`
	CancelRequested bool            `json:"cancel_requested"`
	Attempts        uint32          `json:"attempts"`
	CreatedBy       string          `json:"created_by"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
	FinishedAt      *time.Time      `json:"finished_at,omitempty"`
	ErrorsURL       string          `json:"errors_url"`
}

// Path is the API path of a job.
func Path(id string) string { return "/v1/jobs/" + id }

// NewView renders j; cancelRequested comes from Store.CancelRequested.
func NewView(j Job, cancelRequested bool) View {
	v := View{ID: j.ID, Kind: j.Kind, Status: j.Status, Params: j.Params, Total: j.Total, Processed: j.Processed,
		Accepted: j.Accepted, Rejected: j.Rejected, Error: j.Error, CancelRequested: cancelRequested, Attempts: j.Attempts,
		CreatedBy: j.CreatedBy, CreatedAt: j.CreatedAt.UTC(), UpdatedAt: j.UpdatedAt.UTC(), ErrorsURL: Path(j.ID) + "/errors"}
	if len(v.Params) == 0 {
		v.Params = json.RawMessage("{}")
	}
	if !j.FinishedAt.IsZero() {
		at := j.FinishedAt.UTC()
		v.FinishedAt = &at
	}
	return v
}

// Page is the body of GET /v1/jobs before API version 2027-01-01
// (httpapi.WriteList).
type Page struct {
	Jobs     []View `json:"jobs"`
	NextPage string `json:"nextPage,omitempty"`
}

func (a *API) failed(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("jobs: query failed", "request_id", httpapi.RequestID(r.Context()), "err", err)
	httpapi.RetryAfter(w, 2*time.Second)
	httpapi.WriteProblem(w, http.StatusServiceUnavailable, "storage_unavailable", "the job store did not answer; retry later")
}

// load reads the job named by the path for the request's tenant, or answers
// 404 (also for another tenant's job: its existence is not revealed).
// It takes no query parameter: any is refused.
func (a *API) load(w http.ResponseWriter, r *http.Request) (Job, bool) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok || !httpapi.KnownQuery(w, r) {
		return Job{}, false
	}
	id := r.PathValue("jobId")
	if !ValidID(id) {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no such job in this tenant")
		return Job{}, false
	}
	j, err := a.store.Get(r.Context(), ten, id)
	if errors.Is(err, ErrNotFound) {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no such job in this tenant")
		return Job{}, false
	}
	if err != nil {
		a.failed(w, r, err)
		return Job{}, false
	}
	return j, true
}

// Get serves GET /v1/jobs/{jobId}.
func (a *API) Get(w http.ResponseWriter, r *http.Request) {
	j, ok := a.load(w, r)
	if !ok {
		return
	}
	cancel, err := a.store.CancelRequested(r.Context(), j.Tenant, j.ID)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, NewView(j, cancel))
}

// listFilters are the filters of GET /v1/jobs and its /count.
var listFilters = []string{"kind", "status"}

// QueryParams lists the query parameters each job route understands, by
// route; any other is refused (httpapi.UnknownQuery).
var QueryParams = map[string][]string{
	"GET /v1/jobs":                 page.Params(listFilters...),
	"GET /v1/jobs/count":           listFilters,
	"GET /v1/jobs/{jobId}":         nil,
	"GET /v1/jobs/{jobId}/errors":  nil,
	"POST /v1/jobs/{jobId}/cancel": nil,
}

// parseFilter reads the list filters, refusing query parameters other than
// them and known (pageSize and nextPage for the list).
func parseFilter(r *http.Request, known ...string) (Filter, []httpapi.FieldError) {
	q := r.URL.Query()
	f := Filter{Kind: q.Get("kind"), Status: Status(q.Get("status"))}
	errs := httpapi.UnknownQuery(q, append(slices.Clip(listFilters), known...)...)
	if f.Status != "" && !f.Status.Valid() {
		errs = append(errs, httpapi.FieldError{Field: "status", Reason: "must be one of pending, processing, completed, failed, cancelled"})
	}
	if len(f.Kind) > 64 {
		errs = append(errs, httpapi.FieldError{Field: "kind", Reason: "at most 64 characters"})
	}
	return f, errs
}

// List serves GET /v1/jobs: the tenant's jobs, newest first.
func (a *API) List(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	f, errs := parseFilter(r, page.Params()...)
	req, perrs := a.pages.Parse(r.URL.Query(), page.Scope(ten, "jobs", f.Kind, string(f.Status)))
	if errs = append(errs, perrs...); len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	var after *ListKey
	if len(req.After) == 2 {
		if sec, err := strconv.ParseInt(req.After[0], 10, 64); err == nil {
			after = &ListKey{CreatedAt: time.Unix(sec, 0).UTC(), ID: req.After[1]}
		}
	}
	list, err := a.store.List(r.Context(), ten, f, after, req.Size+1)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	more := len(list) > req.Size
	if more {
		list = list[:req.Size]
	}
	views := make([]View, 0, len(list))
	for _, j := range list {
		views = append(views, NewView(j, false))
	}
	var next string
	if more {
		last := list[len(list)-1]
		next = a.pages.Next(req, true, strconv.FormatInt(last.CreatedAt.Unix(), 10), last.ID)
	}
	httpapi.WriteList(w, r, views, next, Page{Jobs: views, NextPage: next})
}

// Count serves GET /v1/jobs/count.
func (a *API) Count(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	f, errs := parseFilter(r)
	if len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	n, err := a.store.Count(r.Context(), ten, f)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]uint64{"count": n})
}

// ErrorsCSVHeader is the header row of the CSV error report.
var ErrorsCSVHeader = []string{"line", "record_id", "field", "reason"}

// wantsNDJSON reports whether the Accept header prefers NDJSON to CSV.
func wantsNDJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/x-ndjson", "application/jsonl":
			return true
		case "text/csv":
			return false
		}
	}
	return false
}

// Errors serves GET /v1/jobs/{jobId}/errors: the per-line error report so
// far, streamed, as CSV with a header row (default) or NDJSON (Accept:
// application/x-ndjson).
func (a *API) Errors(w http.ResponseWriter, r *http.Request) {
	j, ok := a.load(w, r)
	if !ok {
		return
	}
	ndjson := wantsNDJSON(r.Header.Get("Accept"))
	bw := bufio.NewWriterSize(w, 64<<10)
	started := false
	start := func() {
		if started {
			return
		}
		started = true
		if ndjson {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Content-Disposition", `attachment; filename="`+j.ID+`-errors.ndjson"`)
		} else {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="`+j.ID+`-errors.csv"`)
		}
		w.WriteHeader(http.StatusOK)
	}
	cw := csv.NewWriter(bw)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if !ndjson {
		start()
		_ = cw.Write(ErrorsCSVHeader)
	}
	err := a.store.Errors(r.Context(), j.Tenant, j.ID, 0, func(e LineError) error {
		start()
		if ndjson {
			return enc.Encode(e)
		}
		return cw.Write([]string{strconv.FormatUint(e.Line, 10), e.RecordID, e.Field, e.Reason})
	})
	if err != nil && !started {
		a.failed(w, r, err)
		return
	}
	if err != nil {
		// The answer has begun: cut it short so the client sees an incomplete body.
		a.log.Error("jobs: error report cut short", "job", j.ID, "err", err)
		panic(http.ErrAbortHandler)
	}
	start()
	cw.Flush()
	_ = bw.Flush()
}

// Cancel serves POST /v1/jobs/{jobId}/cancel: it records the request; the
// job's run stops at its next checkpoint (an unstarted job is cancelled when
// a worker picks it up). 202 with the job; a job that is already final is
// left as it is and answered 200 with its final state.
func (a *API) Cancel(w http.ResponseWriter, r *http.Request) {
	j, ok := a.load(w, r)
	if !ok {
		return
	}
	if j.Status.Final() {
		cancel, err := a.store.CancelRequested(r.Context(), j.Tenant, j.ID)
		if err != nil {
			a.failed(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, NewView(j, cancel))
		return
	}
	by := ""
	if p, ok := auth.FromContext(r.Context()); ok {
		by = p.ClientID
	}
	if err := a.store.RequestCancel(r.Context(), j.Tenant, j.ID, by); err != nil {
		a.failed(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, NewView(j, true))
}
