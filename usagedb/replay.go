package usagedb

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/kakin-dev/kakin/schemas"
)

// History returns the customer's valid stored records whose usage happened in
// [from, to) and that were accepted before position (partition, before) of
// usage.accepted, in the order the rater priced them. Invalidated records
// (odd latest generation) are left out. A re-rate replays them.
func (r *Records) History(ctx context.Context, tenantID, customer string, from, to time.Time, partition int, before int64) ([]schemas.UsageEvent, error) {
	rows, err := r.conn.Query(ctx, "SELECT "+recordColumns+" FROM usage_records FINAL"+
		" WHERE tenant = ? AND customer = ? AND event_time >= ? AND event_time < ?"+
		" AND accepted_partition = ? AND accepted_offset < ?",
		tenantID, customer, chTime(from.Add(-time.Second)), chTime(to.Add(time.Second)), int32(partition), before)
	if err != nil {
		return nil, fmt.Errorf("read history of %s/%s: %w", tenantID, customer, err)
	}
	type positioned struct {
		ev  schemas.UsageEvent
		pos Position
	}
	var all []positioned
	for rows.Next() {
		var p positioned
		if err := scanEvent(rows, &p.ev, &p.pos); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read history of %s/%s: %w", tenantID, customer, err)
		}
		if p.ev.Time.Before(from) || !p.ev.Time.Before(to) {
			continue // the query's bounds are whole seconds
		}
		p.ev.Tenant = tenantID
		all = append(all, p)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("read history of %s/%s: %w", tenantID, customer, err)
	}
	ids := make([]string, len(all))
	for i := range all {
		ids[i] = all[i].ev.ID
	}
	states, err := r.States(ctx, tenantID, ids)
	if err != nil {
		return nil, fmt.Errorf("read statuses of %s/%s: %w", tenantID, customer, err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].pos.Offset < all[j].pos.Offset })
	out := make([]schemas.UsageEvent, 0, len(all))
	for _, p := range all {
		if states[p.ev.ID].Generation%2 == 1 {
			continue
		}
		out = append(out, p.ev)
	}
	return out, nil
}

// PeriodLines returns the customer's current lines of a billing period (the
// newest version of each line id; lines already zeroed by an earlier re-rate
// included).
func (r *Records) PeriodLines(ctx context.Context, tenantID, customer, period string) ([]schemas.RatedLine, error) {
	rows, err := r.conn.Query(ctx, `SELECT line_id, event_id, element, item, contract, currency, event_time, received_at
		FROM rated_usage FINAL WHERE tenant = ? AND customer = ? AND period = ?`, tenantID, customer, period)
	if err != nil {
		return nil, fmt.Errorf("read lines of %s/%s/%s: %w", tenantID, customer, period, err)
	}
	defer rows.Close()
	var out []schemas.RatedLine
	for rows.Next() {
		l := schemas.RatedLine{Period: period, Event: schemas.UsageEvent{Tenant: tenantID, Customer: customer}}
		if err := rows.Scan(&l.LineID, &l.Event.ID, &l.Event.Element, &l.Item, &l.Event.Contract, &l.Currency,
			&l.Event.Time, &l.Event.ReceivedAt); err != nil {
			return nil, fmt.Errorf("read lines of %s/%s/%s: %w", tenantID, customer, period, err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// Customers returns, sorted, the tenant's customers with stored records
// whose usage happened in [from, to).
func (r *Records) Customers(ctx context.Context, tenantID string, from, to time.Time) ([]string, error) {
	rows, err := r.conn.Query(ctx, `SELECT DISTINCT customer FROM usage_records
		WHERE tenant = ? AND event_time >= ? AND event_time < ? ORDER BY customer`,
		tenantID, chTime(from.Add(-time.Second)), chTime(to.Add(time.Second)))
	if err != nil {
		return nil, fmt.Errorf("read customers of %s: %w", tenantID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("read customers of %s: %w", tenantID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
