package pricing

import (
	"errors"
	"fmt"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
	"github.com/zeebo/xxh3"
)

// Charge is one fee an event is priced under: the running charge it adds to
// (Key), its billing period and currency, and the compiled versions valid at
// the event's time. Resolve fills a slice of them; Apply prices the event.
type Charge struct {
	Key      Key
	Period   Period
	Currency string
	Plan     string // price plan code
	// RoundLine is the plan's rounding point: true rounds each line's raw
	// amount, false (period) rounds the running total.
	RoundLine bool

	places    int32
	mode      money.Mode
	fee       *feeVersion
	el        *elementVersion
	agg       uint8
	rate      *rateVersion
	choice    *rateChoice // the rates entry: its amount bounds
	discounts []*discount
	discMask  uint64
	at        int64 // event time, Unix ns: selects the discount table version
	fast      bool
	unit      int // capacity: the index of the event's element among the units
}

// Line is the amount an event adds to a charge: cost(state after) − cost(state
// before), in minor units of the charge's currency (with the receivable
// rounding point, in units of 10^-Places, the plan's precision). With the period rounding
// point it is round(after) − round(before), so a charge's lines always sum to
// its rounded period total; with the line rounding point it is the raw
// difference rounded. Amounts may be negative (a volume tier with a lower
// price, a correction).
type Line struct {
	Amount   int64 // after discounts
	Discount int64 // what discounts changed the amount by: Amount − (amount before discounts)
	Places   int32 // the currency's minor-unit digits
}

// Decimal is the line's amount as a decimal in currency units.
func (l Line) Decimal() decimal.Decimal { return decimal.New(l.Amount, -l.Places) }

// DiscountDecimal is the discount part in currency units.
func (l Line) DiscountDecimal() decimal.Decimal { return decimal.New(l.Discount, -l.Places) }

// Unrated is why an event cannot be priced: a schemas.Reason* code and a
// sentence for people.
type Unrated struct {
	Code   string
	Reason string
}

func (u *Unrated) Error() string { return u.Code + ": " + u.Reason }

func unrated(code, format string, args ...any) error {
	return &Unrated{Code: code, Reason: fmt.Sprintf(format, args...)}
}

var (
	errOverflow = &Unrated{Code: schemas.ReasonOverflow,
		Reason: "a quantity or amount is outside the exact range (negative, over 9 decimal places, or beyond 128 bits)"}
	errAggChanged = &Unrated{Code: schemas.ReasonAggregationChanged,
		Reason: "the element's aggregation (or a switch to or from the percentage model) changed inside the billing period; re-rate the period"}
)

// Apply adds the event's record to the charge's running state and returns
// the line. On error the state is unchanged (an *Unrated for records that
// cannot be priced).
func (c *Charge) Apply(s *State, ev *schemas.UsageEvent) (Line, error) {
	r, err := c.record(ev)
	if err != nil {
		return Line{}, err
	}
	n, ins, err := s.next(c.agg, r)
	if err != nil {
		return Line{}, stateErr(err)
	}
	if c.rate.model == catalog.ModelPercentage {
		ch, ok := u128Of(c.rate.pct.charge(n.records, s.qty, decimalOf(r.qty, qtyScale)), amountScale)
		if !ok {
			return Line{}, errOverflow
		}
		if n.charged, ok = s.charged.add(ch); !ok {
			return Line{}, errOverflow
		}
	}
	if c.rate.closed {
		if err := c.checkLimit(n.tally()); err != nil {
			return Line{}, err
		}
	}
	line, err := c.delta(s.tally(), n.tally())
	if err != nil {
		return Line{}, err
	}
	s.commit(n, c.agg, r, ins)
	return line, nil
}

// Remove takes a record applied earlier out of the running state (a
// correction invalidating it) and returns the line that reverses its effect:
// cost(state − record) − cost(state). Applying the record again reinstates
// it. Sum, count and unique_count are always invertible (unique_count keeps a
// count per distinct value); max and latest are invertible unless the removed
// record is the only one at the maximum or is the latest, and percentage
// unless the table has a free allowance (which makes a transaction's charge
// depend on the earlier ones). In those cases Remove returns
// ErrNeedsRecompute and leaves the state unchanged: re-rate the period
// without the record (RatePeriod) and replace its lines.
func (c *Charge) Remove(s *State, ev *schemas.UsageEvent) (Line, error) {
	r, err := c.record(ev)
	if err != nil {
		return Line{}, err
	}
	n, del, err := s.prev(c.agg, r)
	if err != nil {
		return Line{}, stateErr(err)
	}
	if c.rate.model == catalog.ModelPercentage {
		if c.rate.pct.hasAllowance() {
			return Line{}, ErrNeedsRecompute
		}
		ch, ok := u128Of(c.rate.pct.charge(1, u128{}, decimalOf(r.qty, qtyScale)), amountScale)
		if !ok {
			return Line{}, errOverflow
		}
		if ch.cmp(s.charged) > 0 {
			return Line{}, errInconsistent
		}
		n.charged = s.charged.sub(ch)
	}
	if c.rate.closed {
		if err := c.checkLimit(n.tally()); err != nil {
			return Line{}, err
		}
	}
	line, err := c.delta(s.tally(), n.tally())
	if err != nil {
		return Line{}, err
	}
	s.commitRemove(n, c.agg, r, del)
	return line, nil
}

func stateErr(err error) error {
	if errors.Is(err, errAggregationChanged) {
		return errAggChanged
	}
	return err
}

// record is the event's contribution: its quantity (× 10^9, rounded per
// record when the element says so) and what max, latest and unique_count
// need.
func (c *Charge) record(ev *schemas.UsageEvent) (record, error) {
	q, ok := u128Of(ev.Quantity, qtyScale)
	if !ok {
		return record{}, errOverflow
	}
	if rd := c.el.round; rd != nil && rd.record {
		if rd.fast {
			q, ok = roundQuantityFast(q, rd.incFast, rd.mode)
		} else {
			q, ok = u128Of(roundQuantityDec(decimalOf(q, qtyScale), rd.inc, rd.mode), qtyScale)
		}
		if !ok {
			return record{}, errOverflow
		}
	}
	r := record{qty: q, unit: c.unit}
	switch c.agg {
	case 4:
		h := xxh3.HashString128(ev.Attributes[c.el.uniqueAttr])
		r.uhi, r.ulo = h.Hi, h.Lo
	case 5, aggTimeWeighted:
		r.at, r.idHash = ev.Time.UnixNano(), xxh3.HashString(ev.ID)
	}
	return r, nil
}

// checkLimit refuses a state whose priced quantity is beyond a closed last
// tier (past its up_to, or at it with from bounds) when the rate table has no
// above_last_tier price: the record is unrated, the state unchanged.
func (c *Charge) checkLimit(t tally) error {
	r := c.rate
	if t.records == 0 {
		return nil
	}
	if r.capacity != nil {
		return c.checkCapacity(t)
	}
	var cmp int
	if rd := c.el.round; r.limit.fast && t.qty.hi == 0 && (rd == nil || rd.record) {
		cmp = 0
		if t.qty.lo > r.limit.raw {
			cmp = 1
		} else if t.qty.lo < r.limit.raw {
			cmp = -1
		}
	} else {
		cmp = c.quantityDec(t).Cmp(r.limit.d)
	}
	if cmp > 0 || cmp == 0 && r.fromBounds {
		bound := "up to "
		if r.fromBounds {
			bound = "below "
		}
		return unrated(schemas.ReasonAboveLastTier, "the period's quantity %s of fee %q is beyond the last tier of rate table %q (%s%s), which has no above_last_tier price",
			c.quantityDec(t), c.Key.Fee, c.Key.Rate, bound, r.limit.d)
	}
	return nil
}

// delta prices the step from state b to state a. A time-weighted charge's
// lines are zero: its amount is known once the period has ended
// (Batch.PeriodEnd).
func (c *Charge) delta(b, a tally) (Line, error) {
	if c.agg == aggTimeWeighted {
		return Line{Places: c.places}, nil
	}
	if c.fast {
		if l, ok := c.deltaFast(b, a); ok {
			return l, nil
		}
	}
	return c.deltaDec(b, a)
}

func (c *Charge) deltaFast(b, a tally) (Line, bool) {
	gb, ok := c.grossFast(b)
	if !ok {
		return Line{}, false
	}
	ga, ok := c.grossFast(a)
	if !ok {
		return Line{}, false
	}
	if c.RoundLine {
		m, ok := roundDelta(ga, gb, c.places, c.mode)
		return Line{Amount: m, Places: c.places}, ok
	}
	mb, ok := roundMinor(gb, c.places, c.mode)
	if !ok {
		return Line{}, false
	}
	ma, ok := roundMinor(ga, c.places, c.mode)
	if !ok {
		return Line{}, false
	}
	return Line{Amount: ma - mb, Places: c.places}, true
}

func (c *Charge) deltaDec(b, a tally) (Line, error) {
	gb, ga := c.grossDec(b), c.grossDec(a)
	nb, na := c.netDec(b, gb), c.netDec(a, ga)
	var gross, net decimal.Decimal
	if c.RoundLine {
		gross = money.Round(ga.Sub(gb), c.places, c.mode)
		net = money.Round(na.Sub(nb), c.places, c.mode)
	} else {
		gross = money.Round(ga, c.places, c.mode).Sub(money.Round(gb, c.places, c.mode))
		net = money.Round(na, c.places, c.mode).Sub(money.Round(nb, c.places, c.mode))
	}
	g, ok := minorOf(gross, c.places)
	if !ok {
		return Line{}, errOverflow
	}
	n, ok := minorOf(net, c.places)
	if !ok {
		return Line{}, errOverflow
	}
	return Line{Amount: n, Discount: n - g, Places: c.places}, nil
}

// Total is the charge's rounded amount for a state (after discounts), in
// minor units: what the lines of a period-rounded charge sum to.
func (c *Charge) Total(s *State) (int64, error) {
	if c.agg == aggTimeWeighted {
		return 0, nil // priced at the period's end (Batch.PeriodEnd)
	}
	t := s.tally()
	if c.fast {
		if g, ok := c.grossFast(t); ok {
			if m, ok := roundMinor(g, c.places, c.mode); ok {
				return m, nil
			}
		}
	}
	n := c.netDec(t, c.grossDec(t))
	m, ok := minorOf(money.Round(n, c.places, c.mode), c.places)
	if !ok {
		return 0, errOverflow
	}
	return m, nil
}

// Model is the pricing model of the rate-table version the charge uses.
func (c *Charge) Model() catalog.Model { return c.rate.model }

// UnitPrice is the price per unit of a per_unit charge (false for other
// models, whose price per unit depends on the period's quantity).
func (c *Charge) UnitPrice() (decimal.Decimal, bool) {
	if c.rate.model != catalog.ModelPerUnit {
		return decimal.Decimal{}, false
	}
	return c.rate.unit.d, true
}
