package pricing

import (
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/schemas"
)

// A discount contract without a service is customer-wide: it discounts the
// charges of every service contract of the customer (issue 19, the CLI's
// "customer-wide discount without a dummy service"); with a service, only
// that service's contracts.
func TestCustomerWideDiscount(t *testing.T) {
	twoServices := func(service string) *catalog.Catalogue {
		return oneFee(perUnit("100"), "JPY", func(c *catalog.Catalogue) {
			c.Services = append(c.Services, catalog.Service{Code: "s2", Name: "S2", Versions: []catalog.ServiceVersion{{Validity: since, Kind: catalog.KindService}}})
			c.Elements = append(c.Elements, catalog.Element{Code: "e2", Name: "E2", Versions: []catalog.ElementVersion{{Validity: since, Unit: "u", Aggregation: catalog.AggSum}}})
			c.Fees = append(c.Fees, catalog.Fee{Code: "f2", Name: "F2", Versions: []catalog.FeeVersion{{Validity: since, Kind: catalog.FeeMetered,
				Element: "e2", Rates: []catalog.RateChoice{{RateTable: "rt"}}}}})
			c.Plans = append(c.Plans, catalog.Plan{Code: "p2", Name: "P2", Versions: []catalog.PlanVersion{{Validity: since, Type: catalog.PlanMetered, Currency: "JPY", Fees: []string{"f2"}}}})
			k2 := c.ServiceContracts[0]
			k2.ID, k2.Service = "k2", "s2"
			k2.Plans = []catalog.PricePlanTerm{{Plan: "p2", DateRange: catalog.DateRange{Start: date("2018-01-01")}}}
			c.ServiceContracts = append(c.ServiceContracts, k2)
			c.DiscountTables = append(c.DiscountTables, catalog.DiscountTable{Code: "ten", Name: "10 %", Versions: []catalog.DiscountTableVersion{{Validity: since,
				Kind: catalog.DiscountPercentage, Basis: catalog.BasisAmount, Tiers: []catalog.DiscountTier{{From: dec("0"), Value: dec("10")}}}}})
			c.DiscountContracts = append(c.DiscountContracts, catalog.DiscountContract{ID: "d", Customer: "c", Service: service, DiscountTable: "ten",
				DateRange: catalog.DateRange{Start: date("2018-01-01")}})
			since2018(c)
		}, from2018)
	}
	at := time.Date(2019, 3, 2, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		service string
		e, e2   int64 // the lines of one unit of e (contract k, service s) and e2 (k2, s2)
	}{
		{service: "", e: 90, e2: 90},   // customer-wide: both services
		{service: "s", e: 90, e2: 100}, // only service s
		{service: "s2", e: 100, e2: 90},
	} {
		e := compile(t, twoServices(tc.service))
		ev1, ev2 := event("a", at, "1"), event("b", at, "1")
		ev2.Element = "e2"
		b := e.RatePeriod([]schemas.UsageEvent{ev1, ev2})
		if len(b.Lines) != 2 || b.Lines[0].Line.Amount != tc.e || b.Lines[1].Line.Amount != tc.e2 {
			t.Errorf("service %q: lines %+v, want %d and %d", tc.service, b.Lines, tc.e, tc.e2)
		}
	}
}
