package catalog

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

func TestDemoCatalogueIsValid(t *testing.T) {
	f, err := os.Open("../deploy/demo/catalogue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// Numbers keep their exact decimal text through YAML.
	price := c.RateTables[0].Versions[0].Tiers[0].UnitPrice
	if !price.Equal(decimal.RequireFromString("0.05")) || price.String() != "0.05" {
		t.Fatalf("unit price = %s, want exactly 0.05", price)
	}
}

func TestDecodeRejectsUnknownFields(t *testing.T) {
	_, err := Decode(strings.NewReader("plans:\n  - code: p\n    colour: red\n"))
	if err == nil || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("err = %v, want unknown field colour", err)
	}
}

func TestValidateReportsFields(t *testing.T) {
	tests := []struct {
		name, yaml string
		field      string
	}{
		{"tiers overlap", `
rate_tables:
  - code: rt
    versions:
      - valid_from: 2026-01-01T00:00:00Z
        model: graduated
        tiers: [{up_to: 10, unit_price: 1}, {up_to: 5, unit_price: 1}, {unit_price: 1}]
`, "rate_tables[0].versions[0].tiers[1].up_to"},
		{"tier gap", `
rate_tables:
  - code: rt
    versions:
      - valid_from: 2026-01-01T00:00:00Z
        model: graduated
        tiers: [{from: 0, up_to: 10, unit_price: 1}, {from: 11, unit_price: 1}]
`, "rate_tables[0].versions[0].tiers[1].from"},
		{"above_last_tier with an open last tier", `
rate_tables:
  - code: rt
    versions:
      - valid_from: 2026-01-01T00:00:00Z
        model: volume
        tiers: [{up_to: 10, unit_price: 1}, {unit_price: 1}]
        above_last_tier: {unit_price: 2}
`, "rate_tables[0].versions[0].above_last_tier"},
		{"above_last_tier negative", `
rate_tables:
  - code: rt
    versions:
      - valid_from: 2026-01-01T00:00:00Z
        model: volume
        tiers: [{up_to: 10, unit_price: 1}]
        above_last_tier: {unit_price: -2}
`, "rate_tables[0].versions[0].above_last_tier.unit_price"},
		{"tier minimum above its maximum", `
rate_tables:
  - code: rt
    versions:
      - valid_from: 2026-01-01T00:00:00Z
        model: graduated
        tiers: [{up_to: 10, unit_price: 1, minimum: 5, maximum: 4}, {unit_price: 1}]
`, "rate_tables[0].versions[0].tiers[0].minimum"},
		{"rates entry maximum negative", `
fees:
  - code: f
    versions:
      - {valid_from: 2026-01-01T00:00:00Z, kind: metered, element: e, rates: [{rate_table: rt, maximum: -1}]}
`, "fees[0].versions[0].rates[0].maximum"},
		{"precision without receivable", `
plans:
  - code: p
    versions: [{valid_from: 2026-01-01T00:00:00Z, type: metered, currency: USD, fees: [f], precision: 6}]
`, "plans[0].versions[0].precision"},
		{"precision coarser than the currency", `
plans:
  - code: p
    versions: [{valid_from: 2026-01-01T00:00:00Z, type: metered, currency: USD, fees: [f], rounding_point: receivable, precision: 1}]
`, "plans[0].versions[0].precision"},
		{"unknown unmatched_rates", `
plans:
  - code: p
    versions: [{valid_from: 2026-01-01T00:00:00Z, type: metered, currency: JPY, fees: [f], unmatched_rates: ignore}]
`, "plans[0].versions[0].unmatched_rates"},
		{"unknown tier_bounds", `
rate_tables:
  - code: rt
    versions:
      - valid_from: 2026-01-01T00:00:00Z
        model: graduated
        tier_bounds: lower
        tiers: [{up_to: 10, unit_price: 1}, {unit_price: 1}]
`, "rate_tables[0].versions[0].tier_bounds"},
		{"negative price", `
rate_tables:
  - code: rt
    versions:
      - valid_from: 2026-01-01T00:00:00Z
        model: per_unit
        unit_price: -1
`, "rate_tables[0].versions[0].unit_price"},
		{"overlapping versions", `
elements:
  - code: e
    versions:
      - {valid_from: 2026-01-01T00:00:00Z, unit: s, aggregation: sum}
      - {valid_from: 2026-02-01T00:00:00Z, unit: s, aggregation: max}
`, "elements[0].versions[1]"},
		{"unknown reference", `
fees:
  - code: f
    versions:
      - {valid_from: 2026-01-01T00:00:00Z, kind: metered, element: nope, rates: [{rate_table: rt}]}
`, "fees[0].versions[0].element"},
		{"currency mismatch", `
services:
  - code: s
    versions: [{valid_from: 2026-01-01T00:00:00Z, kind: service}]
fees:
  - code: f
    versions: [{valid_from: 2026-01-01T00:00:00Z, kind: fixed, amount: 10, recurrence: monthly}]
plans:
  - code: p
    versions: [{valid_from: 2026-01-01T00:00:00Z, type: fixed, currency: USD, fees: [f]}]
basic_contracts:
  - {id: b, customer: c, start_date: 2026-01-01, currency: JPY, closing_day: 0, time_zone: Asia/Tokyo, rounding: half_up}
service_contracts:
  - {id: sc, customer: c, basic_contract: b, service: s, start_date: 2026-01-01, plans: [{plan: p, start_date: 2026-01-01}]}
`, "service_contracts[0].plans[0].plan"},
		{"price with ten decimals", `
rate_tables:
  - code: rt
    versions:
      - valid_from: 2026-01-01T00:00:00Z
        model: per_unit
        unit_price: 0.0000000001
`, "rate_tables[0].versions[0].unit_price"},
		{"tier bound with ten decimals", `
rate_tables:
  - code: rt
    versions:
      - valid_from: 2026-01-01T00:00:00Z
        model: graduated
        tiers: [{up_to: 1.0000000001, unit_price: 1}, {unit_price: 1}]
`, "rate_tables[0].versions[0].tiers[0].up_to"},
		{"split_by repeated", `
fees:
  - code: f
    versions:
      - {valid_from: 2026-01-01T00:00:00Z, kind: metered, element: e, rates: [{rate_table: rt}], split_by: [region, region]}
`, "fees[0].versions[0].split_by[1]"},
		{"split_by too long", `
fees:
  - code: f
    versions:
      - {valid_from: 2026-01-01T00:00:00Z, kind: metered, element: e, rates: [{rate_table: rt}], split_by: [a, b, c, d, e]}
`, "fees[0].versions[0].split_by"},
		{"fee version gap", `
elements:
  - code: e
    versions: [{valid_from: 2026-03-01T00:00:00Z, unit: s, aggregation: sum}]
rate_tables:
  - code: rt
    versions: [{valid_from: 2026-01-01T00:00:00Z, model: per_unit, unit_price: 1}]
fees:
  - code: f
    versions: [{valid_from: 2026-01-01T00:00:00Z, kind: metered, element: e, rates: [{rate_table: rt}]}]
`, "fees[0].versions[0].element"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Decode(strings.NewReader(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a ValidationError", err)
			}
			for _, f := range ve.Fields {
				if f.Field == tt.field {
					return
				}
			}
			t.Fatalf("no error on %s; got %v", tt.field, ve.Fields)
		})
	}
}
