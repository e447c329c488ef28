package pricing

import (
	"testing"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/schemas"
)

// twoRestrictedFees is oneFee with fee "f" restricted to region jp (rate
// table rt, 1 per unit) and a second fee "g" on the same element restricted
// to region us (rate table rt-us, 2 per unit), under the plan's policy.
func twoRestrictedFees(policy catalog.UnmatchedRates) *catalog.Catalogue {
	c := oneFee(perUnit("1"), "JPY")
	c.Fees[0].Versions[0].Rates = []catalog.RateChoice{{Match: map[string]string{"region": "jp"}, RateTable: "rt"}}
	us := perUnit("2")
	us.Validity = since
	c.RateTables = append(c.RateTables, catalog.RateTable{Code: "rt-us", Name: "US", Versions: []catalog.RateTableVersion{us}})
	c.Fees = append(c.Fees, catalog.Fee{Code: "g", Name: "G", Versions: []catalog.FeeVersion{{Validity: since, Kind: catalog.FeeMetered,
		Element: "e", Rates: []catalog.RateChoice{{Match: map[string]string{"region": "us"}, RateTable: "rt-us"}}}}})
	c.Plans[0].Versions[0].Fees = []string{"f", "g"}
	c.Plans[0].Versions[0].UnmatchedRates = policy
	return c
}

// Issue 19 item 10: fees restricted by attribute. Lago prices a charge per
// combination of event properties (its filters), and an event is priced by
// the filter it matches; with the plan's unmatched_rates skip, two fees on
// one element with disjoint matches price each record under the fee its
// attributes select, and the other fee does not apply to it.
// https://getlago.com/docs/guide/plans/charges/charges-with-filters
func TestFeesRestrictedByAttribute(t *testing.T) {
	tests := []struct {
		name   string
		policy catalog.UnmatchedRates
		region string
		fees   []string // fees the record is priced under
		lines  []int64
		reason string
	}{
		{"skip: jp only under f", catalog.UnmatchedSkip, "jp", []string{"f"}, []int64{10}, ""},
		{"skip: us only under g", catalog.UnmatchedSkip, "us", []string{"g"}, []int64{20}, ""},
		{"skip: no fee matches", catalog.UnmatchedSkip, "eu", nil, nil, schemas.ReasonNoRate},
		// The default (and unmatched_rates unrated) keeps the earlier rule:
		// a fee of the element with no matching entry makes the record
		// unpriced, so existing catalogues price as before.
		{"default: unrated", "", "jp", nil, nil, schemas.ReasonNoRate},
		{"unrated", catalog.UnmatchedUnrated, "us", nil, nil, schemas.ReasonNoRate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, fast := range []bool{true, false} {
				e := compile(t, twoRestrictedFees(tc.policy))
				e.noFast = !fast
				ev := event("e1", march, "10", "region", tc.region)
				ls, err := newStream(e).rate(&ev)
				if got := reasonOf(err); got != tc.reason {
					t.Fatalf("reason %q, want %q (%v)", got, tc.reason, err)
				}
				var fees []string
				var lines []int64
				for _, l := range ls {
					fees = append(fees, l.Key.Fee)
					lines = append(lines, l.Line.Amount)
				}
				if len(fees) != len(tc.fees) || (len(fees) > 0 && (fees[0] != tc.fees[0] || lines[0] != tc.lines[0])) {
					t.Errorf("fast=%v: fees %v lines %v, want %v %v", fast, fees, lines, tc.fees, tc.lines)
				}
			}
		})
	}
}
