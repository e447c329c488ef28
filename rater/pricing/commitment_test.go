package pricing

import (
	"testing"

	"github.com/kakin-dev/kakin/catalog"
)

// Issue 19 item 6: a minimum commitment across a plan's fees, billed as its
// own true-up line: commitment − what was used, never negative.
func TestCommitmentTrueUp(t *testing.T) {
	tests := []struct {
		name       string
		commitment string // "" none
		start, end string
		used       string
		want       string // "" no line
	}{
		// Lago's negotiated contract: a $1,000 monthly minimum; $800 of
		// usage adds a $200 true-up, $1,300 adds none.
		// https://getlago.com/docs/guide/lago-cloud/contract-billing
		// https://getlago.com/docs/guide/plans/commitment
		{"Lago below the minimum", "1000", "2026-01-01", "", "800", "200.00"},
		{"Lago above the minimum", "1000", "2026-01-01", "", "1300", ""},
		{"exactly the minimum", "1000", "2026-01-01", "", "1000", ""},
		// Lago's scenario: subscription $50 + 3 units × $10 = $80 with a $100
		// minimum: a $20 true-up. https://github.com/getlago/lago-api/pull/1787
		{"Lago subscription and usage", "100", "2026-01-01", "", "80", "20.00"},
		{"nothing used", "100", "2026-01-01", "", "0", "100.00"},
		// Part of the period: 16 of 31 days of March: 310 × 16/31 = 160.
		{"pro-rated", "310", "2026-03-16", "", "100", "60.00"},
		{"no commitment", "", "2026-01-01", "", "0", ""},
		{"outside the contract", "100", "2026-04-01", "", "0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fixedCatalogue("50", catalog.Monthly, catalog.ProrateActualDays, catalog.Arrears, tt.start, tt.end, inUSD,
				func(c *catalog.Catalogue) {
					if tt.commitment != "" {
						c.Plans[1].Versions[0].Commitment = decp(tt.commitment)
					}
				})
			e := compile(t, c)
			l, err := e.TrueUp("k", PeriodOfMonth(2026, 3), dec(tt.used))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want == "" && l != nil:
				t.Fatalf("true-up %+v, want none", l)
			case tt.want != "" && (l == nil || !l.Amount.Equal(dec(tt.want)) || !l.TrueUp || l.BillOn.String() != "2026-03-31"):
				t.Fatalf("true-up %+v, want %s due 2026-03-31", l, tt.want)
			}
		})
	}
}
