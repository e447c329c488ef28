package catalog

import (
	"errors"
	"strings"
	"testing"
)

// TestDecodeNamesEveryProblem: decoding a catalogue file names the place of
// every problem (the entry's path, not just the field's name), says which
// format a time must have, and does not stop at the first problem.
func TestDecodeNamesEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // "field: reason substring"; exactly these fields
	}{
		{"unknown field in a nested entry", `
rate_tables:
  - code: a
    versions: [{valid_from: 2026-01-01T00:00:00Z, model: per_unit, unit_price: 1}]
  - code: b
    versions:
      - valid_from: 2026-01-01T00:00:00Z
        model: graduated
        tiers: [{up_to: 10, price: 1}, {unit_price: 1}]
`, []string{`rate_tables[1].versions[0].tiers[0].price: unknown field`}},
		{"date-only valid_from", `
elements:
  - code: e
    versions: [{valid_from: 2026-04-01, unit: s, aggregation: sum}]
`, []string{"elements[0].versions[0].valid_from: RFC 3339 timestamp with a time of day and a UTC offset, e.g. 2026-04-01T00:00:00+09:00"}},
		{"date-only valid_to, quoted, in JSON", `{"plans":[{"code":"p","versions":[{"valid_from":"2026-01-01T00:00:00Z","valid_to":"2026-04-01","type":"fixed","currency":"JPY","fees":[]}]}]}`,
			[]string{"plans[0].versions[0].valid_to: RFC 3339"}},
		{"time without a zone", `
services:
  - code: s
    versions: [{valid_from: "2026-04-01T00:00:00", kind: service}]
`, []string{"services[0].versions[0].valid_from: RFC 3339"}},
		{"every problem of a file", `
tenant: 7
colour: red
fees:
  - code: f
    versions:
      - {valid_from: 2026-01-01T00:00:00Z, kind: fixed, amount: lots, recurrence: monthly}
      - {valid_from: 2026-02-01, kind: metered, element: [e], rates: [{rate_table: rt, weight: 2}]}
basic_contracts:
  - {id: b, customer: c, start_date: 2026/01/01, currency: JPY, closing_day: last, time_zone: Asia/Tokyo, rounding: half_up}
`, []string{
			"tenant: wrong type: must be a string",
			"colour: unknown field",
			"fees[0].versions[0].amount: decimal number",
			"fees[0].versions[1].valid_from: RFC 3339",
			"fees[0].versions[1].element: wrong type: must be a string",
			"fees[0].versions[1].rates[0].weight: unknown field",
			"basic_contracts[0].start_date: YYYY-MM-DD",
			"basic_contracts[0].closing_day: wrong type: must be a whole number",
		}},
		{"an entry of the wrong kind", `
plans: {code: p}
services:
  - code: s
    versions: 3
`, []string{"plans: wrong type: must be a JSON array", "services[0].versions: wrong type: must be a JSON array"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.file))
			var ve *DecodeError
			if !errors.As(err, &ve) {
				t.Fatalf("Decode = %v, want a DecodeError", err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field+": "+f.Reason)
			}
			if len(ve.Fields) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for _, w := range tt.want {
				field, reason, _ := strings.Cut(w, ": ")
				n := 0
				for _, f := range ve.Fields {
					if f.Field == field && strings.Contains(f.Reason, reason) {
						n++
					}
				}
				if n != 1 {
					t.Errorf("want exactly one %q; got\n%s", w, strings.Join(got, "\n"))
				}
			}
			if !strings.Contains(err.Error(), ve.Fields[0].Field+": ") {
				t.Errorf("error text %q does not name %s", err, ve.Fields[0].Field)
			}
		})
	}
}

// TestDecodeKeepsValidFiles: the slower, path-naming decoding is only used
// for files encoding/json refuses; what it accepts is unchanged.
func TestDecodeKeepsValidFiles(t *testing.T) {
	c, err := Decode(strings.NewReader(`
Tenant: acme
rate_tables:
  - code: rt
    versions: [{valid_from: "2026-04-01T00:00:00+09:00", model: per_unit, unit_price: "0.10"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tenant != "acme" || c.RateTables[0].Versions[0].UnitPrice.String() != "0.1" || c.RateTables[0].Versions[0].ValidFrom.Hour() != 0 {
		t.Fatalf("decoded %+v", c)
	}
}
