package pricing

import (
	"errors"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// Batch is the result of rating a sequence of events from empty states.
type Batch struct {
	Lines   []BatchLine
	Unrated []BatchUnrated
	// States holds each charge's final running state.
	States map[Key]*State
	// PeriodEnd holds the amounts of the time-weighted charges (their
	// lines are zero: the level-time is known once the period has ended),
	// one per charge, in order of the charges' first records.
	PeriodEnd []PeriodEndLine
}

// BatchLine is the line of one event under one charge.
type BatchLine struct {
	Event    int // index of the event in the input
	Key      Key
	Plan     string
	Currency string
	Line     Line
	// UnitPrice is the charge's price per unit when UnitPriced (per_unit
	// rates only; see Charge.UnitPrice).
	UnitPrice  decimal.Decimal
	UnitPriced bool
	// Records and Quantity are the charge's running state after the event
	// (its records and aggregated quantity, before per-period rounding).
	Records  uint64
	Quantity decimal.Decimal
}

// BatchUnrated is an event that could not be priced.
type BatchUnrated struct {
	Event  int
	Reason *Unrated
}

// CustomerPeriod identifies a customer's charges of one period in one
// currency.
type CustomerPeriod struct {
	Customer string
	Period   PeriodID
	Currency string
}

// RatePeriod rates events in the order given, each against fresh running
// states (nothing carried over from a stream), exactly as the streaming rater
// does one event at a time. Re-rating a period is RatePeriod over the
// period's records in their original order (for order-independent setups,
// any order gives the same totals); the lines replace the superseded ones
// (same event, same key).
func (e *Engine) RatePeriod(events []schemas.UsageEvent) *Batch {
	b := &Batch{States: map[Key]*State{}}
	var buf []Charge
	var tw timeWeightedSet
	for i := range events {
		ev := &events[i]
		charges, err := e.Resolve(ev, buf)
		buf = charges
		if err != nil {
			b.Unrated = append(b.Unrated, BatchUnrated{Event: i, Reason: asUnrated(err)})
			continue
		}
		// All charges of an event or none: price against copies first.
		type step struct {
			st   *State
			next State
			line Line
		}
		steps := make([]step, 0, len(charges))
		var failed error
		for j := range charges {
			c := &charges[j]
			st := b.States[c.Key]
			if st == nil {
				st = &State{}
			}
			next := cloneState(st)
			line, err := c.Apply(&next, ev)
			if err != nil {
				failed = err
				break
			}
			steps = append(steps, step{st, next, line})
		}
		if failed != nil {
			b.Unrated = append(b.Unrated, BatchUnrated{Event: i, Reason: asUnrated(failed)})
			continue
		}
		for j, s := range steps {
			c := &charges[j]
			if c.agg == aggTimeWeighted {
				tw.add(c, i)
			}
			*s.st = s.next
			b.States[c.Key] = s.st
			unit, priced := c.UnitPrice()
			b.Lines = append(b.Lines, BatchLine{Event: i, Key: c.Key, Plan: c.Plan, Currency: c.Currency, Line: s.line,
				UnitPrice: unit, UnitPriced: priced, Records: s.st.Records(), Quantity: s.st.Quantity()})
		}
	}
	b.PeriodEnd = tw.price(events)
	return b
}

func cloneState(s *State) State {
	n := *s
	n.uniques = append([]uniqueValue(nil), s.uniques...)
	return n
}

func asUnrated(err error) *Unrated {
	var u *Unrated
	if errors.As(err, &u) {
		return u
	}
	return &Unrated{Code: schemas.ReasonMalformed, Reason: err.Error()}
}

// Totals sums the lines per charge, in minor units.
func (b *Batch) Totals() map[Key]int64 {
	out := map[Key]int64{}
	for _, l := range b.Lines {
		out[l.Key] += l.Line.Amount
	}
	return out
}

// CustomerTotals sums the lines per customer, period and currency, in minor
// units.
func (b *Batch) CustomerTotals() map[CustomerPeriod]int64 {
	out := map[CustomerPeriod]int64{}
	for _, l := range b.Lines {
		out[CustomerPeriod{l.Key.Customer, l.Key.Period, l.Currency}] += l.Line.Amount
	}
	return out
}
