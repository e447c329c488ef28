package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every catalogue mistake is reported with the entity it belongs to and the
// field's path, one per line (issue 19, the what-if CLI).
func TestRateCatalogueMistakes(t *testing.T) {
	catPath, usage := rateExampleFiles(t)
	example, err := os.ReadFile(catPath)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		old, new string // a replacement in the example catalogue
		want     string // the error after "FILE: "
	}{
		{"unknown element of a fee", "element: api_calls", "element: calls",
			"1 mistake:\n  fee \"api\" fees[0].versions[0].element: unknown element \"calls\""},
		{"unknown rate table", "rate_table: api-grad", "rate_table: api-vol",
			"1 mistake:\n  fee \"api\" fees[0].versions[0].rates[0].rate_table: unknown rate table \"api-vol\""},
		{"unknown fee of a plan", "fees: [api, base]", "fees: [api, bass]",
			"1 mistake:\n  plan \"std-jpy\" plans[0].versions[0].fees[1]: unknown fee \"bass\""},
		{"tiers overlap", "{up_to: 100, unit_price: 1, flat_fee: 0}, {unit_price: 0.5, flat_fee: 10}", "{up_to: 100, unit_price: 1, flat_fee: 0}, {up_to: 50, unit_price: 0.5, flat_fee: 10}, {unit_price: 0.1, flat_fee: 0}",
			"1 mistake:\n  rate table \"api-grad\" rate_tables[0].versions[0].tiers[1].up_to: must be greater than the previous bound 100 (tiers overlap)"},
		{"unknown field", "closing_day: 0, time_zone: Asia/Tokyo", "closing_dya: 0, time_zone: Asia/Tokyo",
			"1 mistake:\n  basic contract \"b1\" basic_contracts[0].closing_dya: unknown field (the fields here: id, customer, start_date, end_date, currency, closing_day, time_zone, rounding, billing_period, week_start)"},
		{"value of the wrong type", "amount: 3100", "amount: lots",
			"1 mistake:\n  fee \"base\" fees[1].versions[0].amount: must be a decimal number, e.g. 12.5 or \"12.5\", got \"lots\""},
		{"unknown service and plan of a contract", "service: cloud, start_date: 2026-03-11, plans: [{plan: std-jpy", "service: clod, start_date: 2026-03-11, plans: [{plan: std-eur",
			"2 mistakes:\n  service contract \"k1\" service_contracts[0].service: unknown service \"clod\"\n  service contract \"k1\" service_contracts[0].plans[0].plan: unknown plan \"std-eur\""},
		{"bad time zone and rounding", "time_zone: America/New_York, rounding: up", "time_zone: America/Nowhere, rounding: sideways",
			"2 mistakes:\n  basic contract \"b2\" basic_contracts[1].time_zone: unknown time zone \"America/Nowhere\"\n  basic contract \"b2\" basic_contracts[1].rounding: must be half_up, down or up"},
		{"weekly fee with thirty_day", "recurrence: monthly, proration: actual_days", "recurrence: weekly, proration: thirty_day",
			"1 mistake:\n  fee \"base\" fees[1].versions[0].proration: thirty_day applies to monthly and yearly fees (a week is pro-rated by days / 7: actual_days)"},
		{"a discount contract of an unknown table", "service_contracts:", "discount_contracts:\n  - {id: d1, customer: c1, discount_table: ten, start_date: 2026-01-01}\nservice_contracts:",
			"1 mistake:\n  discount contract \"d1\" discount_contracts[0].discount_table: unknown discount table \"ten\""},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(example, []byte(tc.old)) {
				t.Fatalf("the example has no %q", tc.old)
			}
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(path, bytes.Replace(example, []byte(tc.old), []byte(tc.new), 1), 0o600); err != nil {
				t.Fatal(err)
			}
			err := runRate([]string{"--catalog", path, "--usage", usage, "--allow-unrated"}, &bytes.Buffer{})
			if err == nil || err.Error() != path+": "+tc.want {
				t.Fatalf("got\n%v\nwant\n%s: %s", err, path, tc.want)
			}
		})
	}
}
