package pricing

import (
	"reflect"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
)

type discountSpec struct {
	id, kind, basis string
	credit          bool
	tiers           [][2]string // from, value
	level, target   string
	service         string // the discounted service; "" is the catalogue's service "s"
	order           int
	start, end      string
}

func withDiscounts(ds ...discountSpec) func(*catalog.Catalogue) {
	return func(c *catalog.Catalogue) {
		c.Fees = append(c.Fees, catalog.Fee{Code: "other", Name: "O", Versions: []catalog.FeeVersion{{Validity: since,
			Kind: catalog.FeeFixed, Amount: decp("1"), Recurrence: catalog.Monthly}}})
		for _, d := range ds {
			v := catalog.DiscountTableVersion{Validity: since, Kind: catalog.DiscountKind(d.kind), Basis: catalog.DiscountBasis(d.basis), Credit: d.credit}
			for _, t := range d.tiers {
				v.Tiers = append(v.Tiers, catalog.DiscountTier{From: dec(t[0]), Value: dec(t[1])})
			}
			c.DiscountTables = append(c.DiscountTables, catalog.DiscountTable{Code: "dt-" + d.id, Name: d.id, Versions: []catalog.DiscountTableVersion{v}})
			start := d.start
			if start == "" {
				start = "2026-01-01"
			}
			service := d.service
			if service == "" {
				service = "s"
			}
			dc := catalog.DiscountContract{ID: d.id, Customer: "c", Service: service, DiscountTable: "dt-" + d.id,
				DateRange: catalog.DateRange{Start: date(start)}, Scope: catalog.DiscountScope{Level: d.level, Target: d.target}, Order: d.order}
			if d.end != "" {
				dc.End = datep(d.end)
			}
			c.DiscountContracts = append(c.DiscountContracts, dc)
		}
	}
}

func TestDiscounts(t *testing.T) {
	pct10 := discountSpec{id: "d10", kind: "percentage", basis: "amount", tiers: [][2]string{{"0", "10"}}}
	tests := []struct {
		name  string
		price string
		ds    []discountSpec
		qtys  []string
		lines []int64
		disc  []int64 // discount part of each line
	}{
		{"percentage", "100", []discountSpec{pct10}, []string{"1", "1"}, []int64{90, 90}, []int64{-10, -10}},
		{"fixed, larger than the charge: never below zero", "100", []discountSpec{{id: "f", kind: "fixed", basis: "amount", tiers: [][2]string{{"0", "250"}}}},
			[]string{"1", "1", "1"}, []int64{0, 0, 50}, []int64{-100, -100, -50}},
		{"fixed with credit goes below zero", "100", []discountSpec{{id: "f", kind: "fixed", basis: "amount", credit: true, tiers: [][2]string{{"0", "250"}}}},
			[]string{"1", "1"}, []int64{-150, 100}, []int64{-250, 0}},
		{"tiered by quantity", "100", []discountSpec{{id: "q", kind: "percentage", basis: "quantity", tiers: [][2]string{{"0", "0"}, {"2", "50"}}}},
			[]string{"1", "1", "1"}, []int64{100, 0, 50}, []int64{0, -100, -50}}, // 100; 200→100; 300→150
		{"tiered by amount", "100", []discountSpec{{id: "a", kind: "percentage", basis: "amount", tiers: [][2]string{{"0", "0"}, {"150", "20"}}}},
			[]string{"1", "1"}, []int64{100, 60}, []int64{0, -40}}, // 100; 200→160
		{"in order, each on what the previous left", "100", []discountSpec{
			{id: "second", kind: "fixed", basis: "amount", order: 2, tiers: [][2]string{{"0", "10"}}},
			pct10, // order 0
		}, []string{"1"}, []int64{80}, []int64{-20}}, // 100 → 90 → 80 (fixed first would give 81)
		{"same order, by id", "100", []discountSpec{
			{id: "b-fixed", kind: "fixed", basis: "amount", tiers: [][2]string{{"0", "10"}}},
			{id: "a-pct", kind: "percentage", basis: "amount", tiers: [][2]string{{"0", "10"}}},
		}, []string{"1"}, []int64{80}, []int64{-20}},
		{"scope to another fee does not apply", "100", []discountSpec{{id: "o", kind: "percentage", basis: "amount", level: "fee", target: "other", tiers: [][2]string{{"0", "50"}}}},
			[]string{"1"}, []int64{100}, []int64{0}},
		{"scope to this fee", "100", []discountSpec{{id: "o", kind: "percentage", basis: "amount", level: "fee", target: "f", tiers: [][2]string{{"0", "50"}}}},
			[]string{"1"}, []int64{50}, []int64{-50}},
		{"scope to the plan", "100", []discountSpec{{id: "o", kind: "percentage", basis: "amount", level: "plan", target: "p", tiers: [][2]string{{"0", "50"}}}},
			[]string{"1"}, []int64{50}, []int64{-50}},
		{"scope to the contract", "100", []discountSpec{{id: "o", kind: "percentage", basis: "amount", level: "contract", target: "k", tiers: [][2]string{{"0", "50"}}}},
			[]string{"1"}, []int64{50}, []int64{-50}},
		{"not yet active", "100", []discountSpec{{id: "o", kind: "percentage", basis: "amount", start: "2026-04-01", tiers: [][2]string{{"0", "50"}}}},
			[]string{"1"}, []int64{100}, []int64{0}},
		{"percentage with rounding", "0.5", []discountSpec{{id: "o", kind: "percentage", basis: "amount", tiers: [][2]string{{"0", "33.3"}}}},
			[]string{"1", "1", "1"}, []int64{0, 1, 0}, []int64{-1, 1, -1}}, // gross 0.5→1, 1→1, 1.5→2; net 0.3335→0, 0.667→1, 1.0005→1
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := compile(t, oneFee(perUnit(tt.price), "JPY", withDiscounts(tt.ds...)))
			s := newStream(e)
			var lines, disc []int64
			for i, q := range tt.qtys {
				ev := event("x", march.Add(time.Duration(i)*time.Second), q)
				ls, err := s.rate(&ev)
				if err != nil {
					t.Fatal(err)
				}
				lines = append(lines, ls[0].Line.Amount)
				disc = append(disc, ls[0].Line.Discount)
			}
			if !reflect.DeepEqual(lines, tt.lines) || !reflect.DeepEqual(disc, tt.disc) {
				t.Errorf("lines %v discounts %v, want %v %v", lines, disc, tt.lines, tt.disc)
			}
		})
	}
}

// A discount contract ending mid-period: events after its last day are
// priced without it (on top of what was charged so far).
func TestDiscountEndingMidPeriod(t *testing.T) {
	e := compile(t, oneFee(perUnit("100"), "JPY", withDiscounts(discountSpec{id: "d", kind: "percentage", basis: "amount",
		end: "2026-03-15", tiers: [][2]string{{"0", "50"}}})))
	s := newStream(e)
	var lines []int64
	for _, day := range []int{14, 15, 16} {
		ev := event("x", time.Date(2026, 3, day, 12, 0, 0, 0, tokyo), "1")
		ls, err := s.rate(&ev)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, ls[0].Line.Amount)
	}
	// 50, 50 (100 at 50 %), then cost without discount 300 − 200 = 100.
	if want := []int64{50, 50, 100}; !reflect.DeepEqual(lines, want) {
		t.Errorf("lines %v, want %v", lines, want)
	}
}

// withService adds a service master (kind service) that customer "c" has no
// contract for unless a test adds one.
func withService(code string) func(*catalog.Catalogue) {
	return func(c *catalog.Catalogue) {
		c.Services = append(c.Services, catalog.Service{Code: code, Name: code,
			Versions: []catalog.ServiceVersion{{Validity: since, Kind: catalog.KindService}}})
	}
}

// withMsgContract gives customer "c" a second service contract "k-msg" on
// service "msg", plan "pm" with one metered fee "fm" on element "e" at 100.
func withMsgContract(c *catalog.Catalogue) {
	c.RateTables = append(c.RateTables, catalog.RateTable{Code: "rt-msg", Name: "RT msg",
		Versions: []catalog.RateTableVersion{func() catalog.RateTableVersion { v := perUnit("100"); v.Validity = since; return v }()}})
	c.Fees = append(c.Fees, catalog.Fee{Code: "fm", Name: "FM", Versions: []catalog.FeeVersion{{Validity: since, Kind: catalog.FeeMetered,
		Element: "e", Rates: []catalog.RateChoice{{RateTable: "rt-msg"}}}}})
	c.Plans = append(c.Plans, catalog.Plan{Code: "pm", Name: "PM", Versions: []catalog.PlanVersion{{Validity: since, Type: catalog.PlanMetered,
		Currency: c.BasicContracts[0].Currency, Fees: []string{"fm"}}}})
	c.ServiceContracts = append(c.ServiceContracts, catalog.ServiceContract{ID: "k-msg", Customer: "c", Basic: "b", Service: "msg",
		DateRange: catalog.DateRange{Start: date("2026-01-01")},
		Plans:     []catalog.PricePlanTerm{{Plan: "pm", DateRange: catalog.DateRange{Start: date("2026-01-01")}}}})
}

// A discount contract discounts only the charges of service contracts of
// its own service, within its scope and validity; one that matches nothing
// discounts nothing (regression: a discount contract for service "msg", which
// the customer had no contract for, took 10 % off its "s" line, 120 → 108).
func TestDiscountOnlyItsService(t *testing.T) {
	pct := func(service, level, target string) discountSpec {
		return discountSpec{id: "d", kind: "percentage", basis: "amount", service: service, level: level, target: target,
			tiers: [][2]string{{"0", "10"}}}
	}
	dated := func(d discountSpec, start, end string) discountSpec { d.start, d.end = start, end; return d }
	tests := []struct {
		name     string
		d        discountSpec
		msg      bool   // the customer also has contract k-msg on service "msg"
		contract string // the event names this contract ("" = the only one metering e)
		want     int64
	}{
		{"its own service, whole customer", pct("s", "", ""), false, "", 108},
		{"its own service, level customer", pct("s", "customer", ""), false, "", 108},
		{"its own service, scoped to the contract", pct("s", "contract", "k"), false, "", 108},
		{"its own service, scoped to the plan", pct("s", "plan", "p"), false, "", 108},
		{"its own service, scoped to the fee", pct("s", "fee", "f"), false, "", 108},
		{"another service the customer lacks, empty scope", pct("msg", "", ""), false, "", 120},
		{"another service the customer lacks, level customer", pct("msg", "customer", ""), false, "", 120},
		{"another service, scope names this contract", pct("msg", "contract", "k"), false, "", 120},
		{"another service, scope names this plan", pct("msg", "plan", "p"), false, "", 120},
		{"another service, scope names this fee", pct("msg", "fee", "f"), false, "", 120},
		{"another service the customer has: not this contract", pct("msg", "", ""), true, "k", 120},
		{"another service the customer has: its contract", pct("msg", "", ""), true, "k-msg", 90},
		{"its own service, not yet valid", dated(pct("s", "", ""), "2026-03-11", ""), false, "", 120},
		{"its own service, ended", dated(pct("s", "", ""), "2026-01-01", "2026-03-09"), false, "", 120},
		{"its own service, last day", dated(pct("s", "", ""), "2026-01-01", "2026-03-10"), false, "", 108},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []func(*catalog.Catalogue){withService("msg"), withDiscounts(tt.d)}
			if tt.msg {
				opts = append(opts, withMsgContract)
			}
			e := compile(t, oneFee(perUnit("120"), "JPY", opts...))
			ev := event("x", march, "1") // 2026-03-10 21:00 in Tokyo
			ev.Contract = tt.contract
			ls, err := newStream(e).rate(&ev)
			if err != nil {
				t.Fatal(err)
			}
			if len(ls) != 1 || ls[0].Line.Amount != tt.want {
				t.Fatalf("lines %+v, want one line of %d", ls, tt.want)
			}
			gross := int64(120)
			if tt.contract == "k-msg" {
				gross = 100
			}
			if ls[0].Line.Discount != tt.want-gross {
				t.Errorf("discount part %d, want %d", ls[0].Line.Discount, tt.want-gross)
			}
		})
	}
}

// Fixed fees follow the same rule: a discount for a service the contract is
// not of leaves its fixed fees alone.
func TestFixedFeeDiscountOnlyItsService(t *testing.T) {
	tests := []struct {
		name    string
		service string
		level   string
		target  string
		want    string
	}{
		{"its own service", "s", "", "", "810"},
		{"its own service, scoped to the fee", "s", "fee", "base", "810"},
		{"another service, empty scope", "msg", "", "", "900"},
		{"another service, scope names this contract", "msg", "contract", "k", "900"},
		{"another service, scope names this fee", "msg", "fee", "base", "900"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fixedCatalogue("900", catalog.Monthly, catalog.ProrateActualDays, catalog.Arrears, "2026-01-01", "",
				withService("msg"), withDiscounts(discountSpec{id: "d", kind: "percentage", basis: "amount", service: tt.service,
					level: tt.level, target: tt.target, tiers: [][2]string{{"0", "10"}}}))
			e := compile(t, c)
			lines, err := e.FixedCharges("k", PeriodOfMonth(2026, time.March))
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != 1 || !lines[0].Amount.Equal(dec(tt.want)) {
				t.Fatalf("lines %+v, want one of %s", lines, tt.want)
			}
		})
	}
}
