package run

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
)

// TestRunRoundsAReceivablePricedFinerThanTheCurrency: a plan with the
// receivable rounding point prices 12,345 GiB at 0.0001 USD = 1.2345 (the
// stream's lines carry the same exact amounts, so reconciliation matches);
// the stored receivable keeps the exact line, adds a rounding line of
// −0.0045 and totals 1.23; read back, its rounding is there and a second
// run finds it unchanged.
func TestRunRoundsAReceivablePricedFinerThanTheCurrency(t *testing.T) {
	e := newEnv(t)
	const tenant = "fine"
	c, err := catalog.Decode(strings.NewReader(`
services: [{code: svc, name: Svc, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: service, plans: [p]}]}]
plans: [{code: p, name: P, versions: [{valid_from: "2019-01-01T00:00:00Z", type: metered, currency: USD, fees: [gib], rounding_point: receivable, precision: 9}]}]
fees: [{code: gib, name: GiB, versions: [{valid_from: "2019-01-01T00:00:00Z", kind: metered, element: gib, rates: [{rate_table: price}], tax_category: exempt}]}]
elements: [{code: gib, name: GiB, versions: [{valid_from: "2019-01-01T00:00:00Z", unit: GiB, aggregation: sum}]}]
rate_tables: [{code: price, name: Price, versions: [{valid_from: "2019-01-01T00:00:00Z", model: per_unit, unit_price: 0.0001}]}]
basic_contracts: [{id: b1, customer: c1, start_date: "2019-01-01", currency: USD, closing_day: 0, time_zone: UTC, rounding: half_up}]
service_contracts: [{id: k1, customer: c1, basic_contract: b1, service: svc, start_date: "2019-01-01", plans: [{plan: p, start_date: "2019-01-01"}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	c.Tenant = tenant
	e.cats[tenant] = c
	e.now = time.Date(2019, 4, 2, 0, 0, 0, 0, time.UTC)
	var evs []schemas.UsageEvent
	for i, q := range []string{"12000", "345"} {
		at := time.Date(2019, 3, 2+i, 0, 0, 0, 0, time.UTC)
		evs = append(evs, schemas.UsageEvent{Tenant: tenant, ID: "g" + q, Customer: "c1", Contract: "k1", Element: "gib",
			Quantity: dec(q), Time: at, ReceivedAt: at})
	}
	e.storeRecords(evs...)
	e.streamLines(tenant, pricing.PeriodOfMonth(2019, time.March), evs, nil)

	res := e.run(tenant, "2019-03", "job_f1")
	if res.Differences != 0 || res.Receivables != 1 {
		t.Errorf("run %+v, want one receivable and no difference", res)
	}
	r := e.receivable(tenant, "2019-03")
	if !r.Total.Equal(dec("1.23")) || !r.RoundingAmount.Equal(dec("-0.0045")) || !r.Subtotal.Equal(dec("1.2345")) ||
		len(r.Taxes) != 1 || !r.Taxes[0].Rounding.Equal(dec("-0.0045")) || !r.Taxes[0].Base.Equal(dec("1.23")) {
		t.Errorf("stored receivable: total %s rounding %s subtotal %s taxes %+v", r.Total, r.RoundingAmount, r.Subtotal, r.Taxes)
	}
	lines := e.lines(tenant, r.ID)
	sum := dec("0")
	kinds := map[billing.Kind]string{}
	for _, l := range lines {
		sum = sum.Add(l.Amount)
		kinds[l.Kind] = l.Amount.String()
	}
	if kinds[billing.KindMetered] != "1.2345" || kinds[billing.KindRounding] != "-0.0045" || !sum.Equal(r.Total) {
		t.Errorf("stored lines %v sum to %s, want metered 1.2345 and rounding -0.0045 summing to the total", kinds, sum)
	}
	again := e.run(tenant, "2019-03", "job_f2")
	if again.Receivables != 0 || again.Unchanged != 1 {
		t.Errorf("second run %+v, want the receivable unchanged (its hash read back equal)", again)
	}
	if s, err := e.store.Get(context.Background(), tenant, r.ID); err != nil || s.Hash != r.Hash {
		t.Errorf("read back: %v", err)
	}
}
