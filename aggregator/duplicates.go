package aggregator

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/shopspring/decimal"
)

// Duplicates searches the usage records flagged as repeats of an earlier
// record with the same id.
type Duplicates struct {
	conn  driver.Conn
	pages *page.Codec
}

// NewDuplicates returns the duplicates search.
func NewDuplicates(conn driver.Conn, pages *page.Codec) *Duplicates {
	return &Duplicates{conn: conn, pages: pages}
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

// DuplicatePage is the body of GET /v1/usage/duplicates before API version
// 2027-01-01 (httpapi.WriteList).
type DuplicatePage struct {
	Records  []DuplicateRecord `json:"records"`
	NextPage string            `json:"nextPage,omitempty"`
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

// duplicateKey is the table's sorting key after the tenant: the keyset cursor.
type duplicateKey struct {
	ID        string
	Partition int32
	Offset    int64
}

// Search returns up to size duplicates after the key after (nil: from the
// start) in sorting-key order, and whether more follow.
func (d *Duplicates) Search(ctx context.Context, tenantID string, f DuplicateFilter, after *duplicateKey, size int) ([]DuplicateRecord, bool, error) {
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

func parseDuplicateFilter(q url.Values) (DuplicateFilter, []httpapi.FieldError) {
	uf, errs := parseUsageFilter(q)
	f := DuplicateFilter{UsageFilter: uf}
	switch v := q.Get("payload_differs"); v {
	case "":
	case "true", "false":
		b := v == "true"
		f.PayloadDiffers = &b
	default:
		errs = append(errs, httpapi.FieldError{Field: "payload_differs", Reason: "must be true or false"})
	}
	return f, errs
}

// ServeSearch serves GET /v1/usage/duplicates.
func (d *Duplicates) ServeSearch(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f, errs := parseSearch(q, duplicateFilters, parseDuplicateFilter)
	req, perrs := d.pages.Parse(q, page.Scope(ten, "usage/duplicates", f.Customer, f.Element, q.Get("from"), q.Get("to"), q.Get("payload_differs")))
	if errs = append(errs, perrs...); len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	var after *duplicateKey
	if len(req.After) == 3 {
		p, err1 := strconv.ParseInt(req.After[1], 10, 32)
		o, err2 := strconv.ParseInt(req.After[2], 10, 64)
		if err1 == nil && err2 == nil {
			after = &duplicateKey{ID: req.After[0], Partition: int32(p), Offset: o}
		}
	}
	recs, more, err := d.Search(r.Context(), ten, f, after, req.Size)
	if err != nil {
		queryFailed(w, r, err)
		return
	}
	var nextPage string
	if more {
		last := recs[len(recs)-1]
		nextPage = d.pages.Next(req, true, last.ID, strconv.Itoa(int(last.Position.Partition)), strconv.FormatInt(last.Position.Offset, 10))
	}
	httpapi.WriteList(w, r, recs, nextPage, DuplicatePage{Records: recs, NextPage: nextPage})
}

// ServeCount serves GET /v1/usage/duplicates/count.
func (d *Duplicates) ServeCount(w http.ResponseWriter, r *http.Request) {
	serveCount(w, r, duplicateFilters, parseDuplicateFilter, d.Count)
}
