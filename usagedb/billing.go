package usagedb

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// PeriodRecords returns a tenant's valid stored records whose usage happened
// in [from, to) and that were received before receivedBefore (the billing
// run's ingest watermark), per customer, each customer's in the order the
// rater priced them (usage.accepted position). Invalidated records (odd
// latest generation) are left out. The billing run recomputes periods from
// them.
func (r *Records) PeriodRecords(ctx context.Context, tenantID string, from, to, receivedBefore time.Time) (map[string][]schemas.UsageEvent, error) {
	return r.periodRecords(ctx, tenantID, "", from, to, receivedBefore)
}

// CustomerPeriodRecords is PeriodRecords of one customer (a preview, a run
// of one customer): the same records, in the same order, as PeriodRecords
// gives for that customer.
func (r *Records) CustomerPeriodRecords(ctx context.Context, tenantID, customer string, from, to, receivedBefore time.Time) ([]schemas.UsageEvent, error) {
	m, err := r.periodRecords(ctx, tenantID, customer, from, to, receivedBefore)
	return m[customer], err
}

// invalidRecords returns the ids of a tenant's invalidated records (odd
// latest generation).
func (r *Records) invalidRecords(ctx context.Context, tenantID string) (map[string]bool, error) {
	invalid := map[string]bool{}
	rows, err := r.conn.Query(ctx, `SELECT event_id FROM usage_status WHERE tenant = ?
		GROUP BY event_id HAVING max(generation) % 2 = 1`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("read invalid records of %s: %w", tenantID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read invalid records of %s: %w", tenantID, err)
		}
		invalid[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read invalid records of %s: %w", tenantID, err)
	}
	return invalid, nil
}

// EachCustomer calls fn with each customer's records of PeriodRecords, one
// customer after another in the byte order of their ids, each customer's in
// usage.accepted order, read as one stream ordered by ClickHouse: a caller
// holds one customer's records at a time (a 100,000-customer billing run
// reads 500,000). An error of fn ends the stream with that error.
func (r *Records) EachCustomer(ctx context.Context, tenantID string, from, to, receivedBefore time.Time,
	fn func(customer string, evs []schemas.UsageEvent) error) error {
	invalid, err := r.invalidRecords(ctx, tenantID)
	if err != nil {
		return err
	}
	rows, err := r.conn.Query(ctx, "SELECT "+recordColumns+" FROM usage_records FINAL"+
		" WHERE tenant = ? AND event_time >= ? AND event_time < ? AND received_at <= ?"+
		" ORDER BY customer, accepted_partition, accepted_offset",
		tenantID, chTime(from.Add(-time.Second)), chTime(to.Add(time.Second)), chTime(receivedBefore))
	if err != nil {
		return fmt.Errorf("read records of %s: %w", tenantID, err)
	}
	defer rows.Close()
	var cur string
	var evs []schemas.UsageEvent
	for rows.Next() {
		var ev schemas.UsageEvent
		var pos Position
		if err := scanEvent(rows, &ev, &pos); err != nil {
			return fmt.Errorf("read records of %s: %w", tenantID, err)
		}
		if ev.Time.Before(from) || !ev.Time.Before(to) || !ev.ReceivedAt.Before(receivedBefore) || invalid[ev.ID] {
			continue // the query's bounds are whole seconds
		}
		ev.Tenant = tenantID
		if ev.Customer != cur && len(evs) > 0 {
			if err := fn(cur, evs); err != nil {
				return err
			}
			evs = nil
		}
		cur = ev.Customer
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read records of %s: %w", tenantID, err)
	}
	if len(evs) > 0 {
		return fn(cur, evs)
	}
	return nil
}

func (r *Records) periodRecords(ctx context.Context, tenantID, customer string, from, to, receivedBefore time.Time) (map[string][]schemas.UsageEvent, error) {
	invalid, err := r.invalidRecords(ctx, tenantID)
	if err != nil {
		return nil, err
	}

	q, args := "SELECT "+recordColumns+" FROM usage_records FINAL"+
		" WHERE tenant = ? AND event_time >= ? AND event_time < ? AND received_at <= ?",
		[]any{tenantID, chTime(from.Add(-time.Second)), chTime(to.Add(time.Second)), chTime(receivedBefore)}
	if customer != "" {
		q += " AND customer = ?"
		args = append(args, customer)
	}
	rows, err := r.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read records of %s: %w", tenantID, err)
	}
	defer rows.Close()
	// Each customer's events and their usage.accepted positions in two
	// parallel slices, sorted together in place: no second copy of the
	// events (a 100,000-customer run reads 500,000 of them).
	byCustomer := map[string]*customerRecords{}
	for rows.Next() {
		var ev schemas.UsageEvent
		var pos Position
		if err := scanEvent(rows, &ev, &pos); err != nil {
			return nil, fmt.Errorf("read records of %s: %w", tenantID, err)
		}
		if ev.Time.Before(from) || !ev.Time.Before(to) || !ev.ReceivedAt.Before(receivedBefore) || invalid[ev.ID] ||
			customer != "" && ev.Customer != customer {
			continue // the query's bounds are whole seconds
		}
		ev.Tenant = tenantID
		c := byCustomer[ev.Customer]
		if c == nil {
			c = &customerRecords{}
			byCustomer[ev.Customer] = c
		}
		c.evs, c.pos = append(c.evs, ev), append(c.pos, pos)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read records of %s: %w", tenantID, err)
	}
	out := make(map[string][]schemas.UsageEvent, len(byCustomer))
	for cu, c := range byCustomer {
		sort.Stable(c)
		out[cu] = c.evs
	}
	return out, nil
}

// customerRecords sorts one customer's events by their usage.accepted
// position.
type customerRecords struct {
	evs []schemas.UsageEvent
	pos []Position
}

func (c *customerRecords) Len() int { return len(c.evs) }
func (c *customerRecords) Less(i, j int) bool {
	if c.pos[i].Partition != c.pos[j].Partition {
		return c.pos[i].Partition < c.pos[j].Partition
	}
	return c.pos[i].Offset < c.pos[j].Offset
}
func (c *customerRecords) Swap(i, j int) {
	c.evs[i], c.evs[j] = c.evs[j], c.evs[i]
	c.pos[i], c.pos[j] = c.pos[j], c.pos[i]
}

// StreamTotal is the sum of a customer's streamed lines of one item in one
// period (rated_usage).
type StreamTotal struct {
	Customer string
	Period   string
	Item     string
	Amount   decimal.Decimal
}

// EachStreamTotal calls fn with StreamTotals' sums one after another,
// ordered by customer (byte order) and item, read as a stream: the billing
// run reconciles customer by customer without holding them all. An error
// of fn ends the stream with that error.
func (r *Records) EachStreamTotal(ctx context.Context, tenantID, period string, fn func(StreamTotal) error) error {
	rows, err := r.conn.Query(ctx, `SELECT customer, item, sum(amount) FROM rated_usage FINAL
		WHERE tenant = ? AND period = ? GROUP BY customer, item ORDER BY customer, item`, tenantID, period)
	if err != nil {
		return fmt.Errorf("streamed totals of %s/%s: %w", tenantID, period, err)
	}
	defer rows.Close()
	for rows.Next() {
		t := StreamTotal{Period: period}
		if err := rows.Scan(&t.Customer, &t.Item, &t.Amount); err != nil {
			return fmt.Errorf("streamed totals of %s/%s: %w", tenantID, period, err)
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("streamed totals of %s/%s: %w", tenantID, period, err)
	}
	return nil
}

// StreamTotals sums a tenant's current rated lines of a period per customer
// and item (contract/fee[split]). Grouped by strings only, the decimal
// summed (18.16 crashes grouping a Decimal128 next to a String key).
func (r *Records) StreamTotals(ctx context.Context, tenantID, period string) ([]StreamTotal, error) {
	rows, err := r.conn.Query(ctx, `SELECT customer, item, sum(amount) FROM rated_usage FINAL
		WHERE tenant = ? AND period = ? GROUP BY customer, item`, tenantID, period)
	if err != nil {
		return nil, fmt.Errorf("streamed totals of %s/%s: %w", tenantID, period, err)
	}
	defer rows.Close()
	var out []StreamTotal
	for rows.Next() {
		t := StreamTotal{Period: period}
		if err := rows.Scan(&t.Customer, &t.Item, &t.Amount); err != nil {
			return nil, fmt.Errorf("streamed totals of %s/%s: %w", tenantID, period, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
