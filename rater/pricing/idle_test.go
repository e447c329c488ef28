package pricing

import (
	"fmt"
	"testing"

	"github.com/kakin-dev/kakin/catalog"
)

// Issue 19 item 11: a fee minimum charged for a period with no records, when
// the plan says so. Lago's spending minimum: a Rate of 0.01 USD per API call
// with a 30 USD minimum bills 30 USD for the period whatever the calls
// (a true-up of the difference as a separate fee); 1,000 calls (10 USD) are
// billed 30 USD, 5,000 calls (50 USD) 50 USD.
// https://getlago.com/docs/v2/guide/rate-cards/spending-minimums
// https://getlago.com/docs/guide/plans/charges/spending-minimum
func TestIdleMinimums(t *testing.T) {
	cat := func(idle bool) *catalog.Catalogue {
		return oneFee(perUnit("0.01"), "USD", withFee(func(v *catalog.FeeVersion) { v.Minimum = decp("30") }),
			func(c *catalog.Catalogue) { c.Plans[0].Versions[0].MinimumWithoutUsage = idle })
	}
	march := PeriodID(2026*12 + 2) // 2026-03
	tests := []struct {
		name  string
		idle  bool
		used  bool
		calls string // records of the period, "" none
		want  []string
		total string // the usage lines' total
	}{
		{"no usage: the minimum is charged", true, false, "", []string{"f 30 USD 2026-03-01..2026-03-31 due 2026-03-31"}, ""},
		{"usage below the minimum: on the usage lines, no idle line", true, true, "1000", nil, "30.00"},
		{"usage above the minimum", true, true, "5000", nil, "50.00"},
		{"the plan does not say so: nothing without usage", false, false, "", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := compile(t, cat(tc.idle))
			lines, err := e.IdleMinimums("k", march, func(fee string) bool { return tc.used })
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range lines {
				got = append(got, fmt.Sprintf("%s %s %s %s..%s due %s", l.Fee, l.Amount, l.Currency, l.From, l.To, l.BillOn))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("idle minimums %v, want %v", got, tc.want)
			}
			if tc.calls != "" {
				_, total := rateQuantities(t, e, tc.calls)
				if want := minor(tc.total, 2); total != want {
					t.Errorf("usage total %d, want %d", total, want)
				}
			}
		})
	}
}
