package usage

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/usagedb"
)

// Records serves the usage record search, count and detail.
type Records struct {
	records *usagedb.Records
	pages   *page.Codec
}

// NewRecords returns the usage record routes over records.
func NewRecords(records *usagedb.Records, pages *page.Codec) *Records {
	return &Records{records: records, pages: pages}
}

// recordStatuses are the values the status filter takes.
var recordStatuses = []string{usagedb.StatusRated, usagedb.StatusUnrated, usagedb.StatusPending, usagedb.StatusInvalid, usagedb.StatusDuplicate}

// UsageRecordPage is the body of GET /v1/usage before API version
// 2027-01-01 (httpapi.WriteList).
type UsageRecordPage struct {
	Records  []usagedb.UsageRecord `json:"records"`
	NextPage string                `json:"nextPage,omitempty"`
}

// ParseRecordFilter reads a record search's filters from the query string:
// customer, element, from, to (received), id, contract, event_from, event_to
// and status.
func ParseRecordFilter(q url.Values) (usagedb.RecordFilter, []httpapi.FieldError) {
	uf, errs := parseUsageFilter(q)
	f := usagedb.RecordFilter{UsageFilter: uf, ID: q.Get("id"), Contract: q.Get("contract"), Status: q.Get("status")}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"event_from", &f.EventFrom}, {"event_to", &f.EventTo}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				errs = append(errs, httpapi.FieldError{Field: p.name, Reason: "must be an RFC 3339 timestamp"})
			}
			*p.dst = t
		}
	}
	if !f.EventFrom.IsZero() && !f.EventTo.IsZero() && !f.EventTo.After(f.EventFrom) {
		errs = append(errs, httpapi.FieldError{Field: "event_to", Reason: "must be after event_from"})
	}
	if f.Status != "" && !slices.Contains(recordStatuses, f.Status) {
		errs = append(errs, httpapi.FieldError{Field: "status", Reason: "must be one of rated, unrated, pending, invalid, duplicate"})
	}
	return f, errs
}

// ServeSearch serves GET /v1/usage.
func (r *Records) ServeSearch(w http.ResponseWriter, req *http.Request) {
	ten, ok := httpapi.RequestTenant(w, req)
	if !ok {
		return
	}
	q := req.URL.Query()
	f, errs := parseSearch(q, recordFilters, ParseRecordFilter)
	preq, perrs := r.pages.Parse(q, page.Scope(ten, "usage", f.Customer, f.Element, q.Get("from"), q.Get("to"),
		f.ID, f.Contract, q.Get("event_from"), q.Get("event_to"), f.Status))
	if errs = append(errs, perrs...); len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	var after *usagedb.RecordKey
	if len(preq.After) == 4 {
		k, err1 := strconv.ParseUint(preq.After[1], 10, 8)
		p, err2 := strconv.ParseInt(preq.After[2], 10, 32)
		o, err3 := strconv.ParseInt(preq.After[3], 10, 64)
		if err1 == nil && err2 == nil && err3 == nil {
			after = &usagedb.RecordKey{ID: preq.After[0], Kind: uint8(k), Partition: int32(p), Offset: o}
		}
	}
	recs, next, err := r.records.Search(req.Context(), ten, f, after, preq.Size)
	if err != nil {
		queryFailed(w, req, err)
		return
	}
	var nextPage string
	if next != nil {
		nextPage = r.pages.Next(preq, true, next.ID, strconv.Itoa(int(next.Kind)),
			strconv.Itoa(int(next.Partition)), strconv.FormatInt(next.Offset, 10))
	}
	httpapi.WriteList(w, req, recs, nextPage, UsageRecordPage{Records: recs, NextPage: nextPage})
}

// ServeCount serves GET /v1/usage/count.
func (r *Records) ServeCount(w http.ResponseWriter, req *http.Request) {
	serveCount(w, req, recordFilters, ParseRecordFilter, r.records.Count)
}
