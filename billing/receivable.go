package billing

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

func timeMonth(m int) time.Month { return time.Month(m) }

// Kind is what a detail line is.
type Kind string

// Line kinds, in the order a receivable lists them.
const (
	KindFixed      Kind = "fixed"      // a fixed fee (定額), pro-rated
	KindMetered    Kind = "metered"    // a metered charge (従量) of one service contract, fee and split
	KindDiscount   Kind = "discount"   // what discounts took off a fixed or metered charge (≤ 0)
	KindAdjustment Kind = "adjustment" // a closed period's re-rated total minus what was billed (signed)
	// KindRounding is what rounding a tax group's lines to the currency's
	// minor unit changed their sum by (signed): lines priced finer than the
	// currency (a plan's rounding point receivable) keep their exact
	// amounts, and this line makes the group, and so the receivable, a
	// currency amount (Zuora's "Rounding Amount" invoice item).
	KindRounding Kind = "rounding"
	KindTax      Kind = "tax" // the exclusive consumption tax of one rate
)

func kindOrder(k Kind) int {
	switch k {
	case KindFixed:
		return 0
	case KindMetered:
		return 1
	case KindDiscount:
		return 2
	case KindAdjustment:
		return 3
	case KindRounding:
		return 4
	}
	return 5
}

// Status is a receivable's state.
type Status string

// Receivable states.
const (
	StatusDraft     Status = "draft"     // recomputed by every run until its period closes
	StatusFinal     Status = "final"     // numbered and frozen by the close
	StatusVoided    Status = "voided"    // a final receivable deleted: kept for audit, number never reused
	StatusDiscarded Status = "discarded" // a draft deleted (a later run of an open period may compute it again)
)

// Charge is one priced charge a receivable bills: a fixed fee line or a
// metered charge's period total, as the pricing engine computed it, or an
// adjustment.
type Charge struct {
	Kind     Kind // fixed, metered or adjustment
	Contract string
	Plan     string
	Fee      string
	Item     string // fee and split values, e.g. "transfer[jp]"
	Rate     string // rate table code (metered)
	Quantity decimal.Decimal
	// UnitPrice is the price per unit when UnitPriced (per_unit rates and
	// fixed fees); graduated, volume and other models have none.
	UnitPrice  decimal.Decimal
	UnitPriced bool
	// Amount is after discounts; Discount is what the discounts changed it by
	// (≤ 0). The line shows Amount − Discount, the discount its own line.
	Amount   decimal.Decimal
	Discount decimal.Decimal
	// ChargePeriod is the period the charge belongs to (for an adjustment the
	// closed period it corrects); From and To the days it covers.
	ChargePeriod string
	From, To     catalog.Date
	TaxCategory  catalog.TaxCategory
	TaxInclusive bool
	Note         string // why (adjustments)
}

// Line is one detail line of a receivable.
type Line struct {
	ID            string
	Seq           int
	Kind          Kind
	Contract      string
	Plan          string
	Fee           string
	Item          string
	Rate          string
	Quantity      decimal.Decimal
	UnitPrice     decimal.Decimal
	UnitPriced    bool
	Amount        decimal.Decimal // signed; an inclusive line's amount contains its tax
	TaxCategory   catalog.TaxCategory
	TaxRate       decimal.Decimal
	TaxInclusive  bool
	Tax           decimal.Decimal // the line's share of its group's tax (contained or added)
	ChargePeriod  string
	ChargeFrom    catalog.Date
	ChargeTo      catalog.Date
	BillingPeriod string
	Note          string
}

// TaxSummary is the waterfall of one tax group.
type TaxSummary struct {
	Category  catalog.TaxCategory
	Rate      decimal.Decimal
	Inclusive bool
	Subtotal  decimal.Decimal // fixed + metered before discounts
	Discounts decimal.Decimal // ≤ 0
	Adjust    decimal.Decimal // adjustments
	// Rounding is the group's rounding line (0 when its lines sum to a
	// currency amount): Round(Subtotal + Discounts + Adjust) minus that sum.
	Rounding decimal.Decimal
	Base     decimal.Decimal // Subtotal + Discounts + Adjust + Rounding: what the tax is computed on
	Tax      decimal.Decimal // computed once, rounded once
}

// Receivable is one basic contract's bill for one billing period.
type Receivable struct {
	ID            string
	Tenant        string
	Customer      string
	BasicContract string
	Period        string // YYYY-MM
	PeriodStart   catalog.Date
	PeriodEnd     catalog.Date
	TimeZone      string
	Currency      string
	Rounding      money.Mode

	Subtotal    decimal.Decimal // fixed + metered, before discounts
	Discounts   decimal.Decimal // ≤ 0
	Adjustments decimal.Decimal // signed
	// RoundingAmount is the sum of the rounding lines (signed; 0 unless a
	// line is priced finer than the currency's minor unit).
	RoundingAmount decimal.Decimal
	TaxExclusive   decimal.Decimal // added by the tax lines
	TaxIncluded    decimal.Decimal // contained in inclusive prices
	Total          decimal.Decimal // Subtotal + Discounts + Adjustments + RoundingAmount + TaxExclusive = Σ lines
	Taxes          []TaxSummary
	Lines          []Line
	// Hash is a hash of everything above but the id: equal inputs give an
	// equal hash, so a run that recomputes an unchanged receivable can tell.
	Hash string
}

// Input is what Compose needs for one basic contract and period.
type Input struct {
	Tenant        string
	Customer      string
	BasicContract string
	Period        string
	Start, End    catalog.Date // the period's first and last day
	TimeZone      string
	Currency      string
	Rounding      money.Mode
	Charges       []Charge
	Rates         TaxRates // nil: JapanTaxRates
}

// Compose builds the receivable: one line per charge (plus a discount line
// where discounts changed it), adjustments, the tax waterfall and one tax
// line per exclusive rate. Zero discount, adjustment and tax lines are left
// out.
//
// Charges may be finer than the currency's minor unit (up to 9 places: a
// plan whose rounding point is receivable prices its lines at its
// precision; line and period rounding points give currency amounts
// already). Their lines keep the exact amounts, and each tax group whose
// lines do not sum to a currency amount gets one rounding line: the sum
// rounded to the currency with the basic contract's mode, minus the sum. The
// tax is computed on the rounded sum, so every total is a currency amount
// and the lines still sum to the total. (Stripe and Chargebee round each
// line instead; Zuora's invoice-level rounding keeps the items and adds a
// rounding item, which is what the receivable rounding point asks for.) The result is a pure function of the input (lines in a fixed order,
// ids derived), so composing the same input twice gives identical receivables.
func Compose(in Input) (*Receivable, error) {
	cur, err := money.LookupCurrency(in.Currency)
	if err != nil {
		return nil, fmt.Errorf("receivable of %s/%s: %w", in.BasicContract, in.Period, err)
	}
	mode := in.Rounding
	if mode == "" {
		mode = money.HalfUp
	}
	rates := in.Rates
	if rates == nil {
		rates = JapanTaxRates
	}
	r := &Receivable{
		ID: ReceivableID(in.Tenant, in.BasicContract, in.Period), Tenant: in.Tenant, Customer: in.Customer,
		BasicContract: in.BasicContract, Period: in.Period, PeriodStart: in.Start, PeriodEnd: in.End,
		TimeZone: in.TimeZone, Currency: cur.Code, Rounding: mode,
		Subtotal: decimal.Zero, Discounts: decimal.Zero, Adjustments: decimal.Zero, RoundingAmount: decimal.Zero,
		TaxExclusive: decimal.Zero, TaxIncluded: decimal.Zero, Total: decimal.Zero,
	}
	charges := append([]Charge(nil), in.Charges...)
	sortCharges(charges)
	for _, c := range charges {
		if !c.Amount.Equal(c.Amount.Truncate(schemas.StoredDecimalPlaces)) || !c.Discount.Equal(c.Discount.Truncate(schemas.StoredDecimalPlaces)) {
			return nil, fmt.Errorf("receivable of %s/%s: charge %s/%s amount %s (discount %s) has more than %d decimals",
				in.BasicContract, in.Period, c.Contract, c.Item, c.Amount, c.Discount, schemas.StoredDecimalPlaces)
		}
		to := c.To
		if to.IsZero() {
			to = in.End
		}
		rate, err := rates.Rate(c.TaxCategory, to)
		if err != nil {
			return nil, fmt.Errorf("receivable of %s/%s: %w", in.BasicContract, in.Period, err)
		}
		cat := c.TaxCategory
		if cat == "" {
			cat = catalog.TaxStandard
		}
		base := Line{Contract: c.Contract, Plan: c.Plan, Fee: c.Fee, Item: c.Item, Rate: c.Rate,
			Quantity: c.Quantity, UnitPrice: c.UnitPrice, UnitPriced: c.UnitPriced,
			TaxCategory: cat, TaxRate: rate, TaxInclusive: c.TaxInclusive, Tax: decimal.Zero,
			ChargePeriod: c.ChargePeriod, ChargeFrom: c.From, ChargeTo: to, BillingPeriod: in.Period, Note: c.Note}
		switch c.Kind {
		case KindFixed, KindMetered:
			l := base
			l.Kind, l.Amount = c.Kind, c.Amount.Sub(c.Discount)
			r.Lines = append(r.Lines, l)
			if !c.Discount.IsZero() {
				d := base
				d.Kind, d.Amount, d.UnitPrice, d.UnitPriced = KindDiscount, c.Discount, decimal.Zero, false
				r.Lines = append(r.Lines, d)
			}
		case KindAdjustment:
			if c.Amount.IsZero() {
				continue
			}
			l := base
			l.Kind, l.Amount, l.UnitPrice, l.UnitPriced = KindAdjustment, c.Amount, decimal.Zero, false
			r.Lines = append(r.Lines, l)
		default:
			return nil, fmt.Errorf("receivable of %s/%s: charge kind %q", in.BasicContract, in.Period, c.Kind)
		}
	}

	// The tax waterfall: one group per (category, rate, inclusive).
	groups := map[string]*taxGroup{}
	var order []string
	for i := range r.Lines {
		l := &r.Lines[i]
		k := string(l.TaxCategory) + "|" + l.TaxRate.String() + "|" + fmt.Sprint(l.TaxInclusive)
		g := groups[k]
		if g == nil {
			g = &taxGroup{Category: l.TaxCategory, Rate: l.TaxRate, Inclusive: l.TaxInclusive, base: decimal.Zero}
			groups[k] = g
			order = append(order, k)
		}
		g.lines = append(g.lines, i)
		g.base = g.base.Add(l.Amount)
	}
	sort.Slice(order, func(a, b int) bool {
		ga, gb := groups[order[a]], groups[order[b]]
		if c := ga.Rate.Cmp(gb.Rate); c != 0 {
			return c > 0
		}
		if ga.Category != gb.Category {
			return ga.Category < gb.Category
		}
		return !ga.Inclusive && gb.Inclusive
	})
	var taxLines []Line
	for _, k := range order {
		g := groups[k]
		s := TaxSummary{Category: g.Category, Rate: g.Rate, Inclusive: g.Inclusive,
			Subtotal: decimal.Zero, Discounts: decimal.Zero, Adjust: decimal.Zero, Rounding: decimal.Zero}
		if rounded := money.Round(g.base, cur.Places, mode); !rounded.Equal(g.base) {
			s.Rounding = rounded.Sub(g.base)
			g.lines = append(g.lines, len(r.Lines))
			r.Lines = append(r.Lines, Line{Kind: KindRounding, Item: "rounding", Quantity: decimal.Zero, UnitPrice: decimal.Zero,
				Amount: s.Rounding, TaxCategory: g.Category, TaxRate: g.Rate, TaxInclusive: g.Inclusive, Tax: decimal.Zero,
				ChargePeriod: in.Period, ChargeFrom: in.Start, ChargeTo: in.End, BillingPeriod: in.Period})
			g.base = rounded
		}
		s.Base = g.base
		amounts := make([]decimal.Decimal, len(g.lines))
		for j, i := range g.lines {
			l := &r.Lines[i]
			amounts[j] = l.Amount
			switch l.Kind {
			case KindDiscount:
				s.Discounts = s.Discounts.Add(l.Amount)
			case KindAdjustment:
				s.Adjust = s.Adjust.Add(l.Amount)
			case KindRounding:
			default:
				s.Subtotal = s.Subtotal.Add(l.Amount)
			}
		}
		s.Tax = groupTax(g.base, g.Rate, g.Inclusive, cur.Places, mode)
		for j, share := range allocate(s.Tax, g.base, amounts, cur.Places) {
			r.Lines[g.lines[j]].Tax = share
		}
		r.Taxes = append(r.Taxes, s)
		r.Subtotal = r.Subtotal.Add(s.Subtotal)
		r.Discounts = r.Discounts.Add(s.Discounts)
		r.Adjustments = r.Adjustments.Add(s.Adjust)
		r.RoundingAmount = r.RoundingAmount.Add(s.Rounding)
		if g.Inclusive {
			r.TaxIncluded = r.TaxIncluded.Add(s.Tax)
		} else {
			r.TaxExclusive = r.TaxExclusive.Add(s.Tax)
			if !s.Tax.IsZero() {
				taxLines = append(taxLines, Line{Kind: KindTax, Item: "tax " + string(g.Category) + " " + percent(g.Rate),
					Fee: "", Quantity: decimal.Zero, UnitPrice: decimal.Zero, Amount: s.Tax, TaxCategory: g.Category,
					TaxRate: g.Rate, Tax: s.Tax, ChargePeriod: in.Period, ChargeFrom: in.Start, ChargeTo: in.End,
					BillingPeriod: in.Period})
			}
		}
	}
	r.Lines = append(r.Lines, taxLines...)
	r.Total = r.Subtotal.Add(r.Discounts).Add(r.Adjustments).Add(r.RoundingAmount).Add(r.TaxExclusive)
	for i := range r.Lines {
		r.Lines[i].Seq = i + 1
		r.Lines[i].ID = LineID(r.ID, &r.Lines[i])
	}
	r.Hash = contentHash(r)
	return r, nil
}

// percent renders a rate as a percentage: 0.1 → "10%".
func percent(rate decimal.Decimal) string {
	return rate.Shift(2).String() + "%"
}

// sortCharges orders charges by kind, contract, item, charge period, first
// day, rate table and plan, then amounts: a total order on everything that
// tells charges apart, so any input order gives the same receivable.
func sortCharges(cs []Charge) {
	sort.SliceStable(cs, func(a, b int) bool {
		x, y := &cs[a], &cs[b]
		if kx, ky := kindOrder(x.Kind), kindOrder(y.Kind); kx != ky {
			return kx < ky
		}
		for _, c := range [][2]string{{x.Contract, y.Contract}, {x.Item, y.Item}, {x.ChargePeriod, y.ChargePeriod},
			{x.From.String(), y.From.String()}, {x.Rate, y.Rate}, {x.Plan, y.Plan}, {x.Note, y.Note}} {
			if c := strings.Compare(c[0], c[1]); c != 0 {
				return c < 0
			}
		}
		if c := x.Amount.Cmp(y.Amount); c != 0 {
			return c < 0
		}
		return x.Discount.LessThan(y.Discount)
	})
}
