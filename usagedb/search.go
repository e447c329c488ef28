package usagedb

import (
	"context"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// UsageFilter holds the filters every search over usage records takes; empty
// fields do not filter.
type UsageFilter struct {
	Customer, Element string
	From, To          time.Time // when the record was received, [From, To)
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
