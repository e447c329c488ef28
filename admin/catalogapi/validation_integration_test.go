package catalogapi

import (
	"strings"
	"testing"
)

// TestBodiesNameEveryProblem: a body with several problems is answered with
// one error per problem, each naming its field by its path in the body —
// wrong JSON types, unknown fields, unreadable dates and times, and what is
// wrong with the values that could be read, all in one answer.
func TestBodiesNameEveryProblem(t *testing.T) {
	conn, rdb, master := database(t)
	s := newServer(t, conn, rdb, master)
	ten := tenantID("bodies")
	postMasters(t, s, ten)

	for _, tt := range []struct {
		name, method, path, body string
		status                   int
		code                     string
		want                     []string // "field: reason substring"; exactly these fields
	}{
		{"basic contract with five bad fields", "POST", "/v1/basic-contracts",
			`{"id":"b1","customer":5,"start_date":"2026/04/01","currency":"XYZ","closing_day":"15","time_zone":"Mars/Olympus","rounding":"half_up"}`,
			400, "invalid_body", []string{
				"customer: wrong type: must be a string",
				"start_date: YYYY-MM-DD",
				"currency: unknown currency",
				"closing_day: wrong type: must be a whole number",
				"time_zone: unknown time zone",
			}},
		// References (customer c1 does not exist) are checked once the
		// document is valid on its own.
		{"basic contract with only invalid values", "POST", "/v1/basic-contracts",
			`{"id":"b1","customer":"c1","start_date":"2026-04-01","currency":"XYZ","closing_day":40,"time_zone":"Mars/Olympus","rounding":"nearest"}`,
			422, "invalid_entity", []string{
				"currency: unknown currency",
				"closing_day: must be 1-28",
				"time_zone: unknown time zone",
				"rounding: must be half_up",
			}},
		{"nested problems of a rate table", "POST", "/v1/rate-tables",
			`{"code":"rt","colour":"red","versions":[{"valid_from":"2026-04-01","model":"graduated","tiers":[{"up_to":"10","unit_price":"1"},{"up_to":"20","price":"2"},{"unit_price":true}]}]}`,
			400, "invalid_body", []string{
				"colour: unknown field",
				"versions[0].valid_from: RFC 3339 timestamp with a time of day and a UTC offset, e.g. 2026-04-01T00:00:00+09:00",
				"versions[0].tiers[1].price: unknown field",
				"versions[0].tiers[2].unit_price: decimal number",
			}},
		{"version with a date-only start", "POST", "/v1/rate-tables/api-graduated/versions",
			`{"valid_from":"2027-01-01","model":"per_unit","unit_price":"x","price":1}`,
			400, "invalid_body", []string{
				"valid_from: RFC 3339",
				"unit_price: decimal number",
				"price: unknown field",
			}},
		{"end of application on a date", "POST", "/v1/rate-tables/api-graduated/versions/0/end",
			`{"valid_to":"2027-01-01"}`, 400, "invalid_body", []string{"valid_to: RFC 3339"}},
		{"cancellation on a time", "POST", "/v1/discount-contracts/none/cancel",
			`{"end_date":"2027-01-01T00:00:00Z","reason":"x"}`, 400, "invalid_body", []string{"end_date: YYYY-MM-DD", "reason: unknown field"}},
		{"not an object", "POST", "/v1/basic-contracts", `[1]`, 400, "invalid_body", []string{": must be a JSON object"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do(ten, tt.method, tt.path, tt.body)
			code, fields := r.problem()
			if r.status != tt.status || code != tt.code {
				t.Fatalf("%s, want %d %s", r, tt.status, tt.code)
			}
			if len(fields) != len(tt.want) {
				t.Fatalf("errors\n%s\nwant %d:\n%s", strings.Join(fields, "\n"), len(tt.want), strings.Join(tt.want, "\n"))
			}
			for _, w := range tt.want {
				field, reason, _ := strings.Cut(w, ": ")
				n := 0
				for _, f := range fields {
					got, why, _ := strings.Cut(f, ": ")
					if got == field && strings.Contains(why, reason) {
						n++
					}
				}
				if n != 1 {
					t.Errorf("want exactly one %q; errors:\n%s", w, strings.Join(fields, "\n"))
				}
			}
		})
	}
}
