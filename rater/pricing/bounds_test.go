package pricing

import (
	"fmt"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
)

// boundedTiers builds tiers from (up_to, unit_price, flat_fee, minimum,
// maximum); empty strings are absent.
func boundedTiers(t ...[5]string) []catalog.Tier {
	var out []catalog.Tier
	for _, x := range t {
		tr := tiers([3]string{x[0], x[1], x[2]})[0]
		if x[3] != "" {
			tr.Minimum = decp(x[3])
		}
		if x[4] != "" {
			tr.Maximum = decp(x[4])
		}
		out = append(out, tr)
	}
	return out
}

// Issue 19 item 7: minimum and maximum per tier (Zuora's tier-level
// min/max: "the calculated amount for a given tier is not lower than the
// specified value ... does not exceed the specified value"). Zuora's
// California table: tier 1 0-10 at $2 (min $5, max $20), tier 2 11+ at $1
// (min $10, max $100); the amounts below are that table's rules applied.
// https://docs.zuora.com/en/zuora-billing/set-up-zuora-billing/build-product-and-prices/dynamic-pricing/use-cases/apply-tier-level-minmax-rules-for-region-based-volume-pricing
func TestTierMinMax(t *testing.T) {
	ca := boundedTiers([5]string{"10", "2", "0", "5", "20"}, [5]string{"", "1", "0", "10", "100"})
	grad := catalog.RateTableVersion{Model: catalog.ModelGraduated, Tiers: ca}
	vol := catalog.RateTableVersion{Model: catalog.ModelVolume, Tiers: ca}
	runModelCases(t, []modelCase{
		{name: "graduated: tier 1 below its minimum", rt: grad, currency: "USD", qtys: []string{"2"}, total: "5.00"},
		{name: "graduated: tier 1 full", rt: grad, currency: "USD", qtys: []string{"10"}, total: "20.00"},
		{name: "graduated: tier 2 below its minimum", rt: grad, currency: "USD", qtys: []string{"10", "5"}, total: "30.00", lines: []int64{2000, 1000}},
		{name: "graduated: tier 2 above its maximum", rt: grad, currency: "USD", qtys: []string{"200"}, total: "120.00"},
		{name: "volume: tier 1 below its minimum", rt: vol, currency: "USD", qtys: []string{"2"}, total: "5.00"},
		{name: "volume: tier 2 inside its bounds", rt: vol, currency: "USD", qtys: []string{"15"}, total: "15.00"},
		{name: "volume: tier 2 above its maximum", rt: vol, currency: "USD", qtys: []string{"500"}, total: "100.00"},
		// Tier-level and charge-level together: tier 1 = $10 (min 5, max
		// 20), tier 2 = $15 (min 10, max 100), total $25, charge-level
		// minimum $30 → $30. The charge level is the rates entry's minimum.
		// https://docs.zuora.com/en/zuora-billing/set-up-zuora-billing/build-product-and-prices/dynamic-pricing/use-cases/using-tier-level-and-charge-level-minmax-together
		{name: "tier and charge level together",
			rt:       catalog.RateTableVersion{Model: catalog.ModelGraduated, Tiers: boundedTiers([5]string{"10", "1", "0", "5", "20"}, [5]string{"", "1", "0", "10", "100"})},
			currency: "USD", qtys: []string{"25"}, total: "30.00",
			opts: []func(*catalog.Catalogue){withFee(func(v *catalog.FeeVersion) { v.Rates[0].Minimum = decp("30") })}},
	})
}

// Minimum and maximum per rates entry (Zuora's charge-level min/max of a
// decision-table row): CA $10 per unit (min $100, max $200), NY $12 (min
// $120, max $240). CA 8 units → $80 → $100; NY 25 → $300 → $240; NY 10 →
// $120.
// https://docs.zuora.com/en/zuora-billing/set-up-zuora-billing/build-product-and-prices/dynamic-pricing/use-cases/charge-level-minmax-rules-for-per-unit-pricing
func TestRatesEntryMinMax(t *testing.T) {
	c := oneFee(perUnit("10"), "USD")
	ny := perUnit("12")
	ny.Validity = since
	c.RateTables = append(c.RateTables, catalog.RateTable{Code: "rt-ny", Name: "NY", Versions: []catalog.RateTableVersion{ny}})
	c.Fees[0].Versions[0].Rates = []catalog.RateChoice{
		{Match: map[string]string{"state": "CA"}, RateTable: "rt", Minimum: decp("100"), Maximum: decp("200")},
		{Match: map[string]string{"state": "NY"}, RateTable: "rt-ny", Minimum: decp("120"), Maximum: decp("240")},
	}
	for _, tc := range []struct {
		state, qty string
		want       int64
	}{{"CA", "8", 10000}, {"NY", "25", 24000}, {"NY", "10", 12000}} {
		for _, fast := range []bool{true, false} {
			e := compile(t, c)
			e.noFast = !fast
			ev := event("e1", march.Add(time.Second), tc.qty, "state", tc.state)
			ls, err := newStream(e).rate(&ev)
			if err != nil || len(ls) != 1 || ls[0].Line.Amount != tc.want {
				t.Errorf("fast=%v %s %s: lines %v (%v), want %d", fast, tc.state, tc.qty, fmt.Sprint(ls), err, tc.want)
			}
		}
	}
}
