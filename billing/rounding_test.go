package billing

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
)

// roundingCatalogue is one metered fee priced per unit at price, in
// currency, under a plan whose rounding point is receivable (lines at 9
// places), taxed as category; March 2019, UTC.
func roundingCatalogue(price, currency string, cat catalog.TaxCategory) string {
	return fmt.Sprintf(`
services: [{code: svc, name: Svc, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: service, plans: [p]}]}]
plans: [{code: p, name: P, versions: [{valid_from: "2019-01-01T00:00:00Z", type: metered, currency: %[2]s, fees: [gib], rounding_point: receivable, precision: 9}]}]
fees: [{code: gib, name: GiB, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: metered, element: gib, rates: [{rate_table: price}], tax_category: %[3]s}]}]
elements: [{code: gib, name: GiB, versions: [{valid_from: "2019-01-01T00:00:00Z", unit: GiB, aggregation: sum}]}]
rate_tables: [{code: price, name: Price, versions: [{valid_from: "2019-01-01T00:00:00Z", model: per_unit, unit_price: %[1]s}]}]
basic_contracts: [{id: b1, customer: c1, start_date: "2019-01-01", currency: %[2]s, closing_day: 0, time_zone: UTC, rounding: half_up}]
service_contracts: [{id: k1, customer: c1, basic_contract: b1, service: svc, start_date: "2019-01-01", plans: [{plan: p, start_date: "2019-01-01"}]}]
`, price, currency, cat)
}

// TestReceivableRoundsFinerLines (issue 19 item 5, the receivable rounding
// point): lines priced finer than the currency keep their exact amounts,
// one rounding line per tax group rounds their sum to the currency with the
// basic contract's mode, the tax is computed on the rounded sum, and the
// lines sum to the total.
//
// Chargebee's multi-decimal example: 4.4556 per unit × 10.625 units =
// 47.34075, billed 47.34 in USD and 47 in JPY.
// https://chargebee.com/docs/2.0/site-configuration/articles-and-faq/what-is-the-rounding-logic-for-line-item-amounts.html
// The per-GiB price of 0.0001 (issue 19 item 5): 12,345 GiB cost 1.2345,
// billed 1.23 (half up), 1.23 (down) or 1.24 (up).
// Zuora keeps the items and adds a "Rounding Amount" item when it rounds at
// the invoice level, which is what the rounding line is:
// https://docs.zuora.com/en/zuora-billing/bill-your-customer/invoice-management/invoice-level-rounding
// (Stripe rounds each line item instead, the line rounding point:
// https://stripe.com/docs/billing/subscriptions/decimal-amounts)
func TestReceivableRoundsFinerLines(t *testing.T) {
	tests := []struct {
		name       string
		price, cur string
		mode       money.Mode
		cat        catalog.TaxCategory
		qtys       []string
		line       string // the metered line, exact
		rounding   string // "" none
		tax, total string
	}{
		{"Chargebee USD", "4.4556", "USD", money.HalfUp, catalog.TaxExempt, []string{"10.625"}, "47.34075", "-0.00075", "0", "47.34"},
		{"Chargebee JPY", "4.4556", "JPY", money.HalfUp, catalog.TaxExempt, []string{"10.625"}, "47.34075", "-0.34075", "0", "47"},
		{"per GiB half up", "0.0001", "USD", money.HalfUp, catalog.TaxExempt, []string{"12000", "345"}, "1.2345", "-0.0045", "0", "1.23"},
		{"per GiB down", "0.0001", "USD", money.Down, catalog.TaxExempt, []string{"12000", "345"}, "1.2345", "-0.0045", "0", "1.23"},
		{"per GiB up", "0.0001", "USD", money.Up, catalog.TaxExempt, []string{"12000", "345"}, "1.2345", "0.0055", "0", "1.24"},
		{"per GiB a whole cent", "0.0001", "USD", money.HalfUp, catalog.TaxExempt, []string{"12300"}, "1.23", "", "0", "1.23"},
		// The tax is computed on the rounded base, at the standard rate of
		// March 2019 (8 %; 10 % from October 2019): 47.34 × 8 % = 3.7872 →
		// 3.79 (on the exact 47.34075 it would be 3.787… → 3.79 too, but
		// the base shown is the rounded one).
		{"Chargebee USD taxed", "4.4556", "USD", money.HalfUp, catalog.TaxStandard, []string{"10.625"}, "47.34075", "-0.00075", "3.79", "51.13"},
		// JPY: 47 × 8 % = 3.76 → 4.
		{"Chargebee JPY taxed", "4.4556", "JPY", money.HalfUp, catalog.TaxStandard, []string{"10.625"}, "47.34075", "-0.34075", "4", "51"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := catalog.Decode(strings.NewReader(roundingCatalogue(tc.price, tc.cur, tc.cat)))
			if err != nil {
				t.Fatal(err)
			}
			c.BasicContracts[0].Rounding = tc.mode
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			e, err := pricing.Compile(c)
			if err != nil {
				t.Fatal(err)
			}
			tn := NewTenant("acme", e, c)
			var evs []schemas.UsageEvent
			for i, q := range tc.qtys {
				at := time.Date(2019, 3, 2+i, 0, 0, 0, 0, time.UTC)
				evs = append(evs, schemas.UsageEvent{Tenant: "acme", ID: fmt.Sprint("e", i), Customer: "c1", Contract: "k1",
					Element: "gib", Quantity: dec(q), Time: at, ReceivedAt: at})
			}
			p, _, err := tn.Period("b1", pricing.PeriodOfMonth(2019, time.March))
			if err != nil {
				t.Fatal(err)
			}
			charges, err := tn.Charges("b1", p, tn.RateCustomer(evs))
			if err != nil {
				t.Fatal(err)
			}
			r, err := Compose(Input{Tenant: "acme", Customer: "c1", BasicContract: "b1", Period: "2019-03", Start: p.Start, End: p.End,
				TimeZone: "UTC", Currency: tc.cur, Rounding: tc.mode, Charges: charges})
			if err != nil {
				t.Fatal(err)
			}
			sum := dec("0")
			var metered, rounding []Line
			for _, l := range r.Lines {
				sum = sum.Add(l.Amount)
				switch l.Kind {
				case KindMetered:
					metered = append(metered, l)
				case KindRounding:
					rounding = append(rounding, l)
				}
			}
			if len(metered) != 1 || !metered[0].Amount.Equal(dec(tc.line)) {
				t.Errorf("metered lines %+v, want one of %s (exact)", metered, tc.line)
			}
			switch {
			case tc.rounding == "" && len(rounding) != 0:
				t.Errorf("rounding lines %+v, want none", rounding)
			case tc.rounding != "" && (len(rounding) != 1 || !rounding[0].Amount.Equal(dec(tc.rounding)) ||
				!r.RoundingAmount.Equal(dec(tc.rounding)) || !r.Taxes[0].Rounding.Equal(dec(tc.rounding))):
				t.Errorf("rounding lines %+v (receivable %s, group %s), want one of %s", rounding, r.RoundingAmount, r.Taxes[0].Rounding, tc.rounding)
			}
			if !r.Total.Equal(dec(tc.total)) || !sum.Equal(r.Total) || !r.TaxExclusive.Equal(dec(tc.tax)) {
				t.Errorf("total %s, lines sum %s, tax %s; want total %s = Σ lines, tax %s", r.Total, sum, r.TaxExclusive, tc.total, tc.tax)
			}
			cur, _ := money.LookupCurrency(tc.cur)
			if !r.Total.Equal(r.Total.Truncate(cur.Places)) || !r.Taxes[0].Base.Equal(r.Taxes[0].Base.Truncate(cur.Places)) {
				t.Errorf("total %s or tax base %s is finer than %s", r.Total, r.Taxes[0].Base, tc.cur)
			}
			// The line amounts are exact; only the rounding line makes the sum.
			if again, _ := Compose(Input{Tenant: "acme", Customer: "c1", BasicContract: "b1", Period: "2019-03", Start: p.Start,
				End: p.End, TimeZone: "UTC", Currency: tc.cur, Rounding: tc.mode, Charges: charges}); again.Hash != r.Hash {
				t.Error("composing the same charges twice gives another receivable")
			}
		})
	}
}
