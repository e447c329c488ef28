package catalog

import (
	"errors"
	"strings"
	"testing"
)

// Every price and amount a catalogue accepts must give lines that fit the
// Decimal(38, 9) columns downstream (regression: a rate table with unit_price
// 10^38 − 1 was accepted; no line priced with it can be stored, and the
// aggregator would retry that batch forever). Each case is a catalogue file
// fragment; field is the path Validate must name, "" when it is accepted.
func TestNumbersFitTheStore(t *testing.T) {
	perUnit := func(price string) string {
		return "rate_tables:\n  - code: rt\n    versions:\n      - {valid_from: 2026-01-01T00:00:00Z, model: per_unit, unit_price: '" + price + "'}\n"
	}
	rateTable := func(body string) string {
		return "rate_tables:\n  - code: rt\n    versions:\n      - {valid_from: 2026-01-01T00:00:00Z, " + body + "}\n"
	}
	fixedFee := func(amount string) string {
		return "fees:\n  - code: f\n    versions:\n      - {valid_from: 2026-01-01T00:00:00Z, kind: fixed, amount: '" + amount + "', recurrence: monthly}\n"
	}
	meteredFee := func(body string) string {
		return "fees:\n  - code: f\n    versions:\n      - {valid_from: 2026-01-01T00:00:00Z, kind: metered, element: e, rates: [{rate_table: rt}], " + body + "}\n"
	}
	discountTable := func(kind, basis, tiers string) string {
		return "discount_tables:\n  - code: d\n    versions:\n      - {valid_from: 2026-01-01T00:00:00Z, kind: " + kind + ", basis: " + basis + ", tiers: " + tiers + "}\n"
	}
	const maxPrice = "9999999999.999999999"          // just below 10^10
	const maxAmount = "999999999999999999.999999999" // just below 10^18
	tests := []struct {
		name, yaml, field string
	}{
		{"unit price 10^38 − 1", perUnit("99999999999999999999999999999999999999"), "rate_tables[0].versions[0].unit_price"},
		{"unit price 10^10", perUnit("10000000000"), "rate_tables[0].versions[0].unit_price"},
		{"unit price just below 10^10", perUnit(maxPrice), ""},
		{"unit price with 9 decimals", perUnit("0.000000001"), ""},
		{"tier unit price 10^20", rateTable("model: graduated, tiers: [{up_to: 10, unit_price: 1}, {unit_price: '100000000000000000000'}]"),
			"rate_tables[0].versions[0].tiers[1].unit_price"},
		{"tier flat fee 10^18", rateTable("model: volume, tiers: [{up_to: 10, unit_price: 1, flat_fee: '1000000000000000000'}, {unit_price: 1}]"),
			"rate_tables[0].versions[0].tiers[0].flat_fee"},
		{"tier flat fee just below 10^18", rateTable("model: volume, tiers: [{up_to: 10, unit_price: 1, flat_fee: '" + maxAmount + "'}, {unit_price: 1}]"), ""},
		{"tier bound 10^30", rateTable("model: graduated, tiers: [{up_to: '1000000000000000000000000000000', unit_price: 1}, {unit_price: 1}]"),
			"rate_tables[0].versions[0].tiers[0].up_to"},
		{"overage unit price 10^10", rateTable("model: overage, overage: {included: 10, unit_price: '10000000000'}"), "rate_tables[0].versions[0].overage.unit_price"},
		{"overage included 10^30", rateTable("model: overage, overage: {included: '1000000000000000000000000000000', unit_price: 1}"), "rate_tables[0].versions[0].overage.included"},
		{"package price per unit 10^10", rateTable("model: package, package: {size: 1, price: '10000000000', rounding: up, free_units: 0}"), "rate_tables[0].versions[0].package.price"},
		{"package price 10^12 per 1000 units: 10^9 per unit", rateTable("model: package, package: {size: 1000, price: '1000000000000', rounding: up, free_units: 0}"), ""},
		{"package price 10^6 per 0.0001 units: 10^10 per unit", rateTable("model: package, package: {size: 0.0001, price: '1000000', rounding: up, free_units: 0}"), "rate_tables[0].versions[0].package.price"},
		{"package price 10^18", rateTable("model: package, package: {size: '1000000000', price: '1000000000000000000', rounding: up, free_units: 0}"), "rate_tables[0].versions[0].package.price"},
		{"percentage rate 10^10", rateTable("model: percentage, percentage: {rate: '10000000000', fixed_fee: 0, free_transactions: 0, free_amount: 0}"), "rate_tables[0].versions[0].percentage.rate"},
		{"percentage fixed fee 10^18", rateTable("model: percentage, percentage: {rate: 0.029, fixed_fee: '1000000000000000000', free_transactions: 0, free_amount: 0}"), "rate_tables[0].versions[0].percentage.fixed_fee"},
		{"percentage maximum 10^18", rateTable("model: percentage, percentage: {rate: 0.029, fixed_fee: 0, free_transactions: 0, free_amount: 0, max_per_transaction: '1000000000000000000'}"), "rate_tables[0].versions[0].percentage.max_per_transaction"},
		{"fixed fee amount 10^38 − 1", fixedFee("99999999999999999999999999999999999999"), "fees[0].versions[0].amount"},
		{"fixed fee amount 10^18", fixedFee("1000000000000000000"), "fees[0].versions[0].amount"},
		{"fixed fee amount just below 10^18", fixedFee(maxAmount), ""},
		{"fixed fee amount with 10 decimals", fixedFee("1.0000000001"), "fees[0].versions[0].amount"},
		{"fee minimum 10^18", meteredFee("minimum: '1000000000000000000'"), "fees[0].versions[0].minimum"},
		{"fee maximum 10^18", meteredFee("maximum: '1000000000000000000'"), "fees[0].versions[0].maximum"},
		{"fixed discount 10^18", discountTable("fixed", "amount", "[{from: 0, value: '1000000000000000000'}]"), "discount_tables[0].versions[0].tiers[0].value"},
		{"fixed discount just below 10^18", discountTable("fixed", "amount", "[{from: 0, value: '"+maxAmount+"'}]"), ""},
		{"fixed discount with 10 decimals", discountTable("fixed", "amount", "[{from: 0, value: 1.0000000001}]"), "discount_tables[0].versions[0].tiers[0].value"},
		{"discount threshold 10^30", discountTable("percentage", "amount", "[{from: 0, value: 1}, {from: '1000000000000000000000000000000', value: 2}]"), "discount_tables[0].versions[0].tiers[1].from"},
		{"element rounding increment 10^30", "elements:\n  - code: e\n    versions:\n      - {valid_from: 2026-01-01T00:00:00Z, unit: s, aggregation: sum, rounding: {increment: '1000000000000000000000000000000', mode: up, scope: record}}\n",
			"elements[0].versions[0].rounding.increment"},
		{"contract quantity above 10^9", "service_contracts:\n  - {id: k, customer: c, basic_contract: b, service: s, start_date: 2026-01-01, quantity: 1000000001, plans: [{plan: p, start_date: 2026-01-01}]}\n",
			"service_contracts[0].quantity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Decode(strings.NewReader(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			var fields []FieldError
			var ve *ValidationError
			if err := c.Validate(); errors.As(err, &ve) {
				fields = ve.Fields
			} else if err != nil {
				t.Fatal(err)
			}
			for _, f := range fields {
				if tt.field == "" && strings.Contains(f.Reason, "less than") {
					t.Fatalf("accepted value refused: %s: %s", f.Field, f.Reason)
				}
				if tt.field != "" && f.Field == tt.field {
					return
				}
			}
			if tt.field != "" {
				t.Fatalf("no error on %s; got %v", tt.field, fields)
			}
		})
	}
}
