package aggregator

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/tenant"
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
	Customer, Element, Reason string
	From, To                  time.Time // received_at range, [From, To)
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

// UnratedPage is the body of GET /v1/usage/unrated.
type UnratedPage struct {
	Records  []UnratedRecord `json:"records"`
	NextPage string          `json:"nextPage,omitempty"`
}

// where renders the filter as SQL conditions and arguments; the tenant is
// always the first condition.
func (f UnratedFilter) where(tenantID string) (string, []any) {
	conds, args := []string{"tenant = ?"}, []any{tenantID}
	add := func(cond string, v any) { conds, args = append(conds, cond), append(args, v) }
	if f.Customer != "" {
		add("customer = ?", f.Customer)
	}
	if f.Element != "" {
		add("element = ?", f.Element)
	}
	if f.Reason != "" {
		add("reason_code = ?", f.Reason)
	}
	if !f.From.IsZero() {
		add("received_at >= ?", f.From)
	}
	if !f.To.IsZero() {
		add("received_at < ?", f.To)
	}
	return strings.Join(conds, " AND "), args
}

// Search returns up to size records after the event id after, in id order,
// and whether more follow.
func (u *Unrated) Search(ctx context.Context, tenantID string, f UnratedFilter, after string, size int) ([]UnratedRecord, bool, error) {
	where, args := f.where(tenantID)
	if after != "" {
		where += " AND event_id > ?"
		args = append(args, after)
	}
	args = append(args, size+1)
	rows, err := u.conn.Query(ctx, `
		SELECT event_id, customer, element, contract, quantity, event_time, received_at, reason_code, reason, stage
		FROM usage_unrated FINAL WHERE `+where+` ORDER BY event_id LIMIT ?`, args...)
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
	more := len(out) > size
	if more {
		out = out[:size]
	}
	return out, more, nil
}

// Count returns how many records match the filter.
func (u *Unrated) Count(ctx context.Context, tenantID string, f UnratedFilter) (uint64, error) {
	where, args := f.where(tenantID)
	var n uint64
	err := u.conn.QueryRow(ctx, "SELECT count() FROM usage_unrated FINAL WHERE "+where, args...).Scan(&n)
	return n, err
}

// parseUnratedFilter reads the search filters from the query string.
func parseUnratedFilter(r *http.Request) (UnratedFilter, []httpapi.FieldError) {
	q := r.URL.Query()
	f, errs := parseTimeRange(q.Get("from"), q.Get("to"))
	f.Customer, f.Element, f.Reason = q.Get("customer"), q.Get("element"), q.Get("reason")
	return f, errs
}

// parseTimeRange reads a [from, to) range of RFC 3339 times into a filter.
func parseTimeRange(from, to string) (UnratedFilter, []httpapi.FieldError) {
	var f UnratedFilter
	var errs []httpapi.FieldError
	for _, p := range []struct {
		name, value string
		dst         *time.Time
	}{{"from", from, &f.From}, {"to", to, &f.To}} {
		if p.value != "" {
			t, err := time.Parse(time.RFC3339, p.value)
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

// ServeSearch serves GET /v1/usage/unrated.
func (u *Unrated) ServeSearch(w http.ResponseWriter, r *http.Request) {
	ten, ok := tenant.From(r.Context())
	if !ok {
		httpapi.WriteProblem(w, http.StatusUnauthorized, "unauthenticated", "no tenant for this request")
		return
	}
	f, errs := parseUnratedFilter(r)
	q := r.URL.Query()
	req, perrs := u.pages.Parse(q, page.Scope(ten, "usage/unrated", f.Customer, f.Element, f.Reason, q.Get("from"), q.Get("to")))
	if errs = append(errs, perrs...); len(errs) > 0 {
		httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_query", "the query parameters are invalid", errs...)
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
	resp := UnratedPage{Records: recs}
	if more {
		resp.NextPage = u.pages.Next(req, true, recs[len(recs)-1].ID)
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

// ServeCount serves GET /v1/usage/unrated/count.
func (u *Unrated) ServeCount(w http.ResponseWriter, r *http.Request) {
	ten, ok := tenant.From(r.Context())
	if !ok {
		httpapi.WriteProblem(w, http.StatusUnauthorized, "unauthenticated", "no tenant for this request")
		return
	}
	f, errs := parseUnratedFilter(r)
	if len(errs) > 0 {
		httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_query", "the query parameters are invalid", errs...)
		return
	}
	n, err := u.Count(r.Context(), ten, f)
	if err != nil {
		queryFailed(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]uint64{"count": n})
}

// queryFailed answers 503 without exposing the database's error text, which
// is logged with the request id instead.
func queryFailed(w http.ResponseWriter, r *http.Request, err error) {
	slog.ErrorContext(r.Context(), "query failed", "path", r.URL.Path, "request_id", httpapi.RequestID(r.Context()), "err", err)
	httpapi.RetryAfter(w, time.Second)
	httpapi.WriteProblem(w, http.StatusServiceUnavailable, "query_failed",
		"the query could not be answered right now; retry (request id "+httpapi.RequestID(r.Context())+")")
}
