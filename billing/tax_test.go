package billing

import (
	"strings"
	"testing"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
	"github.com/shopspring/decimal"
)

func TestTaxRatesAreEffectiveDated(t *testing.T) {
	tests := []struct {
		cat  catalog.TaxCategory
		on   string
		want string
	}{
		{catalog.TaxStandard, "2019-09-30", "0.08"},
		{catalog.TaxStandard, "2019-10-01", "0.1"},
		{"", "2026-11-30", "0.1"},
		{catalog.TaxReduced, "2026-11-30", "0.08"},
		{catalog.TaxStandard, "2014-03-31", "0.05"},
		{catalog.TaxExempt, "2026-11-30", "0"},
		{catalog.TaxOutOfScope, "2026-11-30", "0"},
	}
	for _, tt := range tests {
		got, err := JapanTaxRates.Rate(tt.cat, date(tt.on))
		if err != nil || !got.Equal(dec(tt.want)) {
			t.Errorf("%s on %s: %s %v, want %s", tt.cat, tt.on, got, err, tt.want)
		}
	}
	if _, err := JapanTaxRates.Rate(catalog.TaxStandard, date("1980-01-01")); err == nil {
		t.Error("a day before any rate has a rate")
	}
}

// The tax of a group is computed once from its sum and rounded once with the
// contract's mode — never per line (three lines of 333 yen at 10 % are 99.9
// → 100 yen half up, where rounding per line would give 3 × 33 = 99) — and
// allocated so the lines' shares sum to it.
func TestTaxOncePerRateRoundedOnce(t *testing.T) {
	tests := []struct {
		name      string
		mode      money.Mode
		currency  string
		inclusive bool
		amounts   []string
		tax       string
		shares    []string
	}{
		{"exclusive half up", money.HalfUp, "JPY", false, []string{"333", "333", "333"}, "100", []string{"34", "33", "33"}},
		{"exclusive down", money.Down, "JPY", false, []string{"333", "333", "333"}, "99", []string{"33", "33", "33"}},
		{"exclusive up", money.Up, "JPY", false, []string{"331", "1"}, "34", []string{"34", "0"}},
		{"inclusive half up", money.HalfUp, "JPY", true, []string{"1100", "550", "105"}, "160", []string{"100", "50", "10"}},
		{"inclusive down", money.Down, "JPY", true, []string{"1000"}, "90", []string{"90"}},
		{"exclusive cents", money.HalfUp, "USD", false, []string{"0.05", "0.05", "0.05"}, "0.02", []string{"0.01", "0.01", "0.00"}},
		{"with a discount", money.HalfUp, "JPY", false, []string{"1000", "-100"}, "90", []string{"100", "-10"}},
		{"negative (credit)", money.HalfUp, "JPY", false, []string{"-333", "-333", "-333"}, "-100", []string{"-33", "-33", "-34"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cs []Charge
			for i, a := range tt.amounts {
				cs = append(cs, Charge{Kind: KindFixed, Contract: "k", Fee: "f", Item: string(rune('a' + i)), Amount: dec(a),
					Discount: decimal.Zero, Quantity: decimal.NewFromInt(1), ChargePeriod: "2026-11", TaxInclusive: tt.inclusive})
			}
			r, err := Compose(Input{Tenant: "t", Customer: "c", BasicContract: "b", Period: "2026-11",
				Start: date("2026-11-01"), End: date("2026-11-30"), Currency: tt.currency, Rounding: tt.mode, Charges: cs})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Taxes) != 1 || !r.Taxes[0].Tax.Equal(dec(tt.tax)) {
				t.Fatalf("taxes %+v, want one of %s", r.Taxes, tt.tax)
			}
			sum, total := decimal.Zero, decimal.Zero
			for i, s := range tt.shares {
				if !r.Lines[i].Tax.Equal(dec(s)) {
					t.Errorf("line %d tax %s, want %s", i, r.Lines[i].Tax, s)
				}
				sum = sum.Add(r.Lines[i].Tax)
			}
			for _, l := range r.Lines {
				total = total.Add(l.Amount)
			}
			if !sum.Equal(dec(tt.tax)) || !total.Equal(r.Total) {
				t.Errorf("shares sum %s, lines sum %s, total %s", sum, total, r.Total)
			}
			if tt.inclusive && (!r.TaxIncluded.Equal(dec(tt.tax)) || !r.TaxExclusive.IsZero()) {
				t.Errorf("inclusive: included %s exclusive %s", r.TaxIncluded, r.TaxExclusive)
			}
		})
	}
}

// An adjustment (a closed period's re-rated total minus what was billed) is
// a signed line carrying both periods, taxed with its fee's rate; a zero
// adjustment is no line.
func TestAdjustmentLines(t *testing.T) {
	cs := []Charge{
		{Kind: KindFixed, Contract: "k", Fee: "f", Item: "f", Amount: dec("1000"), Discount: decimal.Zero, ChargePeriod: "2026-12"},
		{Kind: KindAdjustment, Contract: "k", Fee: "g", Item: "g", Amount: dec("5000"), ChargePeriod: "2026-11",
			From: date("2026-11-01"), To: date("2026-11-30"), Note: "late usage"},
		{Kind: KindAdjustment, Contract: "k", Fee: "h", Item: "h", Amount: dec("-300"), ChargePeriod: "2026-11",
			From: date("2026-11-01"), To: date("2026-11-30"), Note: "invalidated"},
		{Kind: KindAdjustment, Contract: "k", Fee: "z", Item: "z", Amount: decimal.Zero, ChargePeriod: "2026-11"},
	}
	r, err := Compose(Input{Tenant: "t", Customer: "c", BasicContract: "b", Period: "2026-12",
		Start: date("2026-12-01"), End: date("2026-12-31"), Currency: "JPY", Rounding: money.HalfUp, Charges: cs})
	if err != nil {
		t.Fatal(err)
	}
	// 1,000 + 5,000 − 300 = 5,700; tax 570; total 6,270.
	if !r.Adjustments.Equal(dec("4700")) || !r.TaxExclusive.Equal(dec("570")) || !r.Total.Equal(dec("6270")) {
		t.Errorf("adjustments %s tax %s total %s", r.Adjustments, r.TaxExclusive, r.Total)
	}
	var adj []Line
	for _, l := range r.Lines {
		if l.Kind == KindAdjustment {
			adj = append(adj, l)
		}
	}
	if len(adj) != 2 || adj[0].ChargePeriod != "2026-11" || adj[0].BillingPeriod != "2026-12" || !adj[0].Amount.Equal(dec("5000")) ||
		!adj[1].Amount.Equal(dec("-300")) {
		t.Errorf("adjustment lines %+v", adj)
	}
}

func TestComposeRefusesSubMinorAmounts(t *testing.T) {
	_, err := Compose(Input{Tenant: "t", BasicContract: "b", Period: "2026-11", Currency: "JPY",
		Charges: []Charge{{Kind: KindFixed, Amount: dec("1.5"), Discount: decimal.Zero}}})
	if err == nil {
		t.Error("1.5 JPY accepted")
	}
}

func TestFormatNumber(t *testing.T) {
	tests := []struct {
		format string
		seq    uint64
		want   string
		bad    bool
	}{
		{DefaultNumberFormat, 42, "INV-00000042", false},
		{"INV-{yyyy}{mm}-{seq:6}", 42, "INV-202611-000042", false},
		{"{seq}", 7, "7", false},
		{"A{seq:3}", 12345, "A12345", false},
		{"INV", 1, "", true},
		{"{seq}{seq}", 1, "", true},
		{"{seq:0}", 1, "", true},
		{"{year}-{seq}", 1, "", true},
		{"{seq", 1, "", true},
		{"請求{seq}", 1, "", true},
	}
	for _, tt := range tests {
		got, err := FormatNumber(tt.format, tt.seq, "2026-11")
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("%q %d: %q %v, want %q (error %v)", tt.format, tt.seq, got, err, tt.want, tt.bad)
		}
	}
}

func TestReceivableIDNamesItsPeriod(t *testing.T) {
	for _, tt := range []struct{ period, prefix string }{
		{"2026-11", "rcv_202611_"},
		{"2019-03-11/P1W", "rcv_20190311w_"},
		{"2019-03-14", "rcv_20190314d_"},
	} {
		id := ReceivableID("t", "b", tt.period)
		if p, ok := PeriodOfID(id); !ok || p != tt.period || !strings.HasPrefix(id, tt.prefix) || strings.Contains(id, "/") {
			t.Errorf("%s: %s %v, want the period %s and the prefix %s", id, p, ok, tt.period, tt.prefix)
		}
	}
	if ReceivableID("t", "b", "2019-03-11/P1W") == ReceivableID("t", "b", "2019-03-11") {
		t.Error("a week and its first day have one receivable id")
	}
	id := ReceivableID("t", "b", "2026-11")
	week := ReceivableID("t", "b", "2019-03-11/P1W")
	for _, bad := range []string{"", "rcv_", "rcv_202613_" + id[11:], "rcv_202611-" + id[11:], id + "0", "RCV" + id[3:],
		"rcv_20190311x_" + week[14:], "rcv_20190332w_" + week[14:], "rcv_2019031aw_" + week[14:]} {
		if _, ok := PeriodOfID(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
