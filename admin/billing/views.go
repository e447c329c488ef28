package billing

import (
	"time"

	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/money"
	"github.com/shopspring/decimal"
)

// TaxView is one tax group of a receivable's waterfall.
type TaxView struct {
	Category    string `json:"category"`
	Rate        string `json:"rate"`
	Inclusive   bool   `json:"inclusive"`
	Subtotal    string `json:"subtotal"`
	Discounts   string `json:"discounts"`
	Adjustments string `json:"adjustments"`
	// Rounding is the group's rounding line, when its lines are priced
	// finer than the currency's minor unit.
	Rounding string `json:"rounding,omitempty"`
	Base     string `json:"base"`
	Tax      string `json:"tax"`
}

// ReceivableView is a receivable as the API shows it; amounts are decimal
// strings with the currency's minor-unit digits.
type ReceivableView struct {
	ID            string     `json:"id"`
	Customer      string     `json:"customer"`
	BasicContract string     `json:"basic_contract"`
	Period        string     `json:"period"`
	PeriodStart   string     `json:"period_start"`
	PeriodEnd     string     `json:"period_end"`
	TimeZone      string     `json:"time_zone"`
	Currency      string     `json:"currency"`
	Status        string     `json:"status"`
	Number        string     `json:"number,omitempty"`
	Subtotal      string     `json:"subtotal"`
	Discounts     string     `json:"discounts"`
	Adjustments   string     `json:"adjustments"`
	Rounding      string     `json:"rounding,omitempty"` // the rounding lines' sum, when there are any
	TaxExclusive  string     `json:"tax_exclusive"`
	TaxIncluded   string     `json:"tax_included"`
	Total         string     `json:"total"`
	Taxes         []TaxView  `json:"taxes"`
	Lines         uint32     `json:"lines"`
	IssuedAt      *time.Time `json:"issued_at,omitempty"`
	VoidReason    string     `json:"void_reason,omitempty"`
	Revision      uint64     `json:"revision"`
}

// amount renders d with the currency's minor-unit digits, or exactly when it
// is finer (a line priced at a plan's precision, rounding point receivable):
// an amount is never rounded for display, so the lines shown sum to the
// total shown.
func amount(cur string, d decimal.Decimal) string {
	c, err := money.LookupCurrency(cur)
	if err != nil || !d.Equal(d.Truncate(c.Places)) {
		return d.String()
	}
	return c.Format(d)
}

// NewReceivableView renders a stored receivable.
func NewReceivableView(s *billingdb.Stored) ReceivableView {
	r := s.Receivable
	v := ReceivableView{ID: r.ID, Customer: r.Customer, BasicContract: r.BasicContract, Period: r.Period,
		PeriodStart: r.PeriodStart.String(), PeriodEnd: r.PeriodEnd.String(), TimeZone: r.TimeZone, Currency: r.Currency,
		Status: string(s.Status), Number: s.Number, Subtotal: amount(r.Currency, r.Subtotal),
		Discounts: amount(r.Currency, r.Discounts), Adjustments: amount(r.Currency, r.Adjustments),
		TaxExclusive: amount(r.Currency, r.TaxExclusive), TaxIncluded: amount(r.Currency, r.TaxIncluded),
		Total: amount(r.Currency, r.Total), Taxes: []TaxView{}, Lines: s.LineCount, VoidReason: s.VoidReason, Revision: s.Revision}
	if !r.RoundingAmount.IsZero() {
		v.Rounding = amount(r.Currency, r.RoundingAmount)
	}
	if !s.IssuedAt.IsZero() {
		t := s.IssuedAt
		v.IssuedAt = &t
	}
	for _, t := range r.Taxes {
		v.Taxes = append(v.Taxes, TaxView{Category: string(t.Category), Rate: t.Rate.String(), Inclusive: t.Inclusive,
			Subtotal: amount(r.Currency, t.Subtotal), Discounts: amount(r.Currency, t.Discounts),
			Adjustments: amount(r.Currency, t.Adjust), Base: amount(r.Currency, t.Base), Tax: amount(r.Currency, t.Tax)})
		if !t.Rounding.IsZero() {
			v.Taxes[len(v.Taxes)-1].Rounding = amount(r.Currency, t.Rounding)
		}
	}
	return v
}

// LineView is a detail line as the API shows it.
type LineView struct {
	ID            string `json:"id"`
	Seq           int    `json:"seq"`
	Kind          string `json:"kind"`
	Contract      string `json:"service_contract,omitempty"`
	Plan          string `json:"plan,omitempty"`
	Fee           string `json:"fee,omitempty"`
	Item          string `json:"item"`
	RateTable     string `json:"rate_table,omitempty"`
	Quantity      string `json:"quantity"`
	UnitPrice     string `json:"unit_price,omitempty"`
	Amount        string `json:"amount"`
	TaxCategory   string `json:"tax_category"`
	TaxRate       string `json:"tax_rate"`
	TaxInclusive  bool   `json:"tax_inclusive"`
	Tax           string `json:"tax"`
	ChargePeriod  string `json:"charge_period"`
	ChargeFrom    string `json:"charge_from"`
	ChargeTo      string `json:"charge_to"`
	BillingPeriod string `json:"billing_period"`
	Note          string `json:"note,omitempty"`
}

// NewLineView renders a line of a receivable in currency cur.
func NewLineView(cur string, l billing.Line) LineView {
	v := LineView{ID: l.ID, Seq: l.Seq, Kind: string(l.Kind), Contract: l.Contract, Plan: l.Plan, Fee: l.Fee, Item: l.Item,
		RateTable: l.Rate, Quantity: l.Quantity.String(), Amount: amount(cur, l.Amount), TaxCategory: string(l.TaxCategory),
		TaxRate: l.TaxRate.String(), TaxInclusive: l.TaxInclusive, Tax: amount(cur, l.Tax), ChargePeriod: l.ChargePeriod,
		ChargeFrom: l.ChargeFrom.String(), ChargeTo: l.ChargeTo.String(), BillingPeriod: l.BillingPeriod, Note: l.Note}
	if l.UnitPriced {
		v.UnitPrice = l.UnitPrice.String()
	}
	return v
}
