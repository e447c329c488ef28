package usagedb

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"
)

// Duplicates searches the usage records flagged as repeats of an earlier
// record with the same id.
type Duplicates struct {
	conn driver.Conn
}

// NewDuplicates returns the duplicates search.
func NewDuplicates(conn driver.Conn) *Duplicates {
	return &Duplicates{conn: conn}
}

// DuplicateFilter narrows a search; empty fields do not filter.
type DuplicateFilter struct {
	UsageFilter
	PayloadDiffers *bool
}

// Position is a record's place in usage.raw.
type Position struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// DuplicateRecord is one flagged repeat with a reference to the record it
// repeats.
type DuplicateRecord struct {
	ID              string    `json:"id"`
	Customer        string    `json:"customer"`
	Element         string    `json:"element"`
	Contract        string    `json:"contract,omitempty"`
	Quantity        string    `json:"quantity"`
	Time            time.Time `json:"time"`
	ReceivedAt      time.Time `json:"received_at"`
	Position        Position  `json:"position"`
	FirstPosition   Position  `json:"first_position"`
	FirstReceivedAt time.Time `json:"first_received_at"`
	PayloadDiffers  bool      `json:"payload_differs"`
}

func (f DuplicateFilter) conditions(tenantID string) *conditions {
	c := usageConditions(tenantID, f.UsageFilter)
	if f.PayloadDiffers != nil {
		v := uint8(0)
		if *f.PayloadDiffers {
			v = 1
		}
		c.add("payload_differs = ?", v)
	}
	return c
}

// DuplicateKey is the table's sorting key after the tenant: the keyset cursor.
type DuplicateKey struct {
	ID        string
	Partition int32
	Offset    int64
}

// Search returns up to size duplicates after the key after (nil: from the
// start) in sorting-key order, and whether more follow.
func (d *Duplicates) Search(ctx context.Context, tenantID string, f DuplicateFilter, after *DuplicateKey, size int) ([]DuplicateRecord, bool, error) {
	c := f.conditions(tenantID)
	if after != nil {
		c.add("(event_id > ? OR (event_id = ? AND (raw_partition > ? OR (raw_partition = ? AND raw_offset > ?))))",
			after.ID, after.ID, after.Partition, after.Partition, after.Offset)
	}
	out, err := queryDuplicates(ctx, d.conn, c, size+1)
	if err != nil {
		return nil, false, err
	}
	out, more := firstPage(out, size)
	return out, more, nil
}

// queryDuplicates reads up to limit duplicates matching c in sorting-key order.
func queryDuplicates(ctx context.Context, conn driver.Conn, c *conditions, limit int) ([]DuplicateRecord, error) {
	rows, err := conn.Query(ctx, `
		SELECT event_id, customer, element, contract, quantity, event_time, received_at,
		       raw_partition, raw_offset, first_partition, first_offset, first_received_at, payload_differs
		FROM usage_duplicates FINAL WHERE `+c.where()+`
		ORDER BY event_id, raw_partition, raw_offset LIMIT ?`, append(c.args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []DuplicateRecord{}
	for rows.Next() {
		var r DuplicateRecord
		var q decimal.Decimal
		var differs uint8
		if err := rows.Scan(&r.ID, &r.Customer, &r.Element, &r.Contract, &q, &r.Time, &r.ReceivedAt,
			&r.Position.Partition, &r.Position.Offset, &r.FirstPosition.Partition, &r.FirstPosition.Offset,
			&r.FirstReceivedAt, &differs); err != nil {
			return nil, err
		}
		r.Quantity, r.PayloadDiffers = q.String(), differs == 1
		r.Time, r.ReceivedAt, r.FirstReceivedAt = r.Time.UTC(), r.ReceivedAt.UTC(), r.FirstReceivedAt.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// Count returns how many duplicates match the filter.
func (d *Duplicates) Count(ctx context.Context, tenantID string, f DuplicateFilter) (uint64, error) {
	return countRows(ctx, d.conn, "usage_duplicates", f.conditions(tenantID))
}
