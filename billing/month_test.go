package billing

import (
	"os"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func date(s string) catalog.Date {
	d, err := catalog.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// monthTenant loads testdata/month.yaml and compiles it.
func monthTenant(t testing.TB) *Tenant {
	t.Helper()
	f, err := os.Open("testdata/month.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := catalog.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := pricing.Compile(c)
	if err != nil {
		t.Fatal(err)
	}
	return NewTenant("acme", e, c)
}

// MonthEvents are c1's November records, in the order they were accepted.
func monthEvents() []schemas.UsageEvent {
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	ev := func(id, contract, element, qty string, day, hour int) schemas.UsageEvent {
		at := time.Date(2026, 11, day, hour, 0, 0, 0, tokyo)
		return schemas.UsageEvent{Tenant: "acme", ID: id, Customer: "c1", Contract: contract, Element: element,
			Quantity: dec(qty), Time: at, ReceivedAt: at.Add(time.Second)}
	}
	return []schemas.UsageEvent{
		ev("u1", "k-api", "calls", "800", 1, 0), // the first instant of the period (00:00 JST)
		ev("u2", "k-api", "gb", "120", 3, 9),
		ev("u3", "k-api", "calls", "1200", 10, 12),
		ev("u4", "k-food", "meals", "2", 15, 12),
		ev("u5", "k-api", "gb", "150", 20, 9),
		ev("u6", "k-api", "calls", "1000", 30, 23), // the last hour of the period
		ev("u7", "k-food", "meals", "1", 30, 12),
		ev("u8", "k-api", "calls", "999", 31, 0), // 1 December JST: the next period
	}
}

func composeMonth(t testing.TB, tn *Tenant, events []schemas.UsageEvent) *Receivable {
	t.Helper()
	p, ok, err := tn.Period("b1", pricing.PeriodOfMonth(2026, time.November))
	if err != nil || !ok {
		t.Fatalf("period: %v %v", ok, err)
	}
	charges, err := tn.Charges("b1", p, tn.RateCustomer(events))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Compose(Input{Tenant: "acme", Customer: "c1", BasicContract: "b1", Period: "2026-11", Start: p.Start, End: p.End,
		TimeZone: "Asia/Tokyo", Currency: "JPY", Rounding: "half_up", Charges: charges})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type wantLine struct {
	kind           Kind
	contract, item string
	qty, amount    string
	cat            catalog.TaxCategory
	rate           string
	incl           bool
	tax            string
	from, to       string
}

// TestMonthReceivable closes a realistic month to the receivable worked out
// by hand:
//
//	fixed   k-base    base-fee     3,000 × 19/30 days (from 12 Nov)     = 1,900   10 % excl
//	fixed   k-news    news-fee     4,000, whole month                   = 4,000    8 % excl
//	fixed   k-support support-fee  1,100 × 20/30 days (to 20 Nov) = 733.3 → 733  10 % incl
//	metered k-api     api-calls    3,000 calls graduated: 1,000 × 1 + 2,000 × 0.5 = 2,000   10 % excl
//	discount k-api    api-calls    10 % of 2,000                        = −200    10 % excl
//	metered k-api     storage-gb   max 150 GB, volume: 150 × 8          = 1,200   10 % excl
//	metered k-food    meals        3 × 540 (tax included)               = 1,620    8 % incl
//	tax 10 % excl: (1,900 + 2,000 − 200 + 1,200) × 10 % = 4,900 × 0.1   =   490
//	tax  8 % excl: 4,000 × 8 %                                          =   320
//	contained 10 %: 733 × 10/110 = 66.64 → 67;  contained 8 %: 1,620 × 8/108 = 120
//	subtotal 11,453, discounts −200, tax added 810, total 12,063 (tax included 187)
//
// The 999 calls of 1 December (JST) are not November's.
func TestMonthReceivable(t *testing.T) {
	tn := monthTenant(t)
	r := composeMonth(t, tn, monthEvents())
	want := []wantLine{
		{KindFixed, "k-base", "base-fee", "1", "1900", "standard", "0.1", false, "190", "2026-11-12", "2026-11-30"},
		{KindFixed, "k-news", "news-fee", "1", "4000", "reduced", "0.08", false, "320", "2026-11-01", "2026-11-30"},
		{KindFixed, "k-support", "support-fee", "1", "733", "standard", "0.1", true, "67", "2026-11-01", "2026-11-20"},
		{KindMetered, "k-api", "api-calls", "3000", "2000", "standard", "0.1", false, "200", "2026-11-01", "2026-11-30"},
		{KindDiscount, "k-api", "api-calls", "3000", "-200", "standard", "0.1", false, "-20", "2026-11-01", "2026-11-30"},
		{KindMetered, "k-api", "storage-gb", "150", "1200", "standard", "0.1", false, "120", "2026-11-01", "2026-11-30"},
		{KindMetered, "k-food", "meals", "3", "1620", "reduced", "0.08", true, "120", "2026-11-01", "2026-11-30"},
		{KindTax, "", "tax standard 10%", "0", "490", "standard", "0.1", false, "490", "2026-11-01", "2026-11-30"},
		{KindTax, "", "tax reduced 8%", "0", "320", "reduced", "0.08", false, "320", "2026-11-01", "2026-11-30"},
	}
	if len(r.Lines) != len(want) {
		for _, l := range r.Lines {
			t.Logf("%s %s %s %s %s", l.Kind, l.Contract, l.Item, l.Quantity, l.Amount)
		}
		t.Fatalf("%d lines, want %d", len(r.Lines), len(want))
	}
	sum := decimal.Zero
	for i, w := range want {
		l := r.Lines[i]
		sum = sum.Add(l.Amount)
		if l.Kind != w.kind || l.Contract != w.contract || l.Item != w.item || !l.Quantity.Equal(dec(w.qty)) ||
			!l.Amount.Equal(dec(w.amount)) || l.TaxCategory != w.cat || !l.TaxRate.Equal(dec(w.rate)) ||
			l.TaxInclusive != w.incl || !l.Tax.Equal(dec(w.tax)) || l.ChargeFrom != date(w.from) || l.ChargeTo != date(w.to) ||
			l.ChargePeriod != "2026-11" || l.BillingPeriod != "2026-11" || l.Seq != i+1 {
			t.Errorf("line %d: %s %s %s q=%s a=%s %s %s incl=%v tax=%s %s..%s seq %d, want %+v", i+1, l.Kind, l.Contract, l.Item,
				l.Quantity, l.Amount, l.TaxCategory, l.TaxRate, l.TaxInclusive, l.Tax, l.ChargeFrom, l.ChargeTo, l.Seq, w)
		}
	}
	for _, c := range []struct {
		name      string
		got, want decimal.Decimal
	}{
		{"subtotal", r.Subtotal, dec("11453")},
		{"discounts", r.Discounts, dec("-200")},
		{"adjustments", r.Adjustments, dec("0")},
		{"tax exclusive", r.TaxExclusive, dec("810")},
		{"tax included", r.TaxIncluded, dec("187")},
		{"total", r.Total, dec("12063")},
		{"sum of lines", sum, dec("12063")},
	} {
		if !c.got.Equal(c.want) {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
	wantTaxes := []TaxSummary{
		{catalog.TaxStandard, dec("0.1"), false, dec("5100"), dec("-200"), dec("0"), dec("0"), dec("4900"), dec("490")},
		{catalog.TaxStandard, dec("0.1"), true, dec("733"), dec("0"), dec("0"), dec("0"), dec("733"), dec("67")},
		{catalog.TaxReduced, dec("0.08"), false, dec("4000"), dec("0"), dec("0"), dec("0"), dec("4000"), dec("320")},
		{catalog.TaxReduced, dec("0.08"), true, dec("1620"), dec("0"), dec("0"), dec("0"), dec("1620"), dec("120")},
	}
	if len(r.Taxes) != len(wantTaxes) {
		t.Fatalf("%d tax groups, want %d: %+v", len(r.Taxes), len(wantTaxes), r.Taxes)
	}
	for i, w := range wantTaxes {
		g := r.Taxes[i]
		if g.Category != w.Category || !g.Rate.Equal(w.Rate) || g.Inclusive != w.Inclusive || !g.Subtotal.Equal(w.Subtotal) ||
			!g.Discounts.Equal(w.Discounts) || !g.Adjust.Equal(w.Adjust) || !g.Base.Equal(w.Base) || !g.Tax.Equal(w.Tax) {
			t.Errorf("tax group %d: %+v, want %+v", i, g, w)
		}
	}
	if r.ID != ReceivableID("acme", "b1", "2026-11") {
		t.Errorf("id %s", r.ID)
	}
}

// Composing the same month from the records in another order (order-
// independent aggregations here) or again gives the identical receivable:
// the same ids, lines and hash.
func TestComposeIsDeterministic(t *testing.T) {
	tn := monthTenant(t)
	a := composeMonth(t, tn, monthEvents())
	evs := monthEvents()
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	b := composeMonth(t, tn, evs)
	if a.Hash != b.Hash || a.ID != b.ID || len(a.Lines) != len(b.Lines) {
		t.Fatalf("hash %s vs %s", a.Hash, b.Hash)
	}
	for i := range a.Lines {
		if a.Lines[i].ID != b.Lines[i].ID || !a.Lines[i].Amount.Equal(b.Lines[i].Amount) {
			t.Errorf("line %d differs: %+v vs %+v", i, a.Lines[i], b.Lines[i])
		}
	}
	// A changed record changes the hash.
	evs[1].Quantity = evs[1].Quantity.Add(decimal.NewFromInt(1)) // u7: one more meal
	if c := composeMonth(t, tn, evs); c.Hash == a.Hash {
		t.Error("a different month has the same hash")
	}
}
