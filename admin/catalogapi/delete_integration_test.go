package catalogapi

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/clock"
)

// A contract that has taken effect may have produced charges (usage lines,
// fixed fees); deleting it would leave them behind with nothing to correct
// them — the rater only re-prices contracts that exist. DELETE of a basic,
// service or discount contract whose start_date has come (in its time zone,
// allowing for usage dated up to the ingest's future skew ahead) is refused
// with 409 contract_in_effect naming the cancel route; one that starts later
// can still be deleted. Dates are relative to the business clock.
func TestDeleteContractInEffect(t *testing.T) {
	conn, rdb, master := database(t)
	s := newServer(t, conn, rdb, master)
	ten := tenantID("delete")

	const zone = "Asia/Tokyo"
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	today := catalog.DateOf(clock.Now().In(loc))
	day := func(n int) string { return today.AddDays(n).String() }

	// Masters valid since long before any date used here.
	const since = "2000-01-01T00:00:00Z"
	for _, m := range []struct {
		path string
		doc  map[string]any
	}{
		{"fees", map[string]any{"code": "base", "name": "Base", "versions": []map[string]any{{"valid_from": since, "kind": "fixed",
			"amount": "900", "recurrence": "monthly", "proration": "actual_days", "timing": "arrears"}}}},
		{"plans", map[string]any{"code": "flat", "name": "Flat", "versions": []map[string]any{{"valid_from": since, "type": "fixed",
			"currency": "JPY", "fees": []string{"base"}}}}},
		{"services", map[string]any{"code": "svc", "name": "Service", "versions": []map[string]any{{"valid_from": since, "kind": "service"}}}},
		{"discount-tables", map[string]any{"code": "ten-off", "name": "10 %", "versions": []map[string]any{{"valid_from": since,
			"kind": "percentage", "basis": "amount", "tiers": []map[string]any{{"from": "0", "value": "10"}}}}}},
	} {
		s.must(201, ten, "POST", "/v1/"+m.path, m.doc)
	}
	for _, c := range []string{"c1", "c2", "c3"} {
		s.must(201, ten, "POST", "/v1/customers", map[string]any{"id": c})
	}
	basic := func(id, customer, start string) map[string]any {
		return map[string]any{"id": id, "customer": customer, "start_date": start, "currency": "JPY", "time_zone": zone, "rounding": "half_up"}
	}
	service := func(id, start string) map[string]any {
		return map[string]any{"id": id, "customer": "c1", "basic_contract": "b1", "service": "svc", "start_date": start,
			"plans": []map[string]any{{"plan": "flat", "start_date": start}}}
	}
	discount := func(id, start string) map[string]any {
		return map[string]any{"id": id, "customer": "c1", "service": "svc", "discount_table": "ten-off", "start_date": start}
	}
	s.must(201, ten, "POST", "/v1/basic-contracts", basic("b1", "c1", day(-400)))
	s.must(201, ten, "POST", "/v1/basic-contracts", basic("b2", "c2", day(-1))) // took effect, no service contract
	s.must(201, ten, "POST", "/v1/basic-contracts", basic("b3", "c3", day(30)))
	for _, k := range []struct{ id, start string }{{"k-past", day(-40)}, {"k-today", day(0)}, {"k-tomorrow", day(1)}, {"k-later", day(30)}, {"k-cancelled", day(-40)}} {
		s.must(201, ten, "POST", "/v1/service-contracts", service(k.id, k.start))
	}
	for _, d := range []struct{ id, start string }{{"d-past", day(-40)}, {"d-today", day(0)}, {"d-later", day(30)}} {
		s.must(201, ten, "POST", "/v1/discount-contracts", discount(d.id, d.start))
	}
	// Cancelling is how a contract in effect ends; a cancelled one has had
	// charges all the same.
	s.must(200, ten, "POST", "/v1/service-contracts/k-cancelled/cancel", `{"end_date":"`+day(0)+`"}`)

	tests := []struct {
		name   string
		path   string
		status int
		cancel string // the route the refusal names
	}{
		{"service contract started 40 days ago", "/v1/service-contracts/k-past", 409, "POST /v1/service-contracts/k-past/cancel"},
		{"service contract starting today", "/v1/service-contracts/k-today", 409, "POST /v1/service-contracts/k-today/cancel"},
		{"service contract starting tomorrow: usage may be dated up to 24 h ahead", "/v1/service-contracts/k-tomorrow", 409, "POST /v1/service-contracts/k-tomorrow/cancel"},
		{"cancelled service contract that had taken effect", "/v1/service-contracts/k-cancelled", 409, "POST /v1/service-contracts/k-cancelled/cancel"},
		{"discount contract started 40 days ago", "/v1/discount-contracts/d-past", 409, "POST /v1/discount-contracts/d-past/cancel"},
		{"discount contract starting today", "/v1/discount-contracts/d-today", 409, "POST /v1/discount-contracts/d-today/cancel"},
		{"basic contract in effect without service contracts", "/v1/basic-contracts/b2", 409, "PUT /v1/basic-contracts/b2"},
		{"basic contract in effect with service contracts", "/v1/basic-contracts/b1", 409, "PUT /v1/basic-contracts/b1"},
		{"service contract starting in 30 days", "/v1/service-contracts/k-later", 200, ""},
		{"discount contract starting in 30 days", "/v1/discount-contracts/d-later", 200, ""},
		{"basic contract starting in 30 days", "/v1/basic-contracts/b3", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rev := s.must(200, ten, "GET", tt.path, nil).header.Get("ETag")
			r := s.do(ten, "DELETE", tt.path, nil, "If-Match", rev)
			if r.status != tt.status {
				t.Fatalf("DELETE %s: %s, want %d", tt.path, r, tt.status)
			}
			if tt.status == 200 {
				if g := s.do(ten, "GET", tt.path, nil); g.status != 404 {
					t.Errorf("after delete: %s", g)
				}
				return
			}
			code, fields := r.problem()
			if code != "contract_in_effect" || !strings.Contains(string(r.body), tt.cancel) ||
				!slices.ContainsFunc(fields, func(f string) bool { return strings.HasPrefix(f, "start_date: ") }) {
				t.Errorf("refusal: %s, want code contract_in_effect naming %q and field start_date", r, tt.cancel)
			}
			if g := s.must(200, ten, "GET", tt.path, nil); g.header.Get("ETag") != rev {
				t.Errorf("a refused delete changed it: ETag %s, was %s", g.header.Get("ETag"), rev)
			}
		})
	}
}
