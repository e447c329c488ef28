package pricing

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/schemas"
)

// Issue 19 item 4: time_weighted as an aggregation the catalogue names.

func timeWeightedCatalogue(unit, price string) *catalog.Catalogue {
	return oneFee(perUnit(price), "USD", since2018, func(c *catalog.Catalogue) {
		c.Elements[0].Versions[0].Aggregation = catalog.AggTimeWeighted
		c.Elements[0].Versions[0].TimeUnit = unit
		c.BasicContracts[0].TimeZone = "UTC"
		c.BasicContracts[0].Start, c.ServiceContracts[0].Start, c.ServiceContracts[0].Plans[0].Start = date("2018-01-01"), date("2018-01-01"), date("2018-01-01")
	})
}

func TestTimeWeightedCharges(t *testing.T) {
	at := func(s string) time.Time { x, _ := time.Parse(time.RFC3339, s); return x }
	cases := []struct {
		name   string
		unit   string
		price  string
		levels [][2]string // time, level
		qty    string
		amount int64 // cents
	}{
		// Lago's weighted sum over a 31-day January: 10 for one day (16th
		// to 17th), then 30 for the remaining 15 days: (10 × 1 + 30 × 15) /
		// 31 = 14.84 (Lago's events add to the running total, 10 then +20;
		// here each record sets the level: 10, then 30). Dates moved from
		// 2027 to 2019 (both Januaries have 31 days).
		// https://getlago.com/docs/v2/guide/billable-metrics/aggregation-types/aggregation-examples
		// https://getlago.com/docs/v2/guide/billable-metrics/aggregation-types/weighted-sum
		{name: "Lago: GB-months over January", unit: "period", price: "1",
			levels: [][2]string{{"2019-01-16T00:00:00Z", "10"}, {"2019-01-17T00:00:00Z", "30"}}, qty: "14.838709677", amount: 1484},
		// Seat-days: 3 seats from noon on 10 March (half a day: 1.5), 9 whole
		// days at 3, then 5 seats for the 12 days from the 20th: 1.5 + 27 +
		// 60 = 88.5 seat-days at 2.00.
		{name: "seat-days", unit: "day", price: "2",
			levels: [][2]string{{"2019-03-10T12:00:00Z", "3"}, {"2019-03-20T00:00:00Z", "5"}}, qty: "88.5", amount: 17700},
		// Records out of time order: the level-time is the same.
		{name: "out of order", unit: "day", price: "2",
			levels: [][2]string{{"2019-03-20T00:00:00Z", "5"}, {"2019-03-10T12:00:00Z", "3"}}, qty: "88.5", amount: 17700},
		// A level back to 0 ends the holding: 4 seats for 2 days.
		{name: "released", unit: "day", price: "1",
			levels: [][2]string{{"2019-03-01T00:00:00Z", "4"}, {"2019-03-03T00:00:00Z", "0"}}, qty: "8", amount: 800},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := compile(t, timeWeightedCatalogue(tc.unit, tc.price))
			var evs []schemas.UsageEvent
			for i, l := range tc.levels {
				evs = append(evs, event(string(rune('a'+i)), at(l[0]), l[1]))
			}
			// The stream's lines are zero: the amount needs the period's end.
			s := newStream(e)
			for i := range evs {
				ls, err := s.rate(&evs[i])
				if err != nil || len(ls) != 1 || ls[0].Line.Amount != 0 {
					t.Fatalf("record %d: %+v %v, want one zero line", i, ls, err)
				}
			}
			b := e.RatePeriod(evs)
			if len(b.PeriodEnd) != 1 {
				t.Fatalf("period end lines %+v", b.PeriodEnd)
			}
			pe := b.PeriodEnd[0]
			if pe.Reason != nil || !pe.Quantity.Equal(dec(tc.qty)) || pe.Line.Amount != tc.amount || pe.Records != uint64(len(evs)) {
				t.Fatalf("period end %+v, want quantity %s amount %d", pe, tc.qty, tc.amount)
			}
		})
	}
}

// An invalidated level change: the period is re-rated without it, the level
// before it holding until the next change.
func TestTimeWeightedCorrection(t *testing.T) {
	e := compile(t, timeWeightedCatalogue("day", "2"))
	evs := []schemas.UsageEvent{event("a", time.Date(2019, 3, 10, 12, 0, 0, 0, time.UTC), "3"), event("b", time.Date(2019, 3, 20, 0, 0, 0, 0, time.UTC), "5")}
	var st State
	var cs []Charge
	for i := range evs {
		cs, _ = e.Resolve(&evs[i], nil)
		if _, err := cs[0].Apply(&st, &evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs[0].Remove(&st, &evs[1]); !errors.Is(err, ErrNeedsRecompute) {
		t.Fatalf("remove: %v, want ErrNeedsRecompute", err)
	}
	// 3 seats from noon on the 10th to the end of March: 1.5 + 21 × 3.
	pe := e.RatePeriod(evs[:1]).PeriodEnd
	if len(pe) != 1 || !pe[0].Quantity.Equal(dec("64.5")) || pe[0].Line.Amount != 12900 {
		t.Fatalf("re-rated %+v", pe)
	}
}

func TestTimeWeightedValidation(t *testing.T) {
	c := timeWeightedCatalogue("", "1")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "elements[0].versions[0].time_unit: time_weighted needs time_unit day") {
		t.Errorf("missing unit: %v", err)
	}
	c = oneFee(perUnit("1"), "USD", withElement(func(v *catalog.ElementVersion) { v.TimeUnit = "day" }))
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "elements[0].versions[0].time_unit: applies only to aggregation time_weighted") {
		t.Errorf("unit on sum: %v", err)
	}
}
