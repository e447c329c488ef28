package loadgen

import (
	"context"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"
)

// Store reads what the pipeline wrote for a run. Every read is of the
// deduplicated state (FINAL); prefixes are matched with LIKE '<prefix>%'.
type Store interface {
	// ProbeIDs lists the event ids of a customer's rated lines in a period.
	ProbeIDs(ctx context.Context, tenant, customer, period string) ([]string, error)
	// Lines counts the rated lines of customers whose name starts with prefix.
	Lines(ctx context.Context, tenant, customerPrefix string) (uint64, error)
	// StoredLines counts the stored rows of those lines without
	// deduplicating them: a line stored twice counts twice, so it is never
	// below Lines, and it is much cheaper to ask. verify polls it and reads
	// the exact counts only once it reaches the expected lines.
	StoredLines(ctx context.Context, tenant, customerPrefix string) (uint64, error)
	// CustomerTotals sums the rated amounts per customer for those customers.
	CustomerTotals(ctx context.Context, tenant, customerPrefix string) (map[string]decimal.Decimal, error)
	// Duplicates counts the records flagged duplicate whose id starts with prefix.
	Duplicates(ctx context.Context, tenant, idPrefix string) (uint64, error)
	// Unrated counts the records parked unrated whose id starts with prefix.
	Unrated(ctx context.Context, tenant, idPrefix string) (uint64, error)
}

// ClickHouse is the Store of a real pipeline. Every query filters on the
// leading ORDER BY columns of its table (tenant, then customer or event_id),
// and groups by a String key only: ClickHouse 18.16 crashes grouping by a
// Decimal next to another key.
type ClickHouse struct {
	Conn driver.Conn
	// LogQueries sets log_queries = 1 on every query of the store, so that
	// ClickHouse keeps them in system.query_log with their CPU time
	// (ProfileEvents UserTimeMicroseconds, SystemTimeMicroseconds): make
	// bench reports what share of ClickHouse's CPU the load generator's own
	// probe and verify queries take. Kakin's queries stay unlogged.
	LogQueries bool
}

// NewClickHouse returns a Store reading through conn.
func NewClickHouse(conn driver.Conn) *ClickHouse { return &ClickHouse{Conn: conn} }

// ctx carries the store's query settings.
func (c *ClickHouse) ctx(ctx context.Context) context.Context {
	if !c.LogQueries {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"log_queries": 1}))
}

// ProbeIDs reads without FINAL: a probe is queryable once any part holds its
// line, and a line stored twice is still one id here. A FINAL read every
// poll interval was over a third of ClickHouse's query time under load.
func (c *ClickHouse) ProbeIDs(ctx context.Context, tenant, customer, period string) ([]string, error) {
	rows, err := c.Conn.Query(c.ctx(ctx),
		`SELECT event_id FROM rated_usage WHERE tenant = ? AND customer = ? AND period = ?`,
		tenant, customer, period)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func (c *ClickHouse) Lines(ctx context.Context, tenant, customerPrefix string) (uint64, error) {
	return c.count(ctx, `SELECT count() FROM rated_usage FINAL WHERE tenant = ? AND customer LIKE ?`,
		tenant, likePrefix(customerPrefix))
}

func (c *ClickHouse) StoredLines(ctx context.Context, tenant, customerPrefix string) (uint64, error) {
	return c.count(ctx, `SELECT count() FROM rated_usage WHERE tenant = ? AND customer LIKE ?`,
		tenant, likePrefix(customerPrefix))
}

func (c *ClickHouse) CustomerTotals(ctx context.Context, tenant, customerPrefix string) (map[string]decimal.Decimal, error) {
	rows, err := c.Conn.Query(c.ctx(ctx),
		`SELECT customer, sum(amount) FROM rated_usage FINAL WHERE tenant = ? AND customer LIKE ? GROUP BY customer`,
		tenant, likePrefix(customerPrefix))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]decimal.Decimal{}
	for rows.Next() {
		var cust string
		var amt decimal.Decimal
		if err := rows.Scan(&cust, &amt); err != nil {
			return nil, err
		}
		out[cust] = amt
	}
	return out, rows.Err()
}

func (c *ClickHouse) Duplicates(ctx context.Context, tenant, idPrefix string) (uint64, error) {
	return c.count(ctx, `SELECT count() FROM usage_duplicates FINAL WHERE tenant = ? AND event_id LIKE ?`,
		tenant, likePrefix(idPrefix))
}

func (c *ClickHouse) Unrated(ctx context.Context, tenant, idPrefix string) (uint64, error) {
	return c.count(ctx, `SELECT count() FROM usage_unrated FINAL WHERE tenant = ? AND event_id LIKE ?`,
		tenant, likePrefix(idPrefix))
}

func (c *ClickHouse) count(ctx context.Context, query string, args ...any) (uint64, error) {
	var n uint64
	err := c.Conn.QueryRow(c.ctx(ctx), query, args...).Scan(&n)
	return n, err
}

// likePrefix is the LIKE pattern matching strings that start with p.
func likePrefix(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(p) + "%"
}
