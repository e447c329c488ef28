package pricing

import (
	"github.com/kakin-dev/kakin/catalog"
	"github.com/shopspring/decimal"
)

// The cost of a charge's running state, twice: exactly in decimal.Decimal
// (the reference, every model and discount) and on the fixed-point fast path
// (per unit, graduated, volume, package and overage without discounts). Both
// return the amount before currency rounding.

// costDec prices a period quantity with the rate version (not percentage,
// which is priced per transaction).
func (r *rateVersion) costDec(q decimal.Decimal) decimal.Decimal {
	switch r.model {
	case catalog.ModelPerUnit:
		return q.Mul(r.unit.d)
	case catalog.ModelGraduated:
		// Each tier's units at that tier's price; a tier's flat fee once the
		// quantity enters the tier (q > from; q >= from with from bounds).
		total := decimal.Zero
		for i := range r.tiers {
			t := &r.tiers[i]
			if c := q.Cmp(t.from.d); c < 0 || c == 0 && !r.fromBounds {
				break
			}
			upper := q
			if !t.open && q.Cmp(t.upTo.d) > 0 {
				upper = t.upTo.d
			}
			total = total.Add(clampDec(upper.Sub(t.from.d).Mul(t.unit.d).Add(t.flat.d), t.min, t.max))
		}
		return total
	case catalog.ModelVolume:
		// Every unit at the price of the tier the quantity reaches (from <
		// q <= up_to), plus that tier's flat fee; nothing for 0. With from
		// bounds the tier is from <= q < up_to, and 0 is in the first tier.
		if q.Sign() == 0 && !r.fromBounds {
			return decimal.Zero
		}
		for i := range r.tiers {
			t := &r.tiers[i]
			if t.open {
				return clampDec(q.Mul(t.unit.d).Add(t.flat.d), t.min, t.max)
			}
			if c := q.Cmp(t.upTo.d); c < 0 || c == 0 && !r.fromBounds {
				return clampDec(q.Mul(t.unit.d).Add(t.flat.d), t.min, t.max)
			}
		}
		return decimal.Zero // beyond a closed last tier: refused before pricing (above_last_tier)
	case catalog.ModelPackage:
		p := r.pkg
		if q.Cmp(p.free.d) <= 0 {
			return decimal.Zero
		}
		blocks, rem := q.Sub(p.free.d).QuoRem(p.size.d, 0)
		if p.up && rem.Sign() > 0 {
			blocks = blocks.Add(decimal.NewFromInt(1))
		}
		return blocks.Mul(p.price.d)
	case catalog.ModelOverage:
		o := r.over
		if q.Cmp(o.included.d) <= 0 {
			return decimal.Zero
		}
		return q.Sub(o.included.d).Mul(o.unit.d)
	}
	return decimal.Zero
}

// costFast is costDec on the fixed-point path: q × 10^9 in, amount × 10^18
// out; false when a value does not fit (the caller then uses costDec).
func (r *rateVersion) costFast(q u128) (u128, bool) {
	if q.hi != 0 {
		return u128{}, false
	}
	x := q.lo
	switch r.model {
	case catalog.ModelPerUnit:
		return mul64(x, r.unit.raw), true
	case catalog.ModelGraduated:
		var total u128
		for i := range r.tiers {
			t := &r.tiers[i]
			if x < t.from.raw || x == t.from.raw && !r.fromBounds {
				break
			}
			upper := x
			if !t.open && x > t.upTo.raw {
				upper = t.upTo.raw
			}
			amt, ok := mul64(upper-t.from.raw, t.unit.raw).add(t.flatAmt)
			if !ok {
				return u128{}, false
			}
			if t.min != nil || t.max != nil {
				if amt, ok = clampFast(amt, t.min, t.max); !ok {
					return u128{}, false
				}
			}
			if total, ok = total.add(amt); !ok {
				return u128{}, false
			}
		}
		return total, true
	case catalog.ModelVolume:
		if x == 0 && !r.fromBounds {
			return u128{}, true
		}
		for i := range r.tiers {
			t := &r.tiers[i]
			if t.open || x < t.upTo.raw || x == t.upTo.raw && !r.fromBounds {
				amt, ok := mul64(x, t.unit.raw).add(t.flatAmt)
				if ok && (t.min != nil || t.max != nil) {
					amt, ok = clampFast(amt, t.min, t.max)
				}
				return amt, ok
			}
		}
		return u128{}, true
	case catalog.ModelPackage:
		p := r.pkg
		if x <= p.free.raw {
			return u128{}, true
		}
		n := x - p.free.raw
		blocks, rem := n/p.size.raw, n%p.size.raw
		if p.up && rem != 0 {
			blocks++
		}
		return p.priceAmt.mul64(blocks)
	case catalog.ModelOverage:
		o := r.over
		if x <= o.included.raw {
			return u128{}, true
		}
		return mul64(x-o.included.raw, o.unit.raw), true
	}
	return u128{}, false
}

// clampDec bounds an amount by a minimum and a maximum (either may be nil).
func clampDec(a decimal.Decimal, lo, hi *bound) decimal.Decimal {
	if lo != nil && a.LessThan(lo.d) {
		a = lo.d
	}
	if hi != nil && a.GreaterThan(hi.d) {
		a = hi.d
	}
	return a
}

// clampFast is clampDec on the fast path (false: a bound does not fit it).
func clampFast(a u128, lo, hi *bound) (u128, bool) {
	if lo != nil {
		if !lo.ok {
			return u128{}, false
		}
		if a.cmp(lo.fast) < 0 {
			a = lo.fast
		}
	}
	if hi != nil {
		if !hi.ok {
			return u128{}, false
		}
		if a.cmp(hi.fast) > 0 {
			a = hi.fast
		}
	}
	return a, true
}

// quantityDec is the state's quantity as priced: with per-period quantity
// rounding applied.
func (c *Charge) quantityDec(t tally) decimal.Decimal {
	q := decimalOf(t.qty, qtyScale)
	if r := c.el.round; r != nil && !r.record && c.rate.model != catalog.ModelPercentage {
		q = roundQuantityDec(q, r.inc, r.mode)
	}
	return q
}

// grossDec is the charge's amount for a state before discounts: the model's
// cost bounded by the fee's minimum (once the period has usage) and maximum.
func (c *Charge) grossDec(t tally) decimal.Decimal {
	if t.records == 0 {
		return decimal.Zero
	}
	var amt decimal.Decimal
	if c.rate.model == catalog.ModelPercentage {
		amt = decimalOf(t.charged, amountScale)
	} else if c.rate.capacity != nil {
		amt = c.rate.capacityDec(t)
	} else {
		amt = c.rate.costDec(c.quantityDec(t))
	}
	if rc := c.choice; rc != nil && (rc.min != nil || rc.max != nil) {
		amt = clampDec(amt, rc.min, rc.max)
	}
	if m := c.fee.min; m != nil && amt.LessThan(m.d) {
		amt = m.d
	}
	if m := c.fee.max; m != nil && amt.GreaterThan(m.d) {
		amt = m.d
	}
	return amt
}

// grossFast is grossDec on the fast path.
func (c *Charge) grossFast(t tally) (u128, bool) {
	if t.records == 0 {
		return u128{}, true
	}
	q := t.qty
	if r := c.el.round; r != nil && !r.record {
		if !r.fast {
			return u128{}, false
		}
		var ok bool
		if q, ok = roundQuantityFast(q, r.incFast, r.mode); !ok {
			return u128{}, false
		}
	}
	var amt u128
	var ok bool
	if c.rate.capacity != nil {
		amt, ok = c.rate.capacityFast(t)
	} else {
		amt, ok = c.rate.costFast(q)
	}
	if !ok {
		return u128{}, false
	}
	if rc := c.choice; rc != nil && (rc.min != nil || rc.max != nil) {
		if amt, ok = clampFast(amt, rc.min, rc.max); !ok {
			return u128{}, false
		}
	}
	if m := c.fee.min; m != nil {
		if !m.ok {
			return u128{}, false
		}
		if amt.cmp(m.fast) < 0 {
			amt = m.fast
		}
	}
	if m := c.fee.max; m != nil {
		if !m.ok {
			return u128{}, false
		}
		if amt.cmp(m.fast) > 0 {
			amt = m.fast
		}
	}
	return amt, true
}

// netDec applies the charge's discounts, in order, each to what the earlier
// ones left. A discount's tier is chosen by the period quantity (basis
// quantity) or by the amount it applies to (basis amount); a percentage takes
// that share of the amount, a fixed discount that many currency units. A
// discount never takes the amount below zero unless its table allows credit.
func (c *Charge) netDec(t tally, gross decimal.Decimal) decimal.Decimal {
	if c.discMask == 0 || t.records == 0 {
		return gross
	}
	return applyDiscounts(c.discounts, c.discMask, c.at, gross, func() decimal.Decimal { return c.quantityDec(t) }, nil)
}

// applyDiscounts applies the discounts selected by mask to amt. prorate,
// when not nil, turns a fixed discount's value into what it takes off a
// pro-rated line (FixedCharges: the fee's own pro-ration).
func applyDiscounts(discounts []*discount, mask uint64, at int64, amt decimal.Decimal, quantity func() decimal.Decimal,
	prorate func(decimal.Decimal) decimal.Decimal) decimal.Decimal {
	var q decimal.Decimal
	qDone := false
	for i, d := range discounts {
		if mask&(1<<uint(i)) == 0 {
			continue
		}
		v := versionAt(d.table.versions, at)
		if v == nil {
			continue
		}
		basis := amt
		if !v.byAmount {
			if !qDone {
				q, qDone = quantity(), true
			}
			basis = q
		}
		value, ok := discountValue(v.tiers, basis)
		if !ok {
			continue
		}
		var off decimal.Decimal
		if v.percentage {
			if amt.Sign() > 0 {
				off = amt.Mul(value).Shift(-2) // exact: value / 100
			}
		} else {
			off = value
			if prorate != nil {
				off = prorate(value)
			}
		}
		if !v.credit {
			room := amt
			if room.Sign() < 0 {
				room = decimal.Zero
			}
			if off.GreaterThan(room) {
				off = room
			}
		}
		amt = amt.Sub(off)
	}
	return amt
}

// discountValue is the value of the last tier whose From is at or below basis.
func discountValue(tiers []catalog.DiscountTier, basis decimal.Decimal) (decimal.Decimal, bool) {
	found := false
	var v decimal.Decimal
	for _, t := range tiers {
		if t.From.Cmp(basis) > 0 {
			break
		}
		v, found = t.Value, true
	}
	return v, found
}

// charge prices one transaction of amount a, the k-th of the period, when
// the period's earlier transactions sum to before (× 10^9). See
// catalog.Percentage for the free allowance.
func (p *percentageSpec) charge(k uint64, before u128, a decimal.Decimal) decimal.Decimal {
	freeN, freeAmt := p.freeTx, p.freeAmount.d
	aBefore := decimalOf(before, qtyScale)
	active := (freeN == 0 || k <= uint64(freeN)) && (freeAmt.Sign() == 0 || aBefore.LessThan(freeAmt))
	waived := active && freeN > 0
	chargeable := a
	if active && freeAmt.Sign() > 0 {
		chargeable = a.Sub(freeAmt.Sub(aBefore))
		if chargeable.Sign() < 0 {
			chargeable = decimal.Zero
		}
	}
	ch := chargeable.Mul(p.rate.d)
	if !waived {
		ch = ch.Add(p.fee.d)
	}
	covered := active && (freeN > 0 || freeAmt.Sign() > 0) && chargeable.Sign() == 0 && (waived || p.fee.d.Sign() == 0)
	if !covered {
		if p.min != nil && ch.LessThan(*p.min) {
			ch = *p.min
		}
		if p.max != nil && ch.GreaterThan(*p.max) {
			ch = *p.max
		}
	}
	return ch
}

// hasAllowance reports whether transactions' charges depend on earlier ones.
func (p *percentageSpec) hasAllowance() bool {
	return p.freeTx > 0 || p.freeAmount.d.Sign() > 0
}
