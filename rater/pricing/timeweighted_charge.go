package pricing

import (
	"sort"

	"github.com/kakin-dev/kakin/money"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// Time-weighted charges (element aggregation time_weighted). Each record
// sets its charge's level from its time on; the period's quantity is the
// level-time of the whole billing period in the element's time unit
// (TimeWeighted: seat-days with time_unit day, GB-months with period; the
// level is zero before the period's first record and holds until the
// period's end), priced like any period quantity (rate table, rates entry
// and fee bounds, discounts, rounding). The amount depends on time still to
// come, so the stream's lines of such a charge are zero and the charge is
// priced once its period has ended: PeriodEnd lines, from the period's
// records (RatePeriod fills Batch.PeriodEnd; the rater's fixed-fee emitter
// writes them once the period ended and the receivable batch bills them,
// both through Batch.PeriodEndOf from the same records). Correction: removing
// a level change (an invalidated record) is ErrNeedsRecompute, the period
// re-rated without it — the level before it then holds until the next
// change.

// aggTimeWeighted is the state's aggregation code of a time-weighted
// charge.
const aggTimeWeighted uint8 = 7

// PeriodEndLine is the amount of a time-weighted charge for its period.
type PeriodEndLine struct {
	Key      Key
	Plan     string
	Currency string
	// Line is the charge's amount, rounded like a period-rounded charge's
	// total (its Discount what discounts changed it by).
	Line Line
	// Records is how many level changes the period had; Quantity the
	// level-time in the element's unit, before per-period rounding.
	Records  uint64
	Quantity decimal.Decimal
	// Reason, when not nil, says why the charge cannot be priced (the
	// quantity is beyond a closed last tier); Line is then zero.
	Reason *Unrated
}

// timeWeightedSet collects the time-weighted charges of a batch: the last
// charge seen of each key (the versions of its latest record) and its
// records' indexes.
type timeWeightedSet struct {
	order []Key
	by    map[Key]*twCharge
}

type twCharge struct {
	charge Charge
	events []int
}

func (s *timeWeightedSet) add(c *Charge, event int) {
	if s.by == nil {
		s.by = map[Key]*twCharge{}
	}
	t := s.by[c.Key]
	if t == nil {
		t = &twCharge{}
		s.by[c.Key] = t
		s.order = append(s.order, c.Key)
	}
	t.charge = *c
	t.events = append(t.events, event)
}

func (s *timeWeightedSet) price(events []schemas.UsageEvent) []PeriodEndLine {
	var out []PeriodEndLine
	for _, k := range s.order {
		t := s.by[k]
		out = append(out, t.charge.periodEnd(events, t.events))
	}
	return out
}

// periodEnd prices a time-weighted charge from its period's records (the
// indexes idx into events, in stream order; equal instants: the later
// record sets the level).
func (c *Charge) periodEnd(events []schemas.UsageEvent, idx []int) PeriodEndLine {
	out := PeriodEndLine{Key: c.Key, Plan: c.Plan, Currency: c.Currency, Records: uint64(len(idx)), Line: Line{Places: c.places}}
	changes := make([]LevelChange, 0, len(idx))
	for _, i := range idx {
		r, err := c.record(&events[i])
		if err != nil {
			out.Reason = asUnrated(err)
			return out
		}
		changes = append(changes, LevelChange{At: events[i].Time, Level: decimalOf(r.qty, qtyScale)})
	}
	sort.SliceStable(changes, func(a, b int) bool { return changes[a].At.Before(changes[b].At) })
	q, err := TimeWeighted(changes, c.Period.Start, c.Period.End, c.Period.Location, c.el.timeUnit)
	if err != nil {
		out.Reason = asUnrated(err)
		return out
	}
	out.Quantity = q
	tq, ok := u128Of(q, qtyScale)
	if !ok {
		out.Reason = errOverflow
		return out
	}
	var none [len(State{}.peaks)]u128
	t := tally{records: uint64(len(idx)), qty: tq, peaks: &none}
	if c.rate.closed {
		if err := c.checkLimit(t); err != nil {
			out.Reason = asUnrated(err)
			return out
		}
	}
	gross := c.grossDec(t)
	net := c.netDec(t, gross)
	g, ok1 := minorOf(money.Round(gross, c.places, c.mode), c.places)
	n, ok2 := minorOf(money.Round(net, c.places, c.mode), c.places)
	if !ok1 || !ok2 {
		out.Reason = errOverflow
		return out
	}
	out.Line = Line{Amount: n, Discount: n - g, Places: c.places}
	return out
}
