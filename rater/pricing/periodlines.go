package pricing

import (
	"github.com/shopspring/decimal"
)

// HasPeriodLines reports whether a service contract's plan version in force
// on the last day of a billing period it covers can charge period lines —
// a commitment (TrueUp), fee minimums without usage (IdleMinimums) or a
// time-weighted fee, priced at the period's end (Batch.PeriodEndOf) — so a
// caller reads the period's records only for contracts that need them.
func (e *Engine) HasPeriodLines(contractID string, id PeriodID) bool {
	pv := e.lastPlanVersion(contractID, id)
	return pv != nil && (pv.idleMinimum || pv.commitment != nil || pv.timeWeighted())
}

// HasTimeWeighted reports whether a service contract's plan version in
// force on the last day of a billing period it covers has a time-weighted
// fee (the emitter then also looks for period-end lines to write at zero).
func (e *Engine) HasTimeWeighted(contractID string, id PeriodID) bool {
	pv := e.lastPlanVersion(contractID, id)
	return pv != nil && pv.timeWeighted()
}

// lastPlanVersion is the plan version of a service contract in force on
// the last day of a billing period it covers, or nil.
func (e *Engine) lastPlanVersion(contractID string, id PeriodID) *planVersion {
	k := e.contracts[contractID]
	if k == nil {
		return nil
	}
	b := k.basic
	p := b.period(id)
	first, last := max(dayOf(p.Start), k.start, b.start), min(dayOf(p.End), k.end, b.end)
	if first > last {
		return nil
	}
	for i := range k.terms {
		if tm := &k.terms[i]; last >= tm.start && last <= tm.end {
			return versionAt(tm.plan.versions, dateOf(last).In(b.loc).UnixNano())
		}
	}
	return nil
}

// timeWeighted reports whether any version of a fee of the plan version
// meters an element with a time_weighted version.
func (pv *planVersion) timeWeighted() bool {
	for _, f := range pv.fees {
		for _, v := range f.versions {
			if !v.metered || v.element == nil {
				continue
			}
			for _, ev := range v.element.versions {
				if ev.aggCode == aggTimeWeighted {
					return true
				}
			}
		}
	}
	return false
}

// PeriodEndOf returns the period-end amounts of a service contract's
// time-weighted charges of a billing period (PeriodEnd), in the batch's
// order. The stream's fixed-fee emitter writes them once the period ended
// and the receivable batch adds them to the charges' (zero) lines, so both
// bill the same amount.
func (b *Batch) PeriodEndOf(contractID string, id PeriodID) []PeriodEndLine {
	if b == nil {
		return nil
	}
	var out []PeriodEndLine
	for _, l := range b.PeriodEnd {
		if l.Key.Contract == contractID && l.Key.Period == id {
			out = append(out, l)
		}
	}
	return out
}

// Item names a fixed line's charge item (after "contract/" in a stream line):
// the fee code for a fixed fee, the fee code and "#minimum" for an idle
// minimum, "#commitment" for a true-up. '#' is in no code, so neither
// collides with a fee's item.
func (l *FixedLine) Item() string {
	switch {
	case l.TrueUp:
		return "#commitment"
	case l.IdleMinimum:
		return l.Fee + "#minimum"
	}
	return l.Fee
}

// PeriodLines returns the lines a service contract is charged for a billing
// period as a whole, once its usage is known: the fee minimums of metered
// fees without a record in the period (IdleMinimums) and then the
// commitment true-up (TrueUp), whose "used" is what the contract's lines of
// the period charged before discounts — its fixed fees (FixedCharges), its
// idle minimums and its metered charges in batch (time-weighted ones at
// their period-end amount, Batch.PeriodEndOf). batch is the RatePeriod
// result of the contract's customer over records of any period (nil: none);
// only the contract's charges of the period count. This is the one code
// path of the stream's emitter (rater.FixedFees), the receivable batch
// (billing.Tenant.Charges) and `kakin rate`, so all three give the same
// lines.
//
// With all, every line the contract could be charged is returned, those not
// due with a zero Amount and Discount: an idle minimum of a fee that had
// records, a true-up of a commitment the usage met. The stream writes them
// too, so a line written before late usage made it not due is replaced by
// zero under its id, whatever the emitter remembers.
func (e *Engine) PeriodLines(contractID string, id PeriodID, batch *Batch, all bool) ([]FixedLine, error) {
	fixed, err := e.FixedCharges(contractID, id)
	if err != nil {
		return nil, err
	}
	used := decimal.Zero
	for _, l := range fixed {
		used = used.Add(l.Amount.Sub(l.Discount))
	}
	usedFee := map[string]bool{}
	if batch != nil {
		for i := range batch.Lines {
			l := &batch.Lines[i]
			if l.Key.Contract == contractID && l.Key.Period == id {
				used = used.Add(l.Line.Decimal().Sub(l.Line.DiscountDecimal()))
			}
		}
		for _, l := range batch.PeriodEndOf(contractID, id) {
			used = used.Add(l.Line.Decimal().Sub(l.Line.DiscountDecimal()))
		}
		for k, st := range batch.States {
			if k.Contract == contractID && k.Period == id && !st.Empty() {
				usedFee[k.Fee] = true
			}
		}
	}
	due, err := e.IdleMinimums(contractID, id, func(fee string) bool { return usedFee[fee] })
	if err != nil {
		return nil, err
	}
	var out []FixedLine
	if all {
		every, err := e.IdleMinimums(contractID, id, func(string) bool { return false })
		if err != nil {
			return nil, err
		}
		for _, l := range every {
			if usedFee[l.Fee] {
				l.Amount, l.Discount = decimal.Zero, decimal.Zero
			}
			out = append(out, l)
		}
	} else {
		out = due
	}
	for _, l := range due {
		used = used.Add(l.Amount.Sub(l.Discount))
	}
	up, err := e.TrueUp(contractID, id, used)
	if err != nil {
		return nil, err
	}
	if up == nil && all {
		// Not due: the line a zero usage would have been, at zero.
		if up, err = e.TrueUp(contractID, id, decimal.Zero); err != nil {
			return nil, err
		}
		if up != nil {
			up.Amount = decimal.Zero
		}
	}
	if up != nil {
		out = append(out, *up)
	}
	return out, nil
}
