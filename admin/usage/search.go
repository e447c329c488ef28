package usage

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/usagedb"
)

// parseUsageFilter reads customer, element, from and to from the query.
func parseUsageFilter(q url.Values) (usagedb.UsageFilter, []httpapi.FieldError) {
	f := usagedb.UsageFilter{Customer: q.Get("customer"), Element: q.Get("element")}
	var errs []httpapi.FieldError
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				errs = append(errs, httpapi.FieldError{Field: p.name, Reason: "must be an RFC 3339 timestamp"})
			}
			*p.dst = t
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		errs = append(errs, httpapi.FieldError{Field: "to", Reason: "must be after from"})
	}
	return f, errs
}

// The query parameters of the package's routes: the filters of each search
// (its /count takes them alone, the search adds pageSize and nextPage).
// Any other parameter is refused (httpapi.UnknownQuery).
var (
	usageFilters     = []string{"customer", "element", "from", "to"}
	recordFilters    = append(slices.Clip(usageFilters), "id", "contract", "event_from", "event_to", "status")
	unratedFilters   = append(slices.Clip(usageFilters), "reason")
	duplicateFilters = append(slices.Clip(usageFilters), "payload_differs")
	chargesParams    = []string{"customer", "period", "contract"}
)

// QueryParams lists the query parameters each route of the package
// understands, by route (the OpenAPI document's tests compare them with
// what it documents).
var QueryParams = map[string][]string{
	"GET /v1/charges":                        chargesParams,
	"GET /v1/service-contracts/{id}/charges": ContractChargesParams,
	"GET /v1/usage":                          page.Params(recordFilters...),
	"GET /v1/usage/count":                    recordFilters,
	"GET /v1/usage/{usageId}":                nil,
	"GET /v1/usage/unrated":                  page.Params(unratedFilters...),
	"GET /v1/usage/unrated/count":            unratedFilters,
	"GET /v1/usage/duplicates":               page.Params(duplicateFilters...),
	"GET /v1/usage/duplicates/count":         duplicateFilters,
}

// parseSearch reads a search's filters (parse) and page from the query,
// refusing parameters other than filters, pageSize and nextPage.
func parseSearch[F any](q url.Values, filters []string, parse func(url.Values) (F, []httpapi.FieldError)) (F, []httpapi.FieldError) {
	errs := httpapi.UnknownQuery(q, page.Params(filters...)...)
	f, perrs := parse(q)
	return f, append(errs, perrs...)
}

// serveCount answers a search's /count: parse reads its filters, count runs it.
func serveCount[F any](w http.ResponseWriter, r *http.Request, filters []string, parse func(url.Values) (F, []httpapi.FieldError),
	count func(ctx context.Context, tenantID string, f F) (uint64, error)) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	errs := httpapi.UnknownQuery(q, filters...)
	f, perrs := parse(q)
	if errs = append(errs, perrs...); len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	n, err := count(r.Context(), ten, f)
	if err != nil {
		queryFailed(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]uint64{"count": n})
}
