package aggregator

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/shopspring/decimal"
)

// Unrated searches the records the pipeline could not price.
type Unrated struct {
	conn  driver.Conn
	pages *page.Codec
}

// NewUnrated returns the unrated-records search.
func NewUnrated(conn driver.Conn, pages *page.Codec) *Unrated {
	return &Unrated{conn: conn, pages: pages}
}

// UnratedFilter narrows a search; empty fields do not filter.
type UnratedFilter struct {
	UsageFilter
	Reason string // reason code
}

// UnratedRecord is one record in a search answer.
type UnratedRecord struct {
	ID         string    `json:"id"`
	Customer   string    `json:"customer"`
	Element    string    `json:"element"`
	Contract   string    `json:"contract,omitempty"`
	Quantity   string    `json:"quantity"`
	Time       time.Time `json:"time"`
	ReceivedAt time.Time `json:"received_at"`
	ReasonCode string    `json:"reason_code"`
	Reason     string    `json:"reason"`
	Stage      string    `json:"stage"`
}

// UnratedPage is the body of GET /v1/usage/unrated before API version
// 2027-01-01 (httpapi.WriteList).
type UnratedPage struct {
	Records  []UnratedRecord `json:"records"`
	NextPage string          `json:"nextPage,omitempty"`
}

func (f UnratedFilter) conditions(tenantID string) *conditions {
	c := usageConditions(tenantID, f.UsageFilter)
	if f.Reason != "" {
		c.add("reason_code = ?", f.Reason)
	}
	return c
}

// Search returns up to size records after the event id after, in id order,
// and whether more follow.
func (u *Unrated) Search(ctx context.Context, tenantID string, f UnratedFilter, after string, size int) ([]UnratedRecord, bool, error) {
	c := f.conditions(tenantID)
	if after != "" {
		c.add("event_id > ?", after)
	}
	rows, err := u.conn.Query(ctx, `
		SELECT event_id, customer, element, contract, quantity, event_time, received_at, reason_code, reason, stage
		FROM usage_unrated FINAL WHERE `+c.where()+` ORDER BY event_id LIMIT ?`, append(c.args, size+1)...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	out := []UnratedRecord{}
	for rows.Next() {
		var r UnratedRecord
		var q decimal.Decimal
		if err := rows.Scan(&r.ID, &r.Customer, &r.Element, &r.Contract, &q, &r.Time, &r.ReceivedAt, &r.ReasonCode, &r.Reason, &r.Stage); err != nil {
			return nil, false, err
		}
		r.Quantity, r.Time, r.ReceivedAt = q.String(), r.Time.UTC(), r.ReceivedAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	out, more := firstPage(out, size)
	return out, more, nil
}

// Count returns how many records match the filter.
func (u *Unrated) Count(ctx context.Context, tenantID string, f UnratedFilter) (uint64, error) {
	return countRows(ctx, u.conn, "usage_unrated", f.conditions(tenantID))
}

// parseUnratedFilter reads the search filters from the query string.
func parseUnratedFilter(q url.Values) (UnratedFilter, []httpapi.FieldError) {
	f, errs := parseUsageFilter(q)
	return UnratedFilter{UsageFilter: f, Reason: q.Get("reason")}, errs
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
	recs, more, err := u.Search(r.Context(), ten, f, after, req.Size)
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
	serveCount(w, r, unratedFilters, parseUnratedFilter, u.Count)
}

// queryFailed answers 503 without exposing the database's error text, which
// is logged with the request id instead.
func queryFailed(w http.ResponseWriter, r *http.Request, err error) {
	slog.ErrorContext(r.Context(), "query failed", "path", r.URL.Path, "request_id", httpapi.RequestID(r.Context()), "err", err)
	httpapi.RetryAfter(w, time.Second)
	httpapi.WriteProblem(w, http.StatusServiceUnavailable, "query_failed",
		"the query could not be answered right now; retry (request id "+httpapi.RequestID(r.Context())+")")
}
