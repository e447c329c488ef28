package usagedb

import (
	"context"
	"sort"
	"time"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// RecordDetail is the body of GET /v1/usage/{usageId}: the record, its
// status and how it got there, the lines it added to charges, why it could
// not be priced (if so), and the duplicates of its id.
type RecordDetail struct {
	UsageRecord
	History    []StatusEntry     `json:"history"`
	Lines      []RecordLine      `json:"lines"`
	Unrated    *UnratedReason    `json:"unrated,omitempty"`
	Duplicates []DuplicateRecord `json:"duplicates"`
}

// StatusEntry is one status change of a record.
type StatusEntry struct {
	Generation  uint64    `json:"generation"`
	Action      string    `json:"action"`
	Status      string    `json:"status"`
	Reason      string    `json:"reason,omitempty"`
	Actor       string    `json:"actor"`
	RequestedAt time.Time `json:"requested_at"`
	AppliedAt   time.Time `json:"applied_at"`
	Priced      bool      `json:"priced"`
}

// Line kinds: the record's own priced line, and the lines of its corrections.
const (
	LineUsage      = "usage"
	LineInvalidate = schemas.ActionInvalidate
	LineCancel     = schemas.ActionCancel
)

// RecordLine is one line of rated_usage that belongs to a record.
type RecordLine struct {
	LineID     string `json:"line_id"`
	Kind       string `json:"kind"`
	Generation uint64 `json:"generation,omitempty"` // of the correction that added it
	Item       string `json:"item"`
	Quantity   string `json:"quantity"`
	// UnitPrice is the price per unit the line was priced at (a price list's,
	// or a per_unit rate table's, before discounts); empty, and left out of
	// the answer, when the line has none: graduated, volume, package,
	// overage and percentage rates price the period's quantity, not each
	// unit (the amount over the quantity is not a price the rate has).
	UnitPrice string    `json:"unit_price,omitempty"`
	Amount    string    `json:"amount"`
	Currency  string    `json:"currency"`
	Period    string    `json:"period"`
	RatedAt   time.Time `json:"rated_at"`
}

// UnratedReason says why a record could not be priced.
type UnratedReason struct {
	ReasonCode string `json:"reason_code"`
	Reason     string `json:"reason"`
	Stage      string `json:"stage"`
}

// Get returns one of the tenant's records with everything about it, or nil
// when the tenant has no record with that id.
func (r *Records) Get(ctx context.Context, tenantID, id string) (*RecordDetail, error) {
	evs, err := r.Events(ctx, tenantID, RecordFilter{ID: id}, 1)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	ev := &evs[0]
	d := &RecordDetail{UsageRecord: recordView(ev), History: []StatusEntry{}, Lines: []RecordLine{}}
	if d.History, err = r.history(ctx, tenantID, id); err != nil {
		return nil, err
	}
	if n := len(d.History); n > 0 {
		d.Generation = d.History[n-1].Generation
	}
	if d.Lines, err = r.lines(ctx, ev, d.Generation); err != nil {
		return nil, err
	}
	rows, err := r.conn.Query(ctx, "SELECT reason_code, reason, stage FROM usage_unrated FINAL WHERE tenant = ? AND event_id = ?", tenantID, id)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var u UnratedReason
		if err := rows.Scan(&u.ReasonCode, &u.Reason, &u.Stage); err != nil {
			rows.Close()
			return nil, err
		}
		d.Unrated = &u
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	c := usageConditions(tenantID, UsageFilter{})
	c.add("event_id = ?", id)
	if d.Duplicates, err = queryDuplicates(ctx, r.conn, c, 1000); err != nil {
		return nil, err
	}
	d.Status = RecordState{Generation: d.Generation, Rated: len(d.Lines) > 0, Unrated: d.Unrated != nil}.Status()
	return d, nil
}

func (r *Records) history(ctx context.Context, tenantID, id string) ([]StatusEntry, error) {
	rows, err := r.conn.Query(ctx, `SELECT generation, action, status, reason, actor, requested_at, applied_at, priced
		FROM usage_status FINAL WHERE tenant = ? AND event_id = ? ORDER BY generation`, tenantID, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []StatusEntry{}
	for rows.Next() {
		var e StatusEntry
		var priced uint8
		if err := rows.Scan(&e.Generation, &e.Action, &e.Status, &e.Reason, &e.Actor, &e.RequestedAt, &e.AppliedAt, &priced); err != nil {
			return nil, err
		}
		e.Priced, e.RequestedAt, e.AppliedAt = priced == 1, e.RequestedAt.UTC(), e.AppliedAt.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// lines reads the record's lines and names each: its usage line, or the
// correction of a generation up to gen (ids are derived, so the kind is too).
func (r *Records) lines(ctx context.Context, ev *schemas.UsageEvent, gen uint64) ([]RecordLine, error) {
	rows, err := r.conn.Query(ctx, `SELECT line_id, item, quantity, unit_price, unit_priced, amount, currency, period, rated_at
		FROM rated_usage FINAL WHERE tenant = ? AND customer = ? AND event_id = ?`, ev.Tenant, ev.Customer, ev.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []RecordLine{}
	for rows.Next() {
		var l RecordLine
		var q, price, amount decimal.Decimal
		var unitPriced uint8
		if err := rows.Scan(&l.LineID, &l.Item, &q, &price, &unitPriced, &amount, &l.Currency, &l.Period, &l.RatedAt); err != nil {
			return nil, err
		}
		l.Quantity, l.Amount, l.RatedAt = q.String(), formatAmount(l.Currency, amount), l.RatedAt.UTC()
		if unitPriced == 1 {
			l.UnitPrice = price.String()
		}
		l.Kind = "other"
		if l.LineID == schemas.LineID(ev.Tenant, ev.ID, l.Item) {
			l.Kind = LineUsage
		}
		for g := uint64(1); g <= gen && l.Kind == "other"; g++ {
			if a := schemas.ActionForGeneration(g); l.LineID == schemas.CorrectionLineID(ev.Tenant, ev.ID, l.Item, a, g) {
				l.Kind, l.Generation = a, g
			}
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Generation != out[j].Generation {
			return out[i].Generation < out[j].Generation
		}
		return out[i].LineID < out[j].LineID
	})
	return out, nil
}
