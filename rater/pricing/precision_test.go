package pricing

import (
	"fmt"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
)

func withRounding(point catalog.RoundingPoint, precision int32) func(*catalog.Catalogue) {
	return func(c *catalog.Catalogue) {
		c.Plans[0].Versions[0].RoundingPoint = point
		if precision >= 0 {
			c.Plans[0].Versions[0].Precision = &precision
		}
	}
}

// Issue 19 item 5: line amounts at a precision finer than the currency's
// minor unit, rounded at the plan's rounding point (line, period or
// receivable). With receivable the lines keep the plan's precision and the
// receivable rounds the sum.
//
// Chargebee's multi-decimal rounding: 4.4556 per unit × 10.625 units =
// 47.34075, billed 47.34 in USD and 47 in JPY when rounded to the currency.
// https://chargebee.com/docs/2.0/site-configuration/articles-and-faq/what-is-the-rounding-logic-for-line-item-amounts.html
func TestPrecisionAndRoundingPoint(t *testing.T) {
	tests := []struct {
		name      string
		price     string
		currency  string
		point     catalog.RoundingPoint
		precision int32 // -1 default
		qtys      []string
		lines     []string // line amounts as decimals
	}{
		{"per-GiB 0.0001, period: nothing billed", "0.0001", "USD", catalog.RoundPeriod, -1, []string{"1", "1", "1"}, []string{"0", "0", "0"}},
		{"per-GiB 0.0001, line: nothing billed", "0.0001", "USD", catalog.RoundLine, -1, []string{"1", "1", "1"}, []string{"0", "0", "0"}},
		{"per-GiB 0.0001, receivable: billed as priced", "0.0001", "USD", catalog.RoundReceivable, -1, []string{"1", "1", "1"}, []string{"0.0001", "0.0001", "0.0001"}},
		{"receivable at 4 places, period-style steps", "0.00005", "USD", catalog.RoundReceivable, 4, []string{"1", "1", "1"}, []string{"0.0001", "0", "0.0001"}},
		{"Chargebee USD", "4.4556", "USD", catalog.RoundPeriod, -1, []string{"10.625"}, []string{"47.34"}},
		{"Chargebee JPY", "4.4556", "JPY", catalog.RoundPeriod, -1, []string{"10.625"}, []string{"47"}},
		{"Chargebee receivable", "4.4556", "USD", catalog.RoundReceivable, 5, []string{"10.625"}, []string{"47.34075"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, fast := range []bool{true, false} {
				e := compile(t, oneFee(perUnit(tc.price), tc.currency, withRounding(tc.point, tc.precision)))
				e.noFast = !fast
				s := newStream(e)
				var got []string
				for i, q := range tc.qtys {
					ev := event(fmt.Sprintf("e%d", i), march.Add(time.Duration(i)*time.Second), q)
					ls, err := s.rate(&ev)
					if err != nil {
						t.Fatal(err)
					}
					for _, l := range ls {
						got = append(got, l.Line.Decimal().String())
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.lines) {
					t.Errorf("fast=%v: lines %v, want %v", fast, got, tc.lines)
				}
			}
		})
	}
}
