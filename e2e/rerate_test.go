package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/apitest"
)

// retroCatalogue prices calls graduated: 1 yen each up to 100 in a month,
// then 0.5. Customer c1 is on it from 2026-01-01.
const retroCatalogue = `
services: [{code: api, name: API, versions: [{valid_from: 2025-01-01T00:00:00Z, kind: service}]}]
elements: [{code: calls, name: Calls, versions: [{valid_from: 2025-01-01T00:00:00Z, unit: call, aggregation: sum}]}]
rate_tables:
  - code: tiers
    name: Tiers
    versions:
      - valid_from: 2025-01-01T00:00:00Z
        model: graduated
        tiers: [{up_to: 100, unit_price: 1}, {unit_price: 0.5}]
fees: [{code: calls, name: Calls, versions: [{valid_from: 2025-01-01T00:00:00Z, kind: metered, element: calls, rates: [{rate_table: tiers}]}]}]
plans: [{code: std, name: Std, versions: [{valid_from: 2025-01-01T00:00:00Z, type: metered, currency: JPY, fees: [calls]}]}]
basic_contracts:
  - {id: b1, customer: c1, start_date: 2026-01-01, currency: JPY, closing_day: 0, time_zone: Asia/Tokyo, rounding: half_up}
service_contracts:
  - {id: s1, customer: c1, basic_contract: b1, service: api, start_date: 2026-01-01, plans: [{plan: std, start_date: 2026-01-01}]}
`

// TestRetroactivePriceChangeRerated: a tenant's usage is priced by its stored
// catalogue with running tiers; a price change valid from a past date is
// re-rated with POST /v1/rerate, the corrected totals are read back, and
// usage after the re-rate is priced on top of the corrected running total.
func TestRetroactivePriceChangeRerated(t *testing.T) {
	e := newEnv(t, e2ePrices)
	v := apitest.NewValidator(t)
	p := e.start("all", "all")
	c := tenantAPI{&api{t: t, base: p.url, http: v.Client()}, "retro"}

	if r := c.call("POST", "/v1/customers", `{"id":"c1"}`); r.status != 201 {
		t.Fatalf("create customer: %d %s", r.status, r.body)
	}
	file := filepath.Join(e.dir, "retro.yaml")
	if err := os.WriteFile(file, []byte(retroCatalogue), 0o600); err != nil {
		t.Fatal(err)
	}
	e.output(t, "catalog", "apply", "--tenant", "retro", "-f", file, "--yes")

	total := func() string {
		cr := getCharges(t, p.url, "retro", "c1", "2026-11")
		return cr.Total
	}
	send := func(id string, qty int) {
		body := fmt.Sprintf(`{"id":%q,"customer":"c1","element":"calls","quantity":%d,"time":"2026-11-10T12:00:00+09:00"}`, id, qty)
		if code, _ := post(t, p.url, "retro", []byte(body)); code != 202 {
			t.Fatalf("post %s: %d", id, code)
		}
	}
	// The rater sees the catalogue within its poll interval; usage sent
	// before that would be priced by the price list (no such tenant there:
	// unrated), so wait until a probe of zero calls is rated.
	waitFor(t, 10*time.Second, "the catalogue reaches the rater", func() (bool, string) {
		send(fmt.Sprintf("probe-%d", time.Now().UnixNano()), 0)
		time.Sleep(300 * time.Millisecond)
		n := e.count(t.Context(), `SELECT count() FROM rated_usage FINAL WHERE tenant = 'retro'`)
		return n > 0, fmt.Sprintf("%d lines", n)
	})
	send("e1", 60)
	send("e2", 60)
	waitFor(t, 20*time.Second, "60 + 60 calls priced 60 + 50", func() (bool, string) { t := total(); return t == "110", t })

	// The second tier becomes 0.25, valid from the start: a retroactive
	// change (same version, new revision).
	r := c.call("GET", "/v1/rate-tables/tiers", "")
	if r.status != 200 {
		t.Fatalf("get rate table: %d %s", r.status, r.body)
	}
	changed := strings.Replace(string(r.body), `"unit_price":"0.5"`, `"unit_price":"0.25"`, 1)
	if changed == string(r.body) {
		t.Fatalf("rate table has no 0.5 tier: %s", r.body)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(changed), &doc); err != nil {
		t.Fatal(err)
	}
	input, _ := json.Marshal(map[string]any{"code": doc["code"], "name": doc["name"], "versions": doc["versions"]})
	if r := c.call("PUT", "/v1/rate-tables/tiers", string(input), "If-Match", r.header.Get("ETag")); r.status != 200 {
		t.Fatalf("change the rate table: %d %s", r.status, r.body)
	}
	time.Sleep(2 * time.Second) // propagation to the rater (issue 3: within 2 s)

	r = c.call("POST", "/v1/rerate", `{"period":"2026-11","customer":"c1"}`, "Idempotency-Key", "rerate-1")
	if r.status != 202 {
		t.Fatalf("rerate: %d %s", r.status, r.body)
	}
	job := r.header.Get("Location")
	waitFor(t, 20*time.Second, "the re-rate job completes", func() (bool, string) {
		r := c.call("GET", job, "")
		return strings.Contains(string(r.body), `"status":"completed"`), string(r.body)
	})
	// 60 × 1 + 40 × 1 + 20 × 0.25 = 105.
	waitFor(t, 20*time.Second, "the corrected total", func() (bool, string) { t := total(); return t == "105", t })

	// Later usage continues from the corrected running total: 10 calls at
	// 0.25 = 2.5; the period's total 107.5 rounds half up to 108.
	send("e3", 10)
	waitFor(t, 20*time.Second, "the total after more usage", func() (bool, string) { t := total(); return t == "108", t })
}
