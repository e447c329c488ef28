package pricing

import (
	"testing"

	"github.com/kakin-dev/kakin/catalog"
)

func inUSD(c *catalog.Catalogue) {
	c.BasicContracts[0].Currency = "USD"
	for i := range c.Plans {
		c.Plans[i].Versions[0].Currency = "USD"
	}
}

// Issue 19 item 2: a fixed-amount discount on a pro-rated fixed fee is
// pro-rated exactly like the fee (same day-count basis), and rounded to the
// currency like it. Zuora: "Discount - Fixed Amount always prorates"; its
// example: $5 a month off, applied for 1 day of a 31-day month, takes
// 5/31 = $0.16.
// https://docs.zuora.com/en/zuora-billing/set-up-zuora-billing/build-product-and-prices/charge-models---configure-any-pricing/discount-pricing/discount-charge-models/fixed-amount-model-and-percentage-model
// https://docs.zuora.com/en/zuora-billing/set-up-zuora-billing/build-product-and-prices/charge-models---configure-any-pricing/discount-pricing/enhanced-discount-use-cases/applying-enhanced-discount-to-one-time-charges
func TestProratedFixedDiscount(t *testing.T) {
	tests := []struct {
		name           string
		fee            string
		pr             catalog.Proration
		start, end     string
		period         string
		amount, disc   string // the line's amount and discount
		discountKind   string
		discountAmount string
	}{
		// 100 × 1/31 = 3.2258 → 3.23; 5 × 1/31 = 0.1613 → 0.16 off.
		{"one day of 31, actual days", "100", catalog.ProrateActualDays, "2026-01-31", "", "2026-01", "3.07", "-0.16", "fixed", "5"},
		// The whole month: the whole discount, as before.
		{"whole month", "100", catalog.ProrateActualDays, "2026-01-01", "", "2026-01", "95.00", "-5.00", "fixed", "5"},
		// thirty_day: 10 days of March = 10/30 of 90 = 30 and of 6 = 2.
		{"thirty-day basis", "90", catalog.ProrateThirtyDay, "2026-03-22", "", "2026-03", "28.00", "-2.00", "fixed", "6"},
		// Ends mid-month: 10 of 31 days, 310 × 10/31 = 100; 31 × 10/31 = 10.
		{"ends mid-month", "310", catalog.ProrateActualDays, "2026-01-01", "2026-03-10", "2026-03", "90.00", "-10.00", "fixed", "31"},
		// No proration: the whole discount.
		{"proration none", "100", catalog.ProrateNone, "2026-03-31", "", "2026-03", "95.00", "-5.00", "fixed", "5"},
		// A percentage discount was already proportional: unchanged (10 %
		// of 3.23 = 0.323 → 2.907 → 2.91).
		{"percentage unchanged", "100", catalog.ProrateActualDays, "2026-01-31", "", "2026-01", "2.91", "-0.32", "percentage", "10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fixedCatalogue(tt.fee, catalog.Monthly, tt.pr, catalog.Arrears, tt.start, tt.end, inUSD,
				withDiscounts(discountSpec{id: "d", kind: tt.discountKind, basis: "amount", level: "fee", target: "base",
					tiers: [][2]string{{"0", tt.discountAmount}}}))
			e := compile(t, c)
			id, err := ParsePeriod(tt.period)
			if err != nil {
				t.Fatal(err)
			}
			lines, err := e.FixedCharges("k", id)
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != 1 || !lines[0].Amount.Equal(dec(tt.amount)) || !lines[0].Discount.Equal(dec(tt.disc)) {
				t.Fatalf("lines %+v, want amount %s discount %s", lines, tt.amount, tt.disc)
			}
		})
	}
}
