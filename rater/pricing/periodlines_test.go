package pricing

import (
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// TestPeriodLines: the lines of a period as a whole, from the period's
// batch. A plan with a commitment of 1000 and idle minimums (calls at 1, no
// minimum; storage at 10 with a minimum of 300) and a fixed fee of 100:
// the true-up's "used" is fixed + idle minimums + metered, before discounts.
// With all, the lines not due are there at zero (the stream replaces an
// earlier line with them).
func TestPeriodLines(t *testing.T) {
	c, err := catalog.Decode(strings.NewReader(`
services: [{code: svc, name: Svc, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: service, plans: [p]}]}]
plans: [{code: p, name: P, versions: [{valid_from: "2019-01-01T00:00:00Z", type: metered, currency: JPY, fees: [calls, storage, base], commitment: 1000, minimum_without_usage: true}]}]
fees:
  - {code: calls, name: Calls, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: metered, element: calls, rates: [{rate_table: one}]}]}
  - {code: storage, name: Storage, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: metered, element: gb, rates: [{rate_table: ten}], minimum: 300}]}
  - {code: base, name: Base, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: fixed, amount: 100, recurrence: monthly, proration: none, timing: arrears}]}
elements:
  - {code: calls, name: Calls, versions: [{valid_from: "2019-01-01T00:00:00Z", unit: call, aggregation: sum}]}
  - {code: gb, name: GB, versions: [{valid_from: "2019-01-01T00:00:00Z", unit: GB, aggregation: sum}]}
rate_tables:
  - {code: one, name: One, versions: [{valid_from: "2019-01-01T00:00:00Z", model: per_unit, unit_price: 1}]}
  - {code: ten, name: Ten, versions: [{valid_from: "2019-01-01T00:00:00Z", model: per_unit, unit_price: 10}]}
basic_contracts: [{id: b1, customer: c1, start_date: "2019-01-01", currency: JPY, closing_day: 0, time_zone: UTC, rounding: half_up}]
service_contracts: [{id: k1, customer: c1, basic_contract: b1, service: svc, start_date: "2019-01-01", plans: [{plan: p, start_date: "2019-01-01"}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	e := compile(t, c)
	march := PeriodOfMonth(2019, time.March)
	rec := func(id, element, qty string) schemas.UsageEvent {
		at := time.Date(2019, 3, 5, 0, 0, 0, 0, time.UTC)
		return schemas.UsageEvent{Tenant: "t", ID: id, Customer: "c1", Contract: "k1", Element: element,
			Quantity: decimal.RequireFromString(qty), Time: at, ReceivedAt: at}
	}
	tests := []struct {
		name   string
		events []schemas.UsageEvent
		all    bool
		want   map[string]string // item → amount
	}{
		{"idle: the minimum, and 1000 − (100 + 300)", nil, false, map[string]string{"storage#minimum": "300", "#commitment": "600"}},
		{"calls only: 1000 − (100 + 300 + 200)", []schemas.UsageEvent{rec("a", "calls", "200")}, false,
			map[string]string{"storage#minimum": "300", "#commitment": "400"}},
		{"storage used: its minimum is metered, 1000 − (100 + 300)", []schemas.UsageEvent{rec("a", "gb", "1")}, false,
			map[string]string{"#commitment": "600"}},
		{"above the commitment: nothing", []schemas.UsageEvent{rec("a", "calls", "900"), rec("b", "gb", "50")}, false,
			map[string]string{}},
		{"above the commitment, all: zero lines", []schemas.UsageEvent{rec("a", "calls", "900"), rec("b", "gb", "50")}, true,
			map[string]string{"storage#minimum": "0", "#commitment": "0"}},
		{"another period's records count nothing", []schemas.UsageEvent{{Tenant: "t", ID: "x", Customer: "c1", Contract: "k1",
			Element: "calls", Quantity: decimal.NewFromInt(5000), Time: time.Date(2019, 4, 2, 0, 0, 0, 0, time.UTC)}}, false,
			map[string]string{"storage#minimum": "300", "#commitment": "600"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b *Batch
			if tc.events != nil {
				b = e.RatePeriod(tc.events)
			}
			lines, err := e.PeriodLines("k1", march, b, tc.all)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, l := range lines {
				got[l.Item()] = l.Amount.String()
			}
			if len(got) != len(tc.want) {
				t.Errorf("lines %v, want %v", got, tc.want)
			}
			for k, w := range tc.want {
				if got[k] != w {
					t.Errorf("%s = %q, want %s (all lines %v)", k, got[k], w, got)
				}
			}
		})
	}
	if !e.HasPeriodLines("k1", march) || e.HasPeriodLines("k1", PeriodOfMonth(2018, time.December)) {
		t.Error("HasPeriodLines: want true in March 2019, false before the contract")
	}
}

// A time-weighted charge counts at its period-end amount towards a
// commitment (its stream lines are zero), and a plan with a time-weighted
// fee has period lines (HasPeriodLines: the emitter writes the amount once
// the period ended). Seats at 10 per seat-day, commitment 1000: level 2
// from March 11th is 2 × 21 = 42 seat-days, 420, so the true-up is 580.
func TestPeriodLinesTimeWeighted(t *testing.T) {
	doc := `
services: [{code: svc, name: Svc, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: service, plans: [p]}]}]
plans: [{code: p, name: P, versions: [{valid_from: "2019-01-01T00:00:00Z", type: metered, currency: JPY, fees: [seats]COMMIT}]}]
fees:
  - {code: seats, name: Seats, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: metered, element: seats, rates: [{rate_table: ten}]}]}
elements:
  - {code: seats, name: Seats, versions: [{valid_from: "2019-01-01T00:00:00Z", unit: seat, aggregation: time_weighted, time_unit: day}]}
rate_tables:
  - {code: ten, name: Ten, versions: [{valid_from: "2019-01-01T00:00:00Z", model: per_unit, unit_price: 10}]}
basic_contracts: [{id: b1, customer: c1, start_date: "2019-01-01", currency: JPY, closing_day: 0, time_zone: UTC, rounding: half_up}]
service_contracts: [{id: k1, customer: c1, basic_contract: b1, service: svc, start_date: "2019-01-01", plans: [{plan: p, start_date: "2019-01-01"}]}]
`
	at := time.Date(2019, 3, 11, 0, 0, 0, 0, time.UTC)
	evs := []schemas.UsageEvent{{Tenant: "t", ID: "a", Customer: "c1", Contract: "k1", Element: "seats",
		Quantity: decimal.NewFromInt(2), Time: at, ReceivedAt: at}}
	march := PeriodOfMonth(2019, time.March)
	for _, tc := range []struct {
		name, commit string
		want         map[string]string
	}{
		{"with a commitment", ", commitment: 1000", map[string]string{"#commitment": "580"}},
		{"without", "", map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := catalog.Decode(strings.NewReader(strings.Replace(doc, "COMMIT", tc.commit, 1)))
			if err != nil {
				t.Fatal(err)
			}
			e := compile(t, c)
			if !e.HasPeriodLines("k1", march) {
				t.Error("HasPeriodLines: false for a plan with a time-weighted fee")
			}
			b := e.RatePeriod(evs)
			ends := b.PeriodEndOf("k1", march)
			if len(ends) != 1 || ends[0].Line.Decimal().String() != "420" || ends[0].Quantity.String() != "42" {
				t.Fatalf("period end %+v, want one charge of 420 for 42 seat-days", ends)
			}
			if len(b.PeriodEndOf("k1", march.Next())) != 0 || len(b.PeriodEndOf("k2", march)) != 0 {
				t.Error("PeriodEndOf: another period's or contract's charges")
			}
			lines, err := e.PeriodLines("k1", march, b, false)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, l := range lines {
				got[l.Item()] = l.Amount.String()
			}
			if len(got) != len(tc.want) || got["#commitment"] != tc.want["#commitment"] {
				t.Errorf("period lines %v, want %v", got, tc.want)
			}
		})
	}
}
