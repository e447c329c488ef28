package pricing

import (
	"fmt"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
	"github.com/shopspring/decimal"
)

// FixedLine is a fixed (定額) fee charged to a service contract for a billing
// period.
type FixedLine struct {
	Contract   string
	Plan       string
	Fee        string
	Period     PeriodID
	Recurrence catalog.Recurrence
	Timing     catalog.Timing
	// From and To are the days the charge pays for (inclusive); for a
	// yearly fee, the covered part of the service year.
	From, To catalog.Date
	// BillOn is the day the charge is due: the first covered day (advance,
	// one-time) or the last day of the period or service year (arrears).
	BillOn   catalog.Date
	Days     int             // covered days
	Factor   decimal.Decimal // pro-ration factor as a fraction, exact to 18 places (1 when not pro-rated)
	Quantity int64           // the contract's quantity
	Amount   decimal.Decimal // amount × quantity × pro-ration, discounted, rounded to the currency
	Discount decimal.Decimal // what discounts changed Amount by (≤ 0)
	Currency string
	// IdleMinimum marks a metered fee's minimum charged for a period in
	// which the fee had no record (IdleMinimums); Quantity is then 0.
	IdleMinimum bool
	// TrueUp marks a plan's commitment true-up (TrueUp); Fee is then empty
	// and Quantity 0.
	TrueUp bool
}

// TrueUp returns the commitment true-up of a service contract for a billing
// period, or nil: the commitment of the plan version in force on the
// period's last day the contract covers (at the start of that day),
// pro-rated by covered days / days in the period when the contract covers
// part of it (rounded to the currency with the basic contract's mode), minus
// used — what the contract's lines of the period charged before discounts —
// when positive, due on the period's last day. A commitment is its own line,
// never a fee minimum, and never negative.
func (e *Engine) TrueUp(contractID string, id PeriodID, used decimal.Decimal) (*FixedLine, error) {
	k := e.contracts[contractID]
	if k == nil {
		return nil, fmt.Errorf("pricing: unknown service contract %q", contractID)
	}
	b := k.basic
	p := b.period(id)
	ps, pe := dayOf(p.Start), dayOf(p.End)
	first, last := max(ps, k.start, b.start), min(pe, k.end, b.end)
	if first > last {
		return nil, nil
	}
	var pl *plan
	for i := range k.terms {
		if tm := &k.terms[i]; last >= tm.start && last <= tm.end {
			pl = tm.plan
			break
		}
	}
	if pl == nil {
		return nil, nil
	}
	pv := versionAt(pl.versions, dateOf(last).In(b.loc).UnixNano())
	if pv == nil || pv.commitment == nil {
		return nil, nil
	}
	days, all := int64(last-first+1), int64(pe-ps+1)
	commit := money.Round(*pv.commitment, b.places, b.mode)
	factor := decimal.NewFromInt(1)
	if days != all {
		commit = divRound(pv.commitment.Mul(decimal.NewFromInt(days)), all, b.places, b.mode)
		factor = decimal.NewFromInt(days).DivRound(decimal.NewFromInt(all), 18)
	}
	short := money.Round(commit.Sub(used), b.places, b.mode)
	if short.Sign() <= 0 {
		return nil, nil
	}
	return &FixedLine{Contract: k.id, Plan: pl.code, Period: id, Timing: catalog.Arrears, From: dateOf(first), To: dateOf(last),
		BillOn: p.End, Days: int(days), Factor: factor, Amount: short, Currency: b.currency, TrueUp: true}, nil
}

// IdleMinimums returns the minimums of a service contract's metered fees
// for a billing period in which they had no record, when the plan version
// says so (minimum_without_usage): for each metered fee with a minimum of the
// plan version in force on the period's last day the contract covers (at the
// start of that day), for which used(fee) is false, a line of the minimum
// (not pro-rated, like the minimum of a period with usage), after the
// discount contracts that cover the fee on that day (basis quantity: 0),
// rounded to the currency, due on the period's last day. used reports
// whether any record of the contract was priced under the fee in the period
// (any of its rate tables and split values); the caller knows the period's
// running charges.
func (e *Engine) IdleMinimums(contractID string, id PeriodID, used func(fee string) bool) ([]FixedLine, error) {
	k := e.contracts[contractID]
	if k == nil {
		return nil, fmt.Errorf("pricing: unknown service contract %q", contractID)
	}
	b := k.basic
	p := b.period(id)
	first := max(dayOf(p.Start), k.start, b.start)
	last := min(dayOf(p.End), k.end, b.end)
	if first > last {
		return nil, nil
	}
	var pl *plan
	for i := range k.terms {
		if tm := &k.terms[i]; last >= tm.start && last <= tm.end {
			pl = tm.plan
			break
		}
	}
	if pl == nil {
		return nil, nil
	}
	at := dateOf(last).In(b.loc).UnixNano()
	pv := versionAt(pl.versions, at)
	if pv == nil || !pv.idleMinimum {
		return nil, nil
	}
	var out []FixedLine
	cu := e.customers[k.customer]
	for _, f := range pv.fees {
		fv := versionAt(f.versions, at)
		if fv == nil || !fv.metered || fv.min == nil || used(f.code) {
			continue
		}
		gross := money.Round(fv.min.d, b.places, b.mode)
		net := gross
		var mask uint64
		for i, d := range cu.discounts {
			if last >= d.start && last <= d.end && d.applies(k, pl.code, f.code) {
				mask |= 1 << uint(i)
			}
		}
		if mask != 0 {
			net = money.Round(applyDiscounts(cu.discounts, mask, at, gross, func() decimal.Decimal { return decimal.Zero }, nil), b.places, b.mode)
		}
		out = append(out, FixedLine{Contract: k.id, Plan: pl.code, Fee: f.code, Period: id, Timing: catalog.Arrears,
			From: dateOf(first), To: dateOf(last), BillOn: p.End, Days: int(last - first + 1), Factor: decimal.NewFromInt(1),
			Amount: net, Discount: net.Sub(gross), Currency: b.currency, IdleMinimum: true})
	}
	return out, nil
}

// PeriodAt returns the billing period of a service contract that contains
// the instant t (in the basic contract's time zone and closing day).
func (e *Engine) PeriodAt(contractID string, t time.Time) (Period, error) {
	k := e.contracts[contractID]
	if k == nil {
		return Period{}, fmt.Errorf("pricing: unknown service contract %q", contractID)
	}
	y, m, d := t.In(k.basic.loc).Date()
	return k.basic.periodOf(y, m, d), nil
}

// Period returns a service contract's billing period with the given id.
func (e *Engine) Period(contractID string, id PeriodID) (Period, error) {
	k := e.contracts[contractID]
	if k == nil {
		return Period{}, fmt.Errorf("pricing: unknown service contract %q", contractID)
	}
	return k.basic.period(id), nil
}

// FixedCharges returns the fixed fees a service contract is charged for a
// billing period. It is a pure function of the compiled contract and
// catalogue; the caller decides when to emit the lines (BillOn) and, being
// deterministic, can recompute them after a contract change and replace them.
//
//   - monthly: for each run of days in the period covered by the contract, its
//     basic contract and a price plan whose version (at the start of the day,
//     in the contract's time zone) includes the fee: amount × quantity ×
//     factor, the factor being 1 (proration none, or the whole period
//     covered), covered days / days in the period (actual_days), or
//     min(covered days, 30) / 30 (thirty_day). A plan or version change
//     inside the period splits the run (with thirty_day the parts of a
//     31-day month may then sum to 31/30).
//   - yearly: per service year (from the contract's start date, then each
//     anniversary; 29 February becomes 28 February in common years): amount ×
//     quantity × covered days / days in that year (actual_days) or
//     min(days, 360) / 360 (thirty_day); charged in the period holding the
//     first covered day (advance) or the last covered day (arrears).
//   - weekly: per week from the basic contract's week start (Monday by
//     default), each run of covered days: amount × quantity × factor, the
//     factor 1 (proration none, or the whole week covered) or covered days
//     / 7 (actual_days); billed on the run's first day (advance) or last
//     day (arrears), in the billing period holding that day. With weekly or
//     daily billing periods, monthly fees recur the same way per month (by
//     the closing day), pro-rated by days in that month.
//   - daily: each run of covered days of the period: amount × quantity ×
//     days (Factor is the number of days; a day is never pro-rated).
//   - one_time: the fees of the plan version in force on a price plan term's
//     first covered day, charged in full in the period holding that day.
//
// Each line is rounded to the currency with the basic contract's mode, after
// the customer's discount contracts of the contract's service active on the
// first covered day whose scope matches (basis quantity: the contract
// quantity). A fixed-amount discount on a pro-rated line is pro-rated by the
// line's own factor (same day-count basis) and rounded to the currency.
func (e *Engine) FixedCharges(contractID string, id PeriodID) ([]FixedLine, error) {
	k := e.contracts[contractID]
	if k == nil {
		return nil, fmt.Errorf("pricing: unknown service contract %q", contractID)
	}
	b := k.basic
	p := b.period(id)
	ps, pe := dayOf(p.Start), dayOf(p.End)
	cs, ce := max(k.start, b.start), min(k.end, b.end)
	var out []FixedLine

	// Weekly fees (weeks from the week start) and, with weekly or daily
	// billing periods, monthly fees (months by the closing day) recur on
	// their own cycle, charged in the billing period holding the bill day.
	weekly, err := e.cycleCharges(k, id, ps, pe, cs, ce, catalog.Weekly, func(d int32) (int32, int32) { return b.weekOf(d).dayRange() })
	if err != nil {
		return nil, err
	}
	out = append(out, weekly...)
	if b.cycle != cycleMonthly {
		monthly, err := e.cycleCharges(k, id, ps, pe, cs, ce, catalog.Monthly, func(d int32) (int32, int32) {
			x := dateOf(d)
			m := b.monthOf(x.Year, x.Month, x.Day)
			return dayOf(m.Start), dayOf(m.End)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, monthly...)
	}

	// Daily fees: each covered day at the full amount, one line per run.
	for _, s := range e.fixedRuns(k, max(ps, cs), min(pe, ce), catalog.Daily) {
		days := int64(s.to - s.from + 1)
		billOn := dateOf(s.to)
		if s.fv.timing == catalog.Advance {
			billOn = dateOf(s.from)
		}
		line, err := e.fixedLine(k, s, id, days, 1, int(days), decimal.NewFromInt(days), billOn)
		if err != nil {
			return nil, err
		}
		out = append(out, line)
	}

	// Monthly with monthly billing periods: runs of days inside the period.
	var monthlyRuns []fixedRun
	if b.cycle == cycleMonthly {
		monthlyRuns = e.fixedRuns(k, max(ps, cs), min(pe, ce), catalog.Monthly)
	}
	for _, s := range monthlyRuns {
		days := int(s.to - s.from + 1)
		full := s.from == ps && s.to == pe
		factor := decimal.NewFromInt(1)
		var num, den int64 = 1, 1
		switch s.fv.proration {
		case catalog.ProrateActualDays:
			num, den = int64(days), int64(p.Days())
		case catalog.ProrateThirtyDay:
			if !full {
				num, den = int64(min(days, 30)), 30
			}
		}
		if num != den {
			factor = decimal.NewFromInt(num).DivRound(decimal.NewFromInt(den), 18)
		}
		billOn := p.End
		if s.fv.timing == catalog.Advance {
			billOn = dateOf(s.from)
		}
		line, err := e.fixedLine(k, s, id, num, den, days, factor, billOn)
		if err != nil {
			return nil, err
		}
		out = append(out, line)
	}

	// Yearly: service years from the contract's start date.
	start := dateOf(k.start)
	for n := 0; ; n++ {
		ys, ye := anniversary(start, n), anniversary(start, n+1)-1
		if ys > pe || ys > ce {
			break
		}
		if ye < ps-366 {
			continue
		}
		yearDays := int64(ye - ys + 1)
		for _, s := range e.fixedRuns(k, max(ys, cs), min(ye, ce), catalog.Yearly) {
			billDay := s.from
			if s.fv.timing != catalog.Advance {
				billDay = s.to
			}
			if billDay < ps || billDay > pe {
				continue
			}
			days := int(s.to - s.from + 1)
			full := s.from == ys && s.to == ye
			var num, den int64 = 1, 1
			switch s.fv.proration {
			case catalog.ProrateActualDays:
				num, den = int64(days), yearDays
			case catalog.ProrateThirtyDay:
				if !full {
					num, den = int64(min(days, 360)), 360
				}
			}
			factor := decimal.NewFromInt(1)
			if num != den {
				factor = decimal.NewFromInt(num).DivRound(decimal.NewFromInt(den), 18)
			}
			line, err := e.fixedLine(k, s, id, num, den, days, factor, dateOf(billDay))
			if err != nil {
				return nil, err
			}
			out = append(out, line)
		}
	}

	// One-time: the first covered day of each price plan term.
	for _, tm := range k.terms {
		first := max(tm.start, cs)
		if first > min(tm.end, ce) || first < ps || first > pe {
			continue
		}
		for _, s := range e.fixedRuns(k, first, first, catalog.OneTime) {
			line, err := e.fixedLine(k, s, id, 1, 1, 1, decimal.NewFromInt(1), dateOf(first))
			if err != nil {
				return nil, err
			}
			out = append(out, line)
		}
	}
	return out, nil
}

// cycleCharges charges the fixed fees of a recurrence whose cycles (weeks,
// or months by the closing day) differ from the billing period: for each
// cycle overlapping the period [ps, pe] and each run of days in it the
// contract covers [cs, ce], amount × quantity × factor — 1 (none, or the
// whole cycle covered), covered days / days in the cycle (actual_days: a
// partial week is days / 7), min(covered days, 30) / 30 (thirty_day,
// monthly only) — when the run's bill day (its first day in advance, its
// last in arrears) is in the period.
func (e *Engine) cycleCharges(k *contract, id PeriodID, ps, pe, cs, ce int32, rec catalog.Recurrence, cycle func(int32) (int32, int32)) ([]FixedLine, error) {
	var out []FixedLine
	for d := ps; d <= pe; {
		from, to := cycle(d)
		d = to + 1
		cycleDays := int64(to - from + 1)
		for _, s := range e.fixedRuns(k, max(from, cs), min(to, ce), rec) {
			billDay := s.to
			if s.fv.timing == catalog.Advance {
				billDay = s.from
			}
			if billDay < ps || billDay > pe {
				continue
			}
			days := int(s.to - s.from + 1)
			full := s.from == from && s.to == to
			var num, den int64 = 1, 1
			switch s.fv.proration {
			case catalog.ProrateActualDays:
				num, den = int64(days), cycleDays
			case catalog.ProrateThirtyDay:
				if !full {
					num, den = int64(min(days, 30)), 30
				}
			}
			factor := decimal.NewFromInt(1)
			if num != den {
				factor = decimal.NewFromInt(num).DivRound(decimal.NewFromInt(den), 18)
			}
			line, err := e.fixedLine(k, s, id, num, den, days, factor, dateOf(billDay))
			if err != nil {
				return nil, err
			}
			out = append(out, line)
		}
	}
	return out, nil
}

// fixedRun is a run of consecutive days with the same plan version and fee
// version of a fixed fee.
type fixedRun struct {
	from, to int32
	plan     *plan
	pv       *planVersion
	fee      *fee
	fv       *feeVersion
}

// fixedRuns walks the days [from, to] and returns the runs of the contract's
// fixed fees with the given recurrence.
func (e *Engine) fixedRuns(k *contract, from, to int32, rec catalog.Recurrence) []fixedRun {
	var runs []fixedRun
	open := map[string]int{} // fee code → index of its run ending yesterday
	for d := from; d <= to; d++ {
		var p *plan
		for i := range k.terms {
			if tm := &k.terms[i]; d >= tm.start && d <= tm.end {
				p = tm.plan
				break
			}
		}
		if p == nil {
			continue
		}
		at := dateOf(d).In(k.basic.loc).UnixNano()
		pv := versionAt(p.versions, at)
		if pv == nil {
			continue
		}
		for _, f := range pv.fees {
			fv := versionAt(f.versions, at)
			if fv == nil || fv.metered || fv.recurrence != rec {
				continue
			}
			if i, ok := open[f.code]; ok {
				r := &runs[i]
				if r.to == d-1 && r.pv == pv && r.fv == fv && r.plan == p {
					r.to = d
					continue
				}
			}
			open[f.code] = len(runs)
			runs = append(runs, fixedRun{from: d, to: d, plan: p, pv: pv, fee: f, fv: fv})
		}
	}
	return runs
}

func (e *Engine) fixedLine(k *contract, s fixedRun, id PeriodID, num, den int64, days int, factor decimal.Decimal, billOn catalog.Date) (FixedLine, error) {
	b := k.basic
	// amount × quantity × num / den, rounded exactly (no intermediate
	// rounding of the factor).
	raw := s.fv.amount.Mul(decimal.NewFromInt(k.quantity)).Mul(decimal.NewFromInt(num))
	gross := divRound(raw, den, b.places, b.mode)
	net := gross
	cu := e.customers[k.customer]
	var mask uint64
	for i, d := range cu.discounts {
		if s.from >= d.start && s.from <= d.end && d.applies(k, s.plan.code, s.fee.code) {
			mask |= 1 << uint(i)
		}
	}
	if mask != 0 {
		at := dateOf(s.from).In(b.loc).UnixNano()
		q := decimal.NewFromInt(k.quantity)
		// A fixed discount covers the same part of the period as the fee:
		// value × num / den, rounded to the currency like the fee (Zuora:
		// a fixed-amount discount always prorates).
		var prorate func(decimal.Decimal) decimal.Decimal
		if num != den {
			prorate = func(v decimal.Decimal) decimal.Decimal {
				return divRound(v.Mul(decimal.NewFromInt(num)), den, b.places, b.mode)
			}
		}
		net = money.Round(applyDiscounts(cu.discounts, mask, at, gross, func() decimal.Decimal { return q }, prorate), b.places, b.mode)
	}
	return FixedLine{Contract: k.id, Plan: s.plan.code, Fee: s.fee.code, Period: id, Recurrence: s.fv.recurrence,
		Timing: s.fv.timing, From: dateOf(s.from), To: dateOf(s.to), BillOn: billOn, Days: days, Factor: factor,
		Quantity: k.quantity, Amount: net, Discount: net.Sub(gross), Currency: b.currency}, nil
}

// divRound returns n / d rounded to places with mode, exactly (n ≥ 0, d > 0).
func divRound(n decimal.Decimal, d int64, places int32, mode money.Mode) decimal.Decimal {
	dd := decimal.NewFromInt(d)
	q, r := n.QuoRem(dd, places)
	if r.Sign() == 0 {
		return q
	}
	ulp := decimal.New(1, -places)
	switch mode {
	case money.Down:
		return q
	case money.Up:
		return q.Add(ulp)
	default:
		// r < d × ulp; round up when 2r >= d × ulp.
		if r.Add(r).Cmp(dd.Mul(ulp)) >= 0 {
			return q.Add(ulp)
		}
		return q
	}
}

// anniversary returns the day number of start moved by n years, 29 February
// becoming 28 February in common years.
func anniversary(start catalog.Date, n int) int32 {
	y := start.Year + n
	d := min(start.Day, daysIn(y, start.Month))
	return dayNumber(y, start.Month, d)
}
