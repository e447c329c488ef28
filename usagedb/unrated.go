package usagedb

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"
)

// Unrated searches the records the pipeline could not price.
type Unrated struct {
	conn driver.Conn
}

// NewUnrated returns the unrated-records search.
func NewUnrated(conn driver.Conn) *Unrated {
	return &Unrated{conn: conn}
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
