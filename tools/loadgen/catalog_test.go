package loadgen

import (
	"slices"
	"testing"

	"github.com/shopspring/decimal"
)

// A catalogue-priced run: the tiered catalogue prices every element for
// every customer of the run and its probe customer, and the expected totals
// are the engine's with running state — one line per unique event and
// probe, and per customer the same totals whatever order the records were
// rated in (the tiers are rounded per period), which is why the pipeline
// (one customer's records in one partition, interleaved with others') must
// arrive at them.
func TestTieredCatalogueRun(t *testing.T) {
	o := testOptions(func(o *Options) { o.Customers = 20; o.Events = 3000 })
	eng, err := CompileCatalogue(TieredCatalogue(o.RunID, o.Customers))
	if err != nil {
		t.Fatal(err)
	}
	o.Engine = eng
	g, err := NewGenerator(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	drain(t, g)
	for range 3 {
		if _, err := g.Probe(nil, testFrom); err != nil {
			t.Fatal(err)
		}
	}
	e := g.Expected()
	if e.Lines != uint64(o.Events+3) {
		t.Errorf("%d lines expected, want one per event and probe: %d", e.Lines, o.Events+3)
	}
	if len(e.PerCustomer) != o.Customers+1 || e.PerCustomer[g.ProbeCustomer()].IsZero() {
		t.Errorf("%d customers with totals, probe total %s", len(e.PerCustomer), e.PerCustomer[g.ProbeCustomer()])
	}
	reversed := slices.Clone(g.events)
	slices.Reverse(reversed)
	b := eng.RatePeriod(reversed)
	if len(b.Unrated) > 0 {
		t.Fatalf("%d events unrated: %v", len(b.Unrated), b.Unrated[0].Reason)
	}
	got := map[string]decimal.Decimal{}
	for _, l := range b.Lines {
		got[l.Key.Customer] = got[l.Key.Customer].Add(l.Line.Decimal())
	}
	for c, want := range e.PerCustomer {
		if !got[c].Equal(want) {
			t.Errorf("%s: %s in reverse order, %s in sending order", c, got[c], want)
		}
	}
	// Tiers are crossed: a flat price would give the heaviest customer
	// quantity × first tier price.
	var calls decimal.Decimal
	for _, ev := range g.events {
		if ev.Customer == g.CustomerName(0) && ev.Element == "api_calls" {
			calls = calls.Add(ev.Quantity)
		}
	}
	if calls.LessThan(decimal.NewFromInt(10000)) {
		t.Errorf("customer 1 sends %s calls, below the first tier's bound: no tier is crossed", calls)
	}
}
