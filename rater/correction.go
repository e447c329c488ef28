package rater

import (
	"time"

	"github.com/kakin-dev/kakin/rater/pricelist"
	"github.com/kakin-dev/kakin/schemas"
)

// CorrectionPricer prices the correction of one usage record: the lines that,
// added to the lines already stored for it, take the record out of the
// period's charge (invalidate) or put it back (cancel). Corrections reach the
// pricer in partition order with the customer's usage, so a rater with
// running period state can answer cost(cum − q) − cost(cum) for an
// invalidation and cost(cum + q) − cost(cum) for a cancellation, and update
// its state, instead of the plain negation of the per-unit pricer below.
//
// Line ids must be schemas.CorrectionLineID(tenant, id, item, action,
// generation): the same correction priced twice (redelivery, or two admins
// publishing the same generation) must produce the same ids.
type CorrectionPricer interface {
	PriceCorrection(c *schemas.Correction, now time.Time) CorrectionOutcome
}

// CorrectionOutcome is what a correction adds: its lines (none when the
// record cannot be priced, e.g. it was unrated), and otherwise the reason.
type CorrectionOutcome struct {
	Lines    []schemas.RatedLine
	Unpriced *schemas.Unrated
}

// listCorrections prices corrections of price-list tenants.
type listCorrections struct{ pl *pricelist.List }

// PriceCorrection prices the record again exactly as Rate priced it (same
// price list, same event time, so the same amount and period) and emits that
// line negated for an invalidation or as it is for a cancellation. Per-unit
// prices do not depend on other records, so the negation is exactly what the
// record added to the period. Quantity carries the same sign as the amount,
// so summed quantities drop and come back too.
func (lc listCorrections) PriceCorrection(c *schemas.Correction, now time.Time) CorrectionOutcome {
	o := lc.pl.Rate(&c.Event, now)
	if o.Line == nil {
		return CorrectionOutcome{Unpriced: o.Unrated}
	}
	l := *o.Line
	l.LineID = schemas.CorrectionLineID(c.Event.Tenant, c.Event.ID, l.Item, c.Action, c.Generation)
	if c.Action == schemas.ActionInvalidate {
		l.Amount = l.Amount.Neg()
		l.Event.Quantity = l.Event.Quantity.Neg()
	}
	return CorrectionOutcome{Lines: []schemas.RatedLine{l}}
}
