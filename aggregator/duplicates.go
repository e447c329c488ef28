package aggregator

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/tenant"
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
	Customer, Element string
	From, To          time.Time // when the duplicate was received, [From, To)
	PayloadDiffers    *bool
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

// DuplicatePage is the body of GET /v1/usage/duplicates.
type DuplicatePage struct {
	Records  []DuplicateRecord `json:"records"`
	NextPage string            `json:"nextPage,omitempty"`
}

func (f DuplicateFilter) where(tenantID string) (string, []any) {
	conds, args := []string{"tenant = ?"}, []any{tenantID}
	add := func(cond string, v any) { conds, args = append(conds, cond), append(args, v) }
	if f.Customer != "" {
		add("customer = ?", f.Customer)
	}
	if f.Element != "" {
		add("element = ?", f.Element)
	}
	if !f.From.IsZero() {
		add("received_at >= ?", f.From)
	}
	if !f.To.IsZero() {
		add("received_at < ?", f.To)
	}
	if f.PayloadDiffers != nil {
		v := uint8(0)
		if *f.PayloadDiffers {
			v = 1
		}
		add("payload_differs = ?", v)
	}
	return strings.Join(conds, " AND "), args
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
	where, args := f.where(tenantID)
	if after != nil {
		where += " AND (event_id > ? OR (event_id = ? AND (raw_partition > ? OR (raw_partition = ? AND raw_offset > ?))))"
		args = append(args, after.ID, after.ID, after.Partition, after.Partition, after.Offset)
	}
	args = append(args, size+1)
	rows, err := d.conn.Query(ctx, `
		SELECT event_id, customer, element, contract, quantity, event_time, received_at,
		       raw_partition, raw_offset, first_partition, first_offset, first_received_at, payload_differs
		FROM usage_duplicates FINAL WHERE `+where+`
		ORDER BY event_id, raw_partition, raw_offset LIMIT ?`, args...)
	if err != nil {
		return nil, false, err
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
			return nil, false, err
		}
		r.Quantity, r.PayloadDiffers = q.String(), differs == 1
		r.Time, r.ReceivedAt, r.FirstReceivedAt = r.Time.UTC(), r.ReceivedAt.UTC(), r.FirstReceivedAt.UTC()
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

// Count returns how many duplicates match the filter.
func (d *Duplicates) Count(ctx context.Context, tenantID string, f DuplicateFilter) (uint64, error) {
	where, args := f.where(tenantID)
	var n uint64
	err := d.conn.QueryRow(ctx, "SELECT count() FROM usage_duplicates FINAL WHERE "+where, args...).Scan(&n)
	return n, err
}

func parseDuplicateFilter(r *http.Request) (DuplicateFilter, []httpapi.FieldError) {
	q := r.URL.Query()
	rng, errs := parseTimeRange(q.Get("from"), q.Get("to"))
	f := DuplicateFilter{Customer: q.Get("customer"), Element: q.Get("element"), From: rng.From, To: rng.To}
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
	ten, ok := tenant.From(r.Context())
	if !ok {
		httpapi.WriteProblem(w, http.StatusUnauthorized, "unauthenticated", "no tenant for this request")
		return
	}
	f, errs := parseDuplicateFilter(r)
	q := r.URL.Query()
	req, perrs := d.pages.Parse(q, page.Scope(ten, "usage/duplicates", f.Customer, f.Element, q.Get("from"), q.Get("to"), q.Get("payload_differs")))
	if errs = append(errs, perrs...); len(errs) > 0 {
		httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_query", "the query parameters are invalid", errs...)
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
	resp := DuplicatePage{Records: recs}
	if more {
		last := recs[len(recs)-1]
		resp.NextPage = d.pages.Next(req, true, last.ID, strconv.Itoa(int(last.Position.Partition)), strconv.FormatInt(last.Position.Offset, 10))
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

// ServeCount serves GET /v1/usage/duplicates/count.
func (d *Duplicates) ServeCount(w http.ResponseWriter, r *http.Request) {
	ten, ok := tenant.From(r.Context())
	if !ok {
		httpapi.WriteProblem(w, http.StatusUnauthorized, "unauthenticated", "no tenant for this request")
		return
	}
	f, errs := parseDuplicateFilter(r)
	if len(errs) > 0 {
		httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_query", "the query parameters are invalid", errs...)
		return
	}
	n, err := d.Count(r.Context(), ten, f)
	if err != nil {
		queryFailed(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]uint64{"count": n})
}
