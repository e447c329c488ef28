package usage

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/usagedb"
)

// Duplicates serves the search and count of the usage records flagged as
// repeats of an earlier record with the same id.
type Duplicates struct {
	duplicates *usagedb.Duplicates
	pages      *page.Codec
}

// NewDuplicates returns the duplicates routes over duplicates.
func NewDuplicates(duplicates *usagedb.Duplicates, pages *page.Codec) *Duplicates {
	return &Duplicates{duplicates: duplicates, pages: pages}
}

// DuplicatePage is the body of GET /v1/usage/duplicates before API version
// 2027-01-01 (httpapi.WriteList).
type DuplicatePage struct {
	Records  []usagedb.DuplicateRecord `json:"records"`
	NextPage string                    `json:"nextPage,omitempty"`
}

func parseDuplicateFilter(q url.Values) (usagedb.DuplicateFilter, []httpapi.FieldError) {
	uf, errs := parseUsageFilter(q)
	f := usagedb.DuplicateFilter{UsageFilter: uf}
	switch v := q.Get("payload_differs"); v {
	case "":
	case "true", "false":
		b := v == "true"
		f.PayloadDiffers = &b
	default:
		errs = append(errs, httpapi.FieldError{Field: "payload_differs", Reason: "must be true or false"})
	}
	return f, errs
}

// ServeSearch serves GET /v1/usage/duplicates.
func (d *Duplicates) ServeSearch(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f, errs := parseSearch(q, duplicateFilters, parseDuplicateFilter)
	req, perrs := d.pages.Parse(q, page.Scope(ten, "usage/duplicates", f.Customer, f.Element, q.Get("from"), q.Get("to"), q.Get("payload_differs")))
	if errs = append(errs, perrs...); len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	var after *usagedb.DuplicateKey
	if len(req.After) == 3 {
		p, err1 := strconv.ParseInt(req.After[1], 10, 32)
		o, err2 := strconv.ParseInt(req.After[2], 10, 64)
		if err1 == nil && err2 == nil {
			after = &usagedb.DuplicateKey{ID: req.After[0], Partition: int32(p), Offset: o}
		}
	}
	recs, more, err := d.duplicates.Search(r.Context(), ten, f, after, req.Size)
	if err != nil {
		queryFailed(w, r, err)
		return
	}
	var nextPage string
	if more {
		last := recs[len(recs)-1]
		nextPage = d.pages.Next(req, true, last.ID, strconv.Itoa(int(last.Position.Partition)), strconv.FormatInt(last.Position.Offset, 10))
	}
	httpapi.WriteList(w, r, recs, nextPage, DuplicatePage{Records: recs, NextPage: nextPage})
}

// ServeCount serves GET /v1/usage/duplicates/count.
func (d *Duplicates) ServeCount(w http.ResponseWriter, r *http.Request) {
	serveCount(w, r, duplicateFilters, parseDuplicateFilter, d.duplicates.Count)
}
