package catalogapi

import (
	"slices"
	"strings"
	"testing"
)

// A price or amount that no stored line could hold is refused with 422
// naming the field (regression: a rate table with unit_price 10^38 − 1 was
// registered with 201; every line priced with it would be refused by the
// aggregator, which retries such a batch for ever).
func TestPricesThatCannotBeStoredAreRefused(t *testing.T) {
	conn, rdb, master := database(t)
	s := newServer(t, conn, rdb, master)
	ten := tenantID("amounts")
	const since = "2000-01-01T00:00:00Z"
	perUnit := func(code string, price any) map[string]any {
		return map[string]any{"code": code, "name": code, "versions": []map[string]any{{"valid_from": since, "model": "per_unit", "unit_price": price}}}
	}
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		field  string
	}{
		{"unit price 10^38 − 1 as text", "POST", "/v1/rate-tables", perUnit("huge-text", "99999999999999999999999999999999999999"), 422, "versions[0].unit_price"},
		{"unit price 10^38 − 1 as a number", "POST", "/v1/rate-tables",
			`{"code":"huge-number","name":"n","versions":[{"valid_from":"` + since + `","model":"per_unit","unit_price":99999999999999999999999999999999999999}]}`, 422, "versions[0].unit_price"},
		{"unit price 10^10", "POST", "/v1/rate-tables", perUnit("ten-digits", "10000000000"), 422, "versions[0].unit_price"},
		{"unit price with ten decimals", "POST", "/v1/rate-tables", perUnit("ten-places", "0.0000000001"), 422, "versions[0].unit_price"},
		{"unit price just below 10^10", "POST", "/v1/rate-tables", perUnit("ok", "9999999999.999999999"), 201, ""},
		{"a new version with an unstorable price", "POST", "/v1/rate-tables/ok/versions",
			map[string]any{"valid_from": "2001-01-01T00:00:00Z", "model": "per_unit", "unit_price": "1000000000000000000000000000000"}, 422, "versions[1].unit_price"},
		{"fixed fee amount 10^18", "POST", "/v1/fees", map[string]any{"code": "big", "name": "big", "versions": []map[string]any{{"valid_from": since,
			"kind": "fixed", "amount": "1000000000000000000", "recurrence": "monthly"}}}, 422, "versions[0].amount"},
		{"tier flat fee 10^20", "POST", "/v1/rate-tables", map[string]any{"code": "tiers", "name": "t", "versions": []map[string]any{{"valid_from": since,
			"model": "graduated", "tiers": []map[string]any{{"up_to": "10", "unit_price": "1", "flat_fee": "100000000000000000000"}, {"unit_price": "1", "flat_fee": "0"}}}}},
			422, "versions[0].tiers[0].flat_fee"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do(ten, tt.method, tt.path, tt.body)
			if r.status != tt.status {
				t.Fatalf("%s %s: %s, want %d", tt.method, tt.path, r, tt.status)
			}
			if tt.field == "" {
				return
			}
			code, fields := r.problem()
			if code != "invalid_entity" || !slices.ContainsFunc(fields, func(f string) bool { return strings.HasPrefix(f, tt.field+": ") }) {
				t.Errorf("problem %s, want invalid_entity naming %s", r, tt.field)
			}
		})
	}
	// Nothing refused was stored.
	for _, code := range []string{"huge-text", "huge-number", "ten-digits", "ten-places", "tiers"} {
		if r := s.do(ten, "GET", "/v1/rate-tables/"+code, nil); r.status != 404 {
			t.Errorf("rate table %s: %s", code, r)
		}
	}
}
