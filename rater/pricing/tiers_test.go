package pricing

import (
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/schemas"
)

// fromBounds makes a tier table's bounds inclusive lower ends.
func fromBounds(rt catalog.RateTableVersion) catalog.RateTableVersion {
	rt.TierBounds = catalog.BoundsFrom
	return rt
}

// aboveLastTier adds the explicit overage price beyond a closed last tier.
func aboveLastTier(rt catalog.RateTableVersion, price string) catalog.RateTableVersion {
	rt.AboveLastTier = &catalog.AboveLastTier{UnitPrice: dec(price)}
	return rt
}

// Issue 19 item 8: tier bounds inclusive at the lower end (">= 50") and a
// closed last tier, priced by an explicit overage rule or unrated.
func TestTierBoundsFrom(t *testing.T) {
	// Up to 50 at 1, then 0.5 with a flat fee of 10 for entering the tier.
	g := graduated([3]string{"50", "1", "0"}, [3]string{"", "0.5", "10"})
	v := volume([3]string{"50", "2", "0"}, [3]string{"", "1", "0"})
	runModelCases(t, []modelCase{
		// Default (up_to) bounds: 50 stays in the first tier.
		{name: "graduated up_to: on the bound stays below", rt: g, qtys: []string{"50"}, total: "50"},
		// from bounds: 50 is ">= 50", the second tier, whose flat fee is due.
		{name: "graduated from: on the bound enters the tier", rt: fromBounds(g), qtys: []string{"50"}, total: "60"},
		{name: "graduated from: just below the bound", rt: fromBounds(g), currency: "USD", qtys: []string{"49.999999999"}, total: "50.00"},
		{name: "graduated from: crossing in steps", rt: fromBounds(g), qtys: []string{"49", "1", "2"}, total: "61", lines: []int64{49, 11, 1}},
		{name: "volume up_to: on the bound keeps the first price", rt: v, qtys: []string{"50"}, total: "100"},
		{name: "volume from: on the bound takes the next price", rt: fromBounds(v), qtys: []string{"50"}, total: "50"},
		{name: "volume from: below the bound", rt: fromBounds(v), qtys: []string{"49"}, total: "98"},
		// With from bounds 0 is inside the first tier [0, 50): a flat fee of
		// the first tier is due once the period has usage, even of 0.
		{name: "volume from: zero quantity is in the first tier", rt: fromBounds(volume([3]string{"50", "2", "3"}, [3]string{"", "1", "0"})), qtys: []string{"0"}, total: "3"},
		// CloudKitty's hashmap thresholds price a quantity by the level it
		// reaches (levels 1024 and 10240 on the volume service): a level is
		// where its price starts, which is tier_bounds from.
		// https://docs.openstack.org/cloudkitty/latest/user/rating/hashmap.html
		{name: "CloudKitty threshold levels", rt: fromBounds(volume([3]string{"1024", "0", "0"}, [3]string{"10240", "0.1", "0"}, [3]string{"", "0.2", "0"})),
			currency: "USD", qtys: []string{"1024"}, total: "102.40"},
	})
}

func TestClosedLastTier(t *testing.T) {
	// Zuora's tiered with overage: "an overage charge for any units consumed
	// above the ending units of the final tier". Its storage table: 0-500 at
	// 0, 500-1000 at .10, 1000-3000 at .08, 3000-10000 at .06, overage .15
	// per unit thereafter; 12,000 GB = 0 + 50 + 160 + 420 + 2,000 × .15 = 930.
	// https://docs.zuora.com/en/zuora-billing/set-up-zuora-billing/build-product-and-prices/charge-models---configure-any-pricing/tiered-with-overage-pricing
	// https://docs.zuora.com/en/zuora-billing/set-up-zuora-billing/build-product-and-prices/set-up-product-catalog/create-product-rate-plan-charges/storage-usage-tiered-with-overage
	storage := aboveLastTier(graduated([3]string{"500", "0", "0"}, [3]string{"1000", "0.10", "0"}, [3]string{"3000", "0.08", "0"},
		[3]string{"10000", "0.06", "0"}), "0.15")
	// Zuora's rating detail of a tiered with overage charge: tiers 0-100 at
	// 0.00 and 101-200 at 2.00; 130 units = 100 × 0 + 30 × 2 = 60.
	// https://docs.zuora.com/en/zuora-billing/bill-your-customer/billing-document-templates-configuration/configure-html-templates-for-billing-documents/customize-html-templates/configure-ratingdetails-in-html-template/ratingdetail-schema/example-tiered-pricing-mode
	rating := aboveLastTier(graduated([3]string{"100", "0", "0"}, [3]string{"200", "2", "0"}), "3")
	runModelCases(t, []modelCase{
		{name: "Zuora storage within the tiers", rt: storage, currency: "USD", qtys: []string{"3000"}, total: "210.00"},
		{name: "Zuora storage beyond the last tier", rt: storage, currency: "USD", qtys: []string{"6000", "6000"}, total: "930.00"},
		{name: "Zuora rating detail 130 units", rt: rating, currency: "USD", qtys: []string{"130"}, total: "60.00"},
		{name: "Zuora rating detail beyond 200", rt: rating, currency: "USD", qtys: []string{"130", "80"}, total: "230.00", lines: []int64{6000, 17000}},
		// Volume: every unit at the overage price once beyond the last tier.
		{name: "volume beyond the last tier", rt: aboveLastTier(volume([3]string{"10", "2", "0"}, [3]string{"20", "1", "0"}), "0.5"), qtys: []string{"20", "2"}, total: "11", lines: []int64{20, -9}},
		{name: "volume closed, within", rt: volume([3]string{"10", "2", "0"}, [3]string{"20", "1", "0"}), qtys: []string{"20"}, total: "20"},
	})

	// Without an overage price the record that would pass the last tier is
	// unrated with its reason; the state is unchanged, so later records that
	// fit are still priced.
	for _, tc := range []struct {
		name   string
		rt     catalog.RateTableVersion
		qtys   []string
		reason []string // per record: "" priced, else the reason code
	}{
		{"up_to: the bound itself is inside", graduated([3]string{"10", "1", "0"}, [3]string{"20", "2", "0"}),
			[]string{"20", "0.000000001", "0"}, []string{"", schemas.ReasonAboveLastTier, ""}},
		{"from: the bound is beyond", fromBounds(graduated([3]string{"10", "1", "0"}, [3]string{"20", "2", "0"})),
			[]string{"19", "1", "0.5"}, []string{"", schemas.ReasonAboveLastTier, ""}},
		{"volume", volume([3]string{"10", "1", "0"}), []string{"11", "10"}, []string{schemas.ReasonAboveLastTier, ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, fast := range []bool{true, false} {
				e := compile(t, oneFee(tc.rt, "JPY"))
				e.noFast = !fast
				s := newStream(e)
				for i, q := range tc.qtys {
					ev := event("e"+q, march.Add(time.Duration(i)*time.Second), q)
					_, err := s.rate(&ev)
					if got := reasonOf(err); got != tc.reason[i] {
						t.Errorf("fast=%v record %d (%s): reason %q, want %q (%v)", fast, i, q, got, tc.reason[i], err)
					}
				}
				b := e.RatePeriod(func() []schemas.UsageEvent {
					var evs []schemas.UsageEvent
					for i, q := range tc.qtys {
						evs = append(evs, event("e"+q, march.Add(time.Duration(i)*time.Second), q))
					}
					return evs
				}())
				n := 0
				for _, r := range tc.reason {
					if r != "" {
						n++
					}
				}
				if len(b.Unrated) != n {
					t.Errorf("fast=%v: RatePeriod unrated %d records, want %d", fast, len(b.Unrated), n)
				}
			}
		})
	}
}
