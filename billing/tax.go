package billing

import (
	"fmt"
	"sort"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
	"github.com/shopspring/decimal"
)

// RateVersion is a tax rate in force from a day on (inclusive) until the
// next version of its category.
type RateVersion struct {
	Category catalog.TaxCategory
	From     catalog.Date
	Rate     decimal.Decimal // 0.10 for 10 %
}

// TaxRates are effective-dated consumption-tax rates. Exempt and out-of-scope
// charges are always taxed at 0.
type TaxRates []RateVersion

func day(y, m, d int) catalog.Date { return catalog.Date{Year: y, Month: timeMonth(m), Day: d} }

// JapanTaxRates are Japan's consumption-tax rates (national and local
// together): 3 % from 1989-04-01, 5 % from 1997-04-01, 8 % from 2014-04-01,
// 10 % standard and 8 % reduced from 2019-10-01.
var JapanTaxRates = TaxRates{
	{catalog.TaxStandard, day(1989, 4, 1), decimal.RequireFromString("0.03")},
	{catalog.TaxStandard, day(1997, 4, 1), decimal.RequireFromString("0.05")},
	{catalog.TaxStandard, day(2014, 4, 1), decimal.RequireFromString("0.08")},
	{catalog.TaxStandard, day(2019, 10, 1), decimal.RequireFromString("0.10")},
	{catalog.TaxReduced, day(1989, 4, 1), decimal.RequireFromString("0.03")},
	{catalog.TaxReduced, day(1997, 4, 1), decimal.RequireFromString("0.05")},
	{catalog.TaxReduced, day(2014, 4, 1), decimal.RequireFromString("0.08")},
}

// Rate returns the rate of a category on a day. An empty category is
// standard.
func (r TaxRates) Rate(c catalog.TaxCategory, on catalog.Date) (decimal.Decimal, error) {
	switch c {
	case catalog.TaxExempt, catalog.TaxOutOfScope:
		return decimal.Zero, nil
	case "":
		c = catalog.TaxStandard
	}
	found := false
	var best RateVersion
	for _, v := range r {
		if v.Category != c || on.Before(v.From) {
			continue
		}
		if !found || best.From.Before(v.From) {
			best, found = v, true
		}
	}
	if !found {
		return decimal.Zero, fmt.Errorf("no %s tax rate in force on %s", c, on)
	}
	return best.Rate, nil
}

// taxGroup is one (category, rate, inclusive) group of a receivable's lines.
type taxGroup struct {
	Category  catalog.TaxCategory
	Rate      decimal.Decimal
	Inclusive bool
	lines     []int // indexes into the receivable's lines
	base      decimal.Decimal
}

// groupTax computes a group's tax once from its exact base: base × rate
// (exclusive) or base × rate / (1 + rate) (inclusive), rounded once to the
// currency with mode.
func groupTax(base, rate decimal.Decimal, inclusive bool, places int32, mode money.Mode) decimal.Decimal {
	if rate.IsZero() || base.IsZero() {
		return decimal.Zero
	}
	exact := base.Mul(rate)
	if inclusive {
		exact = exact.DivRound(decimal.NewFromInt(1).Add(rate), 24)
	}
	return money.Round(exact, places, mode)
}

// allocate splits total over amounts in proportion (largest remainder: each
// share rounded toward −∞ to the minor unit, the units left over go to the
// largest fractional parts, ties to the earlier line), so the shares sum to
// total exactly. base is Σ amounts; when it is zero nothing is allocated.
func allocate(total, base decimal.Decimal, amounts []decimal.Decimal, places int32) []decimal.Decimal {
	out := make([]decimal.Decimal, len(amounts))
	for i := range out {
		out[i] = decimal.Zero
	}
	if base.IsZero() || total.IsZero() || len(amounts) == 0 {
		return out
	}
	unit := decimal.New(1, -places)
	type rem struct {
		i    int
		frac decimal.Decimal
	}
	rems := make([]rem, len(amounts))
	sum := decimal.Zero
	for i, a := range amounts {
		ideal := total.Mul(a).DivRound(base, 24)
		out[i] = ideal.RoundFloor(places)
		sum = sum.Add(out[i])
		rems[i] = rem{i, ideal.Sub(out[i])}
	}
	left := total.Sub(sum).Div(unit).IntPart()
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].frac.GreaterThan(rems[b].frac) })
	for k := int64(0); k < left && len(rems) > 0; k++ {
		i := rems[int(k)%len(rems)].i
		out[i] = out[i].Add(unit)
	}
	return out
}
