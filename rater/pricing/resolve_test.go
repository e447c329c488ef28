package pricing

import (
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/schemas"
)

var tokyo, _ = time.LoadLocation("Asia/Tokyo")

func TestPeriods(t *testing.T) {
	tests := []struct {
		name       string
		closing    int
		tz         string
		at         time.Time
		label      string
		start, end string
	}{
		{"calendar month", 0, "Asia/Tokyo", time.Date(2026, 3, 10, 12, 0, 0, 0, tokyo), "2026-03", "2026-03-01", "2026-03-31"},
		{"last second of a month in Tokyo", 0, "Asia/Tokyo", time.Date(2026, 1, 31, 23, 59, 59, 0, tokyo), "2026-01", "2026-01-01", "2026-01-31"},
		{"first instant of February in Tokyo is still January in UTC", 0, "Asia/Tokyo", time.Date(2026, 1, 31, 15, 0, 0, 0, time.UTC), "2026-02", "2026-02-01", "2026-02-28"},
		{"New York evening of the 31st", 0, "America/New_York", time.Date(2026, 2, 1, 3, 0, 0, 0, time.UTC), "2026-01", "2026-01-01", "2026-01-31"},
		{"leap day, calendar month", 0, "Asia/Tokyo", time.Date(2028, 2, 29, 10, 0, 0, 0, tokyo), "2028-02", "2028-02-01", "2028-02-29"},
		{"closing day 20, on the day", 20, "Asia/Tokyo", time.Date(2026, 1, 20, 23, 0, 0, 0, tokyo), "2026-01", "2025-12-21", "2026-01-20"},
		{"closing day 20, the day after", 20, "Asia/Tokyo", time.Date(2026, 1, 21, 0, 0, 0, 0, tokyo), "2026-02", "2026-01-21", "2026-02-20"},
		{"closing day 20 across the year", 20, "Asia/Tokyo", time.Date(2026, 12, 25, 0, 0, 0, 0, tokyo), "2027-01", "2026-12-21", "2027-01-20"},
		{"closing day 28 and the leap day", 28, "Asia/Tokyo", time.Date(2028, 2, 29, 0, 0, 0, 0, tokyo), "2028-03", "2028-02-29", "2028-03-28"},
		{"closing day 28 on the 28th of February", 28, "Asia/Tokyo", time.Date(2027, 2, 28, 12, 0, 0, 0, tokyo), "2027-02", "2027-01-29", "2027-02-28"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := oneFee(perUnit("1"), "JPY", func(c *catalog.Catalogue) {
				c.BasicContracts[0].ClosingDay = tt.closing
				c.BasicContracts[0].TimeZone = tt.tz
			})
			e := compile(t, c)
			ev := event("x", tt.at, "1")
			charges, err := e.Resolve(&ev, nil)
			if err != nil {
				t.Fatal(err)
			}
			p := charges[0].Period
			if p.ID.String() != tt.label || p.Start.String() != tt.start || p.End.String() != tt.end {
				t.Errorf("period %s [%s, %s], want %s [%s, %s]", p.ID, p.Start, p.End, tt.label, tt.start, tt.end)
			}
			if charges[0].Key.Period != p.ID {
				t.Errorf("key period %s, want %s", charges[0].Key.Period, p.ID)
			}
			if p.StartTime().After(tt.at) || !tt.at.Before(p.EndTime()) {
				t.Errorf("event %s outside [%s, %s)", tt.at, p.StartTime(), p.EndTime())
			}
			if got, err := e.PeriodAt("k", tt.at); err != nil || got.ID != p.ID {
				t.Errorf("PeriodAt = %v, %v", got.ID, err)
			}
		})
	}
}

func TestDayNumbers(t *testing.T) {
	for d := int32(-800); d < 50000; d += 7 {
		date := dateOf(d)
		if back := dayOf(date); back != d {
			t.Fatalf("day %d → %s → %d", d, date, back)
		}
		if want := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(d)); catalog.DateOf(want) != date {
			t.Fatalf("day %d = %s, want %s", d, date, catalog.DateOf(want))
		}
	}
}

// resolutionCatalogue: customer c has contract k1 (plan p1 metering e by
// region; ends 2026-03-15) and contract k2 (plan p2, metering e2 and, from
// April, e as well); customer d has a contract with a plan gap.
func resolutionCatalogue() *catalog.Catalogue {
	c := oneFee(perUnit("1"), "JPY")
	c.RateTables = append(c.RateTables,
		catalog.RateTable{Code: "tokyo", Name: "T", Versions: []catalog.RateTableVersion{{Validity: since, Model: catalog.ModelPerUnit, UnitPrice: decp("2")}}},
		catalog.RateTable{Code: "tokyo-gold", Name: "TG", Versions: []catalog.RateTableVersion{{Validity: since, Model: catalog.ModelPerUnit, UnitPrice: decp("3")}}},
		catalog.RateTable{Code: "gold", Name: "G", Versions: []catalog.RateTableVersion{{Validity: since, Model: catalog.ModelPerUnit, UnitPrice: decp("4")}}},
	)
	c.Fees[0].Versions[0].Rates = []catalog.RateChoice{
		{RateTable: "rt"},
		{Match: map[string]string{"region": "tokyo"}, RateTable: "tokyo"},
		{Match: map[string]string{"region": "tokyo", "tier": "gold"}, RateTable: "tokyo-gold"},
		{Match: map[string]string{"plan": "gold"}, RateTable: "gold"},
	}
	c.Fees[0].Versions[0].SplitBy = []string{"region"}
	c.Elements = append(c.Elements,
		catalog.Element{Code: "e2", Name: "E2", Versions: []catalog.ElementVersion{{Validity: since, Unit: "u", Aggregation: catalog.AggSum}}},
		catalog.Element{Code: "users", Name: "U", Versions: []catalog.ElementVersion{{Validity: since, Unit: "u", Aggregation: catalog.AggUniqueCount, UniqueAttribute: "user"}}})
	c.Fees = append(c.Fees,
		catalog.Fee{Code: "f2", Name: "F2", Versions: []catalog.FeeVersion{{Validity: since, Kind: catalog.FeeMetered, Element: "e2", Rates: []catalog.RateChoice{{RateTable: "rt"}}}}},
		catalog.Fee{Code: "f3", Name: "F3", Versions: []catalog.FeeVersion{{Validity: since, Kind: catalog.FeeMetered, Element: "users", Rates: []catalog.RateChoice{{RateTable: "rt"}}}}},
	)
	april := catalog.Validity{ValidFrom: time.Date(2026, 3, 31, 15, 0, 0, 0, time.UTC)} // 2026-04-01 00:00 JST
	march := catalog.Validity{ValidFrom: since.ValidFrom, ValidTo: &april.ValidFrom}
	c.Plans = append(c.Plans, catalog.Plan{Code: "p2", Name: "P2", Versions: []catalog.PlanVersion{
		{Validity: march, Type: catalog.PlanMetered, Currency: "JPY", Fees: []string{"f2", "f3"}},
		{Validity: april, Type: catalog.PlanMetered, Currency: "JPY", Fees: []string{"f2", "f"}},
	}})
	c.Services[0].Versions[0].Plans = nil
	c.ServiceContracts[0].ID = "k1"
	c.ServiceContracts[0].End = datep("2026-03-15")
	c.ServiceContracts[0].Plans[0].End = datep("2026-03-15")
	c.ServiceContracts = append(c.ServiceContracts,
		catalog.ServiceContract{ID: "k2", Customer: "c", Basic: "b", Service: "s", DateRange: catalog.DateRange{Start: date("2026-01-01")},
			Plans: []catalog.PricePlanTerm{{Plan: "p2", DateRange: catalog.DateRange{Start: date("2026-01-01")}}}},
		catalog.ServiceContract{ID: "kd", Customer: "d", Basic: "bd", Service: "s", DateRange: catalog.DateRange{Start: date("2026-01-01")},
			Plans: []catalog.PricePlanTerm{
				{Plan: "p", DateRange: catalog.DateRange{Start: date("2026-01-01"), End: datep("2026-01-31")}},
				{Plan: "p", DateRange: catalog.DateRange{Start: date("2026-03-01")}}}},
	)
	c.BasicContracts = append(c.BasicContracts, catalog.BasicContract{ID: "bd", Customer: "d", DateRange: catalog.DateRange{Start: date("2026-01-01")},
		Currency: "JPY", TimeZone: "Asia/Tokyo", Rounding: "half_up"})
	return c
}

func TestResolve(t *testing.T) {
	e := compile(t, resolutionCatalogue())
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, tokyo)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name     string
		customer string
		element  string
		contract string
		at       string
		attrs    []string
		reason   string
		contr    string // contract chosen
		rate     string
		split    string
		fees     int
	}{
		{name: "default rate", customer: "c", element: "e", at: "2026-03-10 10:00", contr: "k1", rate: "rt", fees: 1},
		{name: "attribute match", customer: "c", element: "e", at: "2026-03-10 10:00", attrs: []string{"region", "tokyo"}, contr: "k1", rate: "tokyo", split: "tokyo", fees: 1},
		{name: "two keys beat one", customer: "c", element: "e", at: "2026-03-10 10:00", attrs: []string{"region", "tokyo", "tier", "gold"}, contr: "k1", rate: "tokyo-gold", split: "tokyo", fees: 1},
		{name: "equally specific matches", customer: "c", element: "e", at: "2026-03-10 10:00", attrs: []string{"region", "tokyo", "plan", "gold"}, reason: schemas.ReasonAmbiguousRate},
		{name: "last day of the contract", customer: "c", element: "e", at: "2026-03-15 23:59", contr: "k1", rate: "rt", fees: 1},
		{name: "contract ended mid-period", customer: "c", element: "e", at: "2026-03-16 00:00", reason: schemas.ReasonUnknownElement},
		{name: "other contract's element", customer: "c", element: "e2", at: "2026-03-16 00:00", contr: "k2", rate: "rt", fees: 1},
		{name: "the other contract does not meter it yet", customer: "c", element: "e", at: "2026-03-31 23:59", reason: schemas.ReasonUnknownElement},
		{name: "plan version from April adds the element", customer: "c", element: "e", at: "2026-04-01 00:00", contr: "k2", rate: "rt", fees: 1},
		{name: "named contract", customer: "c", element: "e2", contract: "k2", at: "2026-03-10 10:00", contr: "k2", rate: "rt", fees: 1},
		{name: "named contract not metering the element", customer: "c", element: "e", contract: "k2", at: "2026-03-10 10:00", reason: schemas.ReasonUnknownElement},
		{name: "named contract of someone else", customer: "c", element: "e", contract: "kd", at: "2026-03-10 10:00", reason: schemas.ReasonNoContract},
		{name: "unknown customer", customer: "zz", element: "e", at: "2026-03-10 10:00", reason: schemas.ReasonUnknownCustomer},
		{name: "before the contract", customer: "c", element: "e", at: "2025-12-31 23:59", reason: schemas.ReasonNoContract},
		{name: "gap between plan terms", customer: "d", element: "e", at: "2026-02-10 10:00", reason: schemas.ReasonNoPlan},
		{name: "after the gap", customer: "d", element: "e", at: "2026-03-01 00:00", contr: "kd", rate: "rt", fees: 1},
		{name: "unknown element", customer: "d", element: "nope", at: "2026-03-10 10:00", reason: schemas.ReasonUnknownElement},
		{name: "unique count without its attribute", customer: "c", element: "users", at: "2026-03-10 10:00", reason: schemas.ReasonMissingAttribute},
		{name: "unique count", customer: "c", element: "users", at: "2026-03-10 10:00", attrs: []string{"user", "u1"}, contr: "k2", rate: "rt", fees: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := event("x", at(tt.at), "1", tt.attrs...)
			ev.Customer, ev.Element, ev.Contract = tt.customer, tt.element, tt.contract
			charges, err := e.Resolve(&ev, nil)
			if got := reasonOf(err); got != tt.reason {
				t.Fatalf("reason %q (%v), want %q", got, err, tt.reason)
			}
			if tt.reason != "" {
				if u := err.(*Unrated); u.Reason == "" {
					t.Error("no explanation")
				}
				return
			}
			if len(charges) != tt.fees {
				t.Fatalf("%d charges, want %d", len(charges), tt.fees)
			}
			k := charges[0].Key
			if k.Contract != tt.contr || k.Rate != tt.rate || k.Split[0] != tt.split || k.Tenant != "t1" || k.Customer != tt.customer {
				t.Errorf("key %+v, want contract %s rate %s split %q", k, tt.contr, tt.rate, tt.split)
			}
		})
	}
}

// Two contracts on the same day both metering the element: ambiguous unless
// the record names one.
func TestAmbiguousContract(t *testing.T) {
	c := resolutionCatalogue()
	c.ServiceContracts[0].End, c.ServiceContracts[0].Plans[0].End = nil, nil
	e := compile(t, c)
	ev := event("x", time.Date(2026, 4, 2, 0, 0, 0, 0, tokyo), "1")
	if _, err := e.Resolve(&ev, nil); reasonOf(err) != schemas.ReasonAmbiguousContract {
		t.Fatalf("err = %v, want ambiguous_contract", err)
	}
	ev.Contract = "k2"
	charges, err := e.Resolve(&ev, nil)
	if err != nil || charges[0].Key.Contract != "k2" {
		t.Fatalf("named contract: %v %v", charges, err)
	}
}

// A split fee keeps a running quantity per attribute value; the tiers of one
// value do not move the other's price.
func TestSplitBy(t *testing.T) {
	c := oneFee(volume([3]string{"10", "2", "0"}, [3]string{"", "1", "0"}), "JPY",
		withFee(func(v *catalog.FeeVersion) { v.SplitBy = []string{"region"} }))
	e := compile(t, c)
	s := newStream(e)
	totals := map[string]int64{}
	for i, r := range []struct{ region, qty string }{{"a", "10"}, {"b", "5"}, {"a", "1"}, {"", "3"}} {
		ev := event("x", march.Add(time.Duration(i)*time.Second), r.qty, "region", r.region)
		if r.region == "" {
			ev.Attributes = nil
		}
		lines, err := s.rate(&ev)
		if err != nil {
			t.Fatal(err)
		}
		totals[lines[0].Key.Item()] += lines[0].Line.Amount
	}
	want := map[string]int64{"f[a]": 11, "f[b]": 10, "f[]": 6}
	for k, v := range want {
		if totals[k] != v {
			t.Errorf("%s = %d, want %d (all %v)", k, totals[k], v, totals)
		}
	}
}

func TestResolveAllocatesNothing(t *testing.T) {
	e := compile(t, resolutionCatalogue())
	ev := event("x", time.Date(2026, 3, 10, 0, 0, 0, 0, tokyo), "12.5", "region", "tokyo")
	buf := make([]Charge, 0, 4)
	var st State
	allocs := testing.AllocsPerRun(100, func() {
		charges, err := e.Resolve(&ev, buf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := charges[0].Apply(&st, &ev); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Resolve+Apply allocates %.1f times per event, want 0", allocs)
	}
}

func TestDaysIn(t *testing.T) {
	for y := 1999; y <= 2101; y++ {
		for m := time.January; m <= time.December; m++ {
			if got, want := daysIn(y, m), time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day(); got != want {
				t.Fatalf("daysIn(%d, %s) = %d, want %d", y, m, got, want)
			}
		}
	}
}

// Every day from 2025 to 2029 lies in exactly the period periodOf gives, for
// every closing day, and consecutive periods tile the calendar.
func TestPeriodsTile(t *testing.T) {
	for closing := 0; closing <= 28; closing++ {
		b := &basic{closingDay: closing, loc: time.UTC}
		prev := b.periodOf(2025, 1, 1)
		for d := dayNumber(2025, 1, 1); d < dayNumber(2030, 1, 1); d++ {
			date := dateOf(d)
			p := b.periodOf(date.Year, date.Month, date.Day)
			if d < dayOf(p.Start) || d > dayOf(p.End) {
				t.Fatalf("closing %d: %s outside its period %s [%s, %s]", closing, date, p.ID, p.Start, p.End)
			}
			if p.ID != prev.ID {
				if p.ID != prev.ID+1 || dayOf(p.Start) != dayOf(prev.End)+1 || p.ID.Month() != p.End.Month {
					t.Fatalf("closing %d: period %s [%s, %s] does not follow %s [%s, %s]", closing, p.ID, p.Start, p.End, prev.ID, prev.Start, prev.End)
				}
				prev = p
			}
		}
	}
}
