package loadgen

import (
	"fmt"
	"strings"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/rater/pricing"
)

// tieredMasters price the generator's four elements by graduated tiers
// rounded per period, so a run's lines depend on the running state of each
// customer-period (the rater keeps it in Redis) and each customer-period's
// total is round(cost(Σ quantity)) whatever order its records were rated in.
// The tiers of api_calls are crossed by the heavy customers within a run.
const tieredMasters = `
services: [{code: lg, name: Loadgen, versions: [{valid_from: 2019-01-01T00:00:00Z, kind: service}]}]
elements:
  - {code: api_calls, name: API calls, versions: [{valid_from: 2019-01-01T00:00:00Z, unit: call, aggregation: sum}]}
  - {code: storage_gb_hours, name: Storage, versions: [{valid_from: 2019-01-01T00:00:00Z, unit: gbh, aggregation: sum}]}
  - {code: transfer_gb, name: Transfer, versions: [{valid_from: 2019-01-01T00:00:00Z, unit: gb, aggregation: sum}]}
  - {code: sms, name: SMS, versions: [{valid_from: 2019-01-01T00:00:00Z, unit: sms, aggregation: sum}]}
rate_tables:
  - {code: calls, name: Calls, versions: [{valid_from: 2019-01-01T00:00:00Z, model: graduated, tiers: [{up_to: 10000, unit_price: 0.05}, {up_to: 200000, unit_price: 0.02}, {up_to: 2000000, unit_price: 0.008}, {unit_price: 0.003}]}]}
  - {code: storage, name: Storage, versions: [{valid_from: 2019-01-01T00:00:00Z, model: graduated, tiers: [{up_to: 1000, unit_price: 0.011}, {unit_price: 0.007}]}]}
  - {code: transfer, name: Transfer, versions: [{valid_from: 2019-01-01T00:00:00Z, model: graduated, tiers: [{up_to: 100, unit_price: 9.8}, {up_to: 1000, unit_price: 7.5}, {unit_price: 5}]}]}
  - {code: sms, name: SMS, versions: [{valid_from: 2019-01-01T00:00:00Z, model: graduated, tiers: [{up_to: 100, unit_price: 3}, {unit_price: 2.5}]}]}
fees:
  - {code: calls, name: Calls, versions: [{valid_from: 2019-01-01T00:00:00Z, kind: metered, element: api_calls, rates: [{rate_table: calls}]}]}
  - {code: storage, name: Storage, versions: [{valid_from: 2019-01-01T00:00:00Z, kind: metered, element: storage_gb_hours, rates: [{rate_table: storage}]}]}
  - {code: transfer, name: Transfer, versions: [{valid_from: 2019-01-01T00:00:00Z, kind: metered, element: transfer_gb, rates: [{rate_table: transfer}]}]}
  - {code: sms, name: SMS, versions: [{valid_from: 2019-01-01T00:00:00Z, kind: metered, element: sms, rates: [{rate_table: sms}]}]}
plans: [{code: lg-std, name: Loadgen standard, versions: [{valid_from: 2019-01-01T00:00:00Z, type: metered, currency: JPY, rounding_point: period, fees: [calls, storage, transfer, sms]}]}]
`

// TieredCatalogue is the catalogue file of a catalogue-priced run: the
// masters above and a basic and a service contract on plan lg-std for each
// of the run's customers and its probe customer (names as the generator
// gives them for runID and customers; RunCustomers). Create the customers
// (POST /v1/customers) and apply it to the tenant (kakin catalog apply)
// before the run, and give the same file to the run (Config.Engine,
// CompileCatalogue) for the expected totals.
func TieredCatalogue(runID string, customers int) string {
	var b strings.Builder
	b.WriteString(tieredMasters)
	names := RunCustomers(runID, customers)
	b.WriteString("basic_contracts:\n")
	for _, c := range names {
		fmt.Fprintf(&b, "  - {id: b-%s, customer: %s, start_date: 2020-01-01, currency: JPY, closing_day: 0, time_zone: Asia/Tokyo, rounding: half_up}\n", c, c)
	}
	b.WriteString("service_contracts:\n")
	for _, c := range names {
		fmt.Fprintf(&b, "  - {id: s-%s, customer: %s, basic_contract: b-%s, service: lg, start_date: 2020-01-01, plans: [{plan: lg-std, start_date: 2020-01-01}]}\n", c, c, c)
	}
	return b.String()
}

// RunCustomers are the customers a run sends for: its load customers and its
// probe customer.
func RunCustomers(runID string, customers int) []string {
	return append(customerNames(runID, customers), probeCustomer(runID))
}

// CompileCatalogue compiles a catalogue file into the engine the rater
// prices the tenant with.
func CompileCatalogue(doc string) (*pricing.Engine, error) {
	cat, err := catalog.Decode(strings.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("decode catalogue: %w", err)
	}
	eng, err := pricing.Compile(cat)
	if err != nil {
		return nil, fmt.Errorf("compile catalogue: %w", err)
	}
	return eng, nil
}
