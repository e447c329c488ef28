package pricing

import (
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
)

// fixedCatalogue: contract k on plan "fx" with one fixed fee "base".
func fixedCatalogue(amount string, rec catalog.Recurrence, pr catalog.Proration, tm catalog.Timing, start string, end string, opts ...func(*catalog.Catalogue)) *catalog.Catalogue {
	c := oneFee(perUnit("1"), "JPY")
	c.Fees = append(c.Fees, catalog.Fee{Code: "base", Name: "Base", Versions: []catalog.FeeVersion{{Validity: since, Kind: catalog.FeeFixed,
		Amount: decp(amount), Recurrence: rec, Proration: pr, Timing: tm}}})
	c.Plans = append(c.Plans, catalog.Plan{Code: "fx", Name: "FX", Versions: []catalog.PlanVersion{{Validity: since, Type: catalog.PlanFixed,
		Currency: "JPY", Fees: []string{"base"}}}})
	c.BasicContracts[0].Start = date("2020-01-01")
	k := &c.ServiceContracts[0]
	k.Start = date(start)
	k.Plans = []catalog.PricePlanTerm{{Plan: "fx", DateRange: catalog.DateRange{Start: date(start)}}}
	if end != "" {
		k.End = datep(end)
		k.Plans[0].End = datep(end)
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func TestFixedCharges(t *testing.T) {
	tests := []struct {
		name       string
		amount     string
		rec        catalog.Recurrence
		pr         catalog.Proration
		timing     catalog.Timing
		start, end string
		closing    int
		quantity   int
		period     string
		amounts    []string // one per line
		billOn     []string
	}{
		{"full month", "1980", catalog.Monthly, catalog.ProrateActualDays, catalog.Arrears, "2026-01-01", "", 0, 0, "2026-03", []string{"1980"}, []string{"2026-03-31"}},
		{"starts mid-month, actual days", "1980", catalog.Monthly, catalog.ProrateActualDays, catalog.Arrears, "2026-03-16", "", 0, 0, "2026-03", []string{"1022"}, []string{"2026-03-31"}}, // 1980 × 16/31 = 1021.935
		{"starts mid-month, in advance", "1980", catalog.Monthly, catalog.ProrateActualDays, catalog.Advance, "2026-03-16", "", 0, 0, "2026-03", []string{"1022"}, []string{"2026-03-16"}},
		{"ends mid-month", "3100", catalog.Monthly, catalog.ProrateActualDays, catalog.Arrears, "2026-01-01", "2026-03-10", 0, 0, "2026-03", []string{"1000"}, []string{"2026-03-31"}},
		{"no proration", "1980", catalog.Monthly, catalog.ProrateNone, catalog.Arrears, "2026-03-31", "", 0, 0, "2026-03", []string{"1980"}, []string{"2026-03-31"}},
		{"thirty-day, partial", "3000", catalog.Monthly, catalog.ProrateThirtyDay, catalog.Arrears, "2026-03-22", "", 0, 0, "2026-03", []string{"1000"}, []string{"2026-03-31"}}, // 10 days
		{"thirty-day, whole February", "3000", catalog.Monthly, catalog.ProrateThirtyDay, catalog.Arrears, "2026-01-01", "", 0, 0, "2026-02", []string{"3000"}, []string{"2026-02-28"}},
		{"thirty-day, 31 days cap", "3000", catalog.Monthly, catalog.ProrateThirtyDay, catalog.Arrears, "2026-01-02", "", 0, 0, "2026-01", []string{"3000"}, []string{"2026-01-31"}}, // 30 of 31 days
		{"leap February, actual days", "2900", catalog.Monthly, catalog.ProrateActualDays, catalog.Arrears, "2028-02-29", "", 0, 0, "2028-02", []string{"100"}, []string{"2028-02-29"}},
		{"leap day in a closing-day-28 period", "3000", catalog.Monthly, catalog.ProrateActualDays, catalog.Arrears, "2028-02-29", "", 28, 0, "2028-03", []string{"3000"}, []string{"2028-03-28"}},
		{"quantity", "500", catalog.Monthly, catalog.ProrateActualDays, catalog.Arrears, "2026-01-01", "", 0, 3, "2026-03", []string{"1500"}, []string{"2026-03-31"}},
		{"before the contract", "500", catalog.Monthly, catalog.ProrateActualDays, catalog.Arrears, "2026-05-01", "", 0, 0, "2026-03", nil, nil},
		{"one-time in the start period", "10000", catalog.OneTime, "", "", "2026-03-16", "", 0, 0, "2026-03", []string{"10000"}, []string{"2026-03-16"}},
		{"one-time not again", "10000", catalog.OneTime, "", "", "2026-03-16", "", 0, 0, "2026-04", nil, nil},
		{"yearly in advance", "36500", catalog.Yearly, catalog.ProrateActualDays, catalog.Advance, "2026-03-16", "", 0, 0, "2027-03", []string{"36500"}, []string{"2027-03-16"}},
		{"yearly not in between", "36500", catalog.Yearly, catalog.ProrateActualDays, catalog.Advance, "2026-03-16", "", 0, 0, "2026-07", nil, nil},
		{"yearly in arrears, ended early", "36500", catalog.Yearly, catalog.ProrateActualDays, catalog.Arrears, "2026-01-01", "2026-01-10", 0, 0, "2026-01", []string{"1000"}, []string{"2026-01-10"}},
		{"yearly from a leap day", "36600", catalog.Yearly, catalog.ProrateNone, catalog.Advance, "2028-02-29", "", 0, 0, "2029-02", []string{"36600"}, []string{"2029-02-28"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fixedCatalogue(tt.amount, tt.rec, tt.pr, tt.timing, tt.start, tt.end, func(c *catalog.Catalogue) {
				c.BasicContracts[0].ClosingDay = tt.closing
				c.ServiceContracts[0].Quantity = tt.quantity
			})
			e := compile(t, c)
			id, err := ParsePeriod(tt.period)
			if err != nil {
				t.Fatal(err)
			}
			lines, err := e.FixedCharges("k", id)
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != len(tt.amounts) {
				t.Fatalf("%d lines, want %d: %+v", len(lines), len(tt.amounts), lines)
			}
			for i, l := range lines {
				if !l.Amount.Equal(dec(tt.amounts[i])) || l.BillOn.String() != tt.billOn[i] || l.Fee != "base" || l.Currency != "JPY" {
					t.Errorf("line %d: %s billed on %s, want %s on %s (%+v)", i, l.Amount, l.BillOn, tt.amounts[i], tt.billOn[i], l)
				}
			}
		})
	}
}

// A plan change inside a period splits the monthly fee into two pro-rated
// lines; discounts apply to fixed fees too.
func TestFixedChargesPlanChangeAndDiscount(t *testing.T) {
	c := fixedCatalogue("3100", catalog.Monthly, catalog.ProrateActualDays, catalog.Arrears, "2026-01-01", "")
	c.Fees = append(c.Fees, catalog.Fee{Code: "pro", Name: "Pro", Versions: []catalog.FeeVersion{{Validity: since, Kind: catalog.FeeFixed,
		Amount: decp("6200"), Recurrence: catalog.Monthly, Proration: catalog.ProrateActualDays}}})
	c.Plans = append(c.Plans, catalog.Plan{Code: "fx-pro", Name: "Pro", Versions: []catalog.PlanVersion{{Validity: since, Type: catalog.PlanFixed,
		Currency: "JPY", Fees: []string{"pro"}}}})
	k := &c.ServiceContracts[0]
	k.Plans = []catalog.PricePlanTerm{
		{Plan: "fx", DateRange: catalog.DateRange{Start: date("2026-01-01"), End: datep("2026-03-10")}},
		{Plan: "fx-pro", DateRange: catalog.DateRange{Start: date("2026-03-11")}},
	}
	withDiscounts(discountSpec{id: "d", kind: "percentage", basis: "amount", level: "fee", target: "pro", tiers: [][2]string{{"0", "50"}}})(c)
	e := compile(t, c)
	lines, err := e.FixedCharges("k", PeriodOfMonth(2026, time.March))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 {
		t.Fatalf("lines %+v", lines)
	}
	// 3100 × 10/31 = 1000; 6200 × 21/31 = 4200, half off = 2100.
	if !lines[0].Amount.Equal(dec("1000")) || lines[0].Fee != "base" || lines[0].To.String() != "2026-03-10" {
		t.Errorf("first line %+v", lines[0])
	}
	if !lines[1].Amount.Equal(dec("2100")) || !lines[1].Discount.Equal(dec("-2100")) || lines[1].From.String() != "2026-03-11" {
		t.Errorf("second line %+v", lines[1])
	}
}

func TestDivRound(t *testing.T) {
	tests := []struct {
		n      string
		d      int64
		places int32
		mode   money.Mode
		want   string
	}{
		{"1980", 31, 0, money.HalfUp, "64"}, // 63.87
		{"1980", 31, 0, money.Down, "63"},
		{"1980", 31, 0, money.Up, "64"},
		{"5", 2, 0, money.HalfUp, "3"}, // exactly half
		{"5", 2, 0, money.Down, "2"},
		{"1", 3, 2, money.HalfUp, "0.33"},
		{"2", 3, 2, money.HalfUp, "0.67"},
		{"2", 3, 3, money.Down, "0.666"},
		{"0.0000000015", 1, 9, money.HalfUp, "0.000000002"},
	}
	for _, tt := range tests {
		if got := divRound(dec(tt.n), tt.d, tt.places, tt.mode); !got.Equal(dec(tt.want)) {
			t.Errorf("%s/%d at %d %s = %s, want %s", tt.n, tt.d, tt.places, tt.mode, got, tt.want)
		}
	}
}
