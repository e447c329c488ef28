package usage

import (
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/usagedb"
)

// Unrated serves the search and count of the records the pipeline could not
// price.
type Unrated struct {
	unrated *usagedb.Unrated
	pages   *page.Codec
}

// NewUnrated returns the unrated-records routes over unrated.
func NewUnrated(unrated *usagedb.Unrated, pages *page.Codec) *Unrated {
	return &Unrated{unrated: unrated, pages: pages}
}

// UnratedPage is the body of GET /v1/usage/unrated before API version
// 2027-01-01 (httpapi.WriteList).
type UnratedPage struct {
	Records  []usagedb.UnratedRecord `json:"records"`
	NextPage string                  `json:"nextPage,omitempty"`
}

// parseUnratedFilter reads the search filters from the query string.
func parseUnratedFilter(q url.Values) (usagedb.UnratedFilter, []httpapi.FieldError) {
	f, errs := parseUsageFilter(q)
	return usagedb.UnratedFilter{UsageFilter: f, Reason: q.Get("reason")}, errs
}

// ServeSearch serves GET /v1/usage/unrated.
func (u *Unrated) ServeSearch(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f, errs := parseSearch(q, unratedFilters, parseUnratedFilter)
	req, perrs := u.pages.Parse(q, page.Scope(ten, "usage/unrated", f.Customer, f.Element, f.Reason, q.Get("from"), q.Get("to")))
	if errs = append(errs, perrs...); len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	after := ""
	if len(req.After) == 1 {
		after = req.After[0]
	}
	recs, more, err := u.unrated.Search(r.Context(), ten, f, after, req.Size)
	if err != nil {
		queryFailed(w, r, err)
		return
	}
	var nextPage string
	if more {
		nextPage = u.pages.Next(req, true, recs[len(recs)-1].ID)
	}
	httpapi.WriteList(w, r, recs, nextPage, UnratedPage{Records: recs, NextPage: nextPage})
}

// ServeCount serves GET /v1/usage/unrated/count.
func (u *Unrated) ServeCount(w http.ResponseWriter, r *http.Request) {
	serveCount(w, r, unratedFilters, parseUnratedFilter, u.unrated.Count)
}

// queryFailed answers 503 without exposing the database's error text, which
// is logged with the request id instead.
func queryFailed(w http.ResponseWriter, r *http.Request, err error) {
	slog.ErrorContext(r.Context(), "query failed", "path", r.URL.Path, "request_id", httpapi.RequestID(r.Context()), "err", err)
	httpapi.RetryAfter(w, time.Second)
	httpapi.WriteProblem(w, http.StatusServiceUnavailable, "query_failed",
		"the query could not be answered right now; retry (request id "+httpapi.RequestID(r.Context())+")")
}
