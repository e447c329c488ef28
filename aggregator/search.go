package aggregator

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/tenant"
)

// UsageFilter holds the filters every search over usage records takes; empty
// fields do not filter.
type UsageFilter struct {
	Customer, Element string
	From, To          time.Time // when the record was received, [From, To)
}

// parseUsageFilter reads customer, element, from and to from the query.
func parseUsageFilter(q url.Values) (UsageFilter, []httpapi.FieldError) {
	f := UsageFilter{Customer: q.Get("customer"), Element: q.Get("element")}
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

// conditions is a WHERE clause under construction; the tenant is always its
// first condition.
type conditions struct {
	sql  []string
	args []any
}

// usageConditions renders the tenant and f as conditions.
func usageConditions(tenantID string, f UsageFilter) *conditions {
	c := &conditions{sql: []string{"tenant = ?"}, args: []any{tenantID}}
	if f.Customer != "" {
		c.add("customer = ?", f.Customer)
	}
	if f.Element != "" {
		c.add("element = ?", f.Element)
	}
	if !f.From.IsZero() {
		c.add("received_at >= ?", f.From)
	}
	if !f.To.IsZero() {
		c.add("received_at < ?", f.To)
	}
	return c
}

func (c *conditions) add(cond string, args ...any) {
	c.sql, c.args = append(c.sql, cond), append(c.args, args...)
}

func (c *conditions) where() string { return strings.Join(c.sql, " AND ") }

// countRows counts the rows of table (read with FINAL) matching c.
func countRows(ctx context.Context, conn driver.Conn, table string, c *conditions) (uint64, error) {
	var n uint64
	err := conn.QueryRow(ctx, "SELECT count() FROM "+table+" FINAL WHERE "+c.where(), c.args...).Scan(&n)
	return n, err
}

// firstPage trims rows fetched with LIMIT size+1 to size and tells whether
// another page follows.
func firstPage[T any](rows []T, size int) ([]T, bool) {
	if len(rows) > size {
		return rows[:size], true
	}
	return rows, false
}

// requestTenant returns the request's tenant, or answers 401.
func requestTenant(w http.ResponseWriter, r *http.Request) (string, bool) {
	ten, ok := tenant.From(r.Context())
	if !ok {
		httpapi.WriteProblem(w, http.StatusUnauthorized, "unauthenticated", "no tenant for this request")
	}
	return ten, ok
}

// invalidQuery answers 400 naming the invalid query parameters.
func invalidQuery(w http.ResponseWriter, errs []httpapi.FieldError) {
	httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_query", "the query parameters are invalid", errs...)
}

// serveCount answers a search's /count: parse reads its filters, count runs it.
func serveCount[F any](w http.ResponseWriter, r *http.Request, parse func(url.Values) (F, []httpapi.FieldError),
	count func(ctx context.Context, tenantID string, f F) (uint64, error)) {
	ten, ok := requestTenant(w, r)
	if !ok {
		return
	}
	f, errs := parse(r.URL.Query())
	if len(errs) > 0 {
		invalidQuery(w, errs)
		return
	}
	n, err := count(r.Context(), ten, f)
	if err != nil {
		queryFailed(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]uint64{"count": n})
}
