package catalogapi

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/kakin-dev/kakin/catalog"
)

// TestServiceContractListing: GET /v1/services/{code}/contracts lists the
// service's contracts (spec 002), each with its options and child product
// contracts (with theirs), and the new typed fields of a contract — label,
// associated services (連携サービス), accounts with per-platform counts and
// ranges — round-trip; a contract without them reads as before.
func TestServiceContractListing(t *testing.T) {
	conn, rdb, master := database(t)
	s := newServer(t, conn, rdb, master)
	ten := tenantID("a")
	postMasters(t, s, ten)
	s.must(201, ten, "POST", "/v1/services", `{"code":"antivirus","name":"Anti-virus type C","versions":[
		{"valid_from":"2026-01-01T00:00:00+09:00","kind":"service","parent":"cloud","plans":["cloud-standard"]}]}`)
	for _, c := range []string{"c1", "c2"} {
		s.must(201, ten, "POST", "/v1/customers", map[string]any{"id": c})
		s.must(201, ten, "POST", "/v1/basic-contracts", map[string]any{"id": "b-" + c, "customer": c, "start_date": "2026-01-01",
			"currency": "JPY", "time_zone": "Asia/Tokyo", "rounding": "half_up"})
	}
	contract := func(id, customer, service, parent, plan string, extra map[string]any) map[string]any {
		m := map[string]any{"id": id, "customer": customer, "basic_contract": "b-" + customer, "service": service, "start_date": "2026-02-01",
			"plans": []map[string]any{{"plan": plan, "start_date": "2026-02-01"}}}
		if parent != "" {
			m["parent"] = parent
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	s.must(201, ten, "POST", "/v1/service-contracts", contract("k1", "c1", "cloud", "", "cloud-standard", map[string]any{
		"label": "head office",
		"associated_services": []map[string]any{
			{"service": "mtx0001", "name": "Private backbone", "label": "backbone-1"},
			{"service": "yf0002", "name": "Managed firewall"}},
	}))
	s.must(201, ten, "POST", "/v1/service-contracts", contract("k1-opt", "c1", "cloud-backup", "k1", "backup-flat", map[string]any{"label": "tunnel"}))
	s.must(201, ten, "POST", "/v1/service-contracts", contract("k1-av", "c1", "antivirus", "k1", "cloud-standard", map[string]any{
		"label": "pcs",
		"accounts": map[string]any{"count": 300, "range": map[string]any{"from": 101, "to": 500},
			"platforms": []map[string]any{{"platform": "windows", "count": 200, "range": map[string]any{"from": 101, "to": 500}},
				{"platform": "mac", "count": 100}}},
	}))
	s.must(201, ten, "POST", "/v1/service-contracts", contract("k2", "c2", "cloud", "", "cloud-standard", nil))

	type listed struct {
		Contract    catalog.ServiceContract `json:"contract"`
		ServiceName string                  `json:"service_name"`
		Options     []listed                `json:"options"`
	}
	type listingPage struct {
		Items []struct {
			listed
			ProductContracts []listed `json:"product_contracts"`
		} `json:"items"`
		NextPage string `json:"nextPage"`
	}
	var page listingPage
	s.must(200, ten, "GET", "/v1/services/cloud/contracts", nil).decode(t, &page)
	if len(page.Items) != 2 || page.Items[0].Contract.ID != "k1" || page.Items[1].Contract.ID != "k2" {
		t.Fatalf("contracts of cloud: %+v", page)
	}
	k1 := page.Items[0]
	wantAssoc := []catalog.AssociatedService{{Service: "mtx0001", Name: "Private backbone", Label: "backbone-1"}, {Service: "yf0002", Name: "Managed firewall"}}
	if k1.ServiceName != "Cloud platform" || k1.Contract.Label != "head office" || !slices.Equal(k1.Contract.AssociatedServices, wantAssoc) {
		t.Errorf("k1: %+v", k1.listed)
	}
	if len(k1.Options) != 1 || k1.Options[0].Contract.ID != "k1-opt" || k1.Options[0].ServiceName != "Backup option" || k1.Options[0].Contract.Label != "tunnel" {
		t.Errorf("k1 options: %+v", k1.Options)
	}
	if len(k1.ProductContracts) != 1 || k1.ProductContracts[0].Contract.ID != "k1-av" || k1.ProductContracts[0].ServiceName != "Anti-virus type C" {
		t.Fatalf("k1 product contracts: %+v", k1.ProductContracts)
	}
	acc := k1.ProductContracts[0].Contract.Accounts
	if acc == nil || *acc.Count != 300 || acc.Range.From != 101 || *acc.Range.To != 500 || len(acc.Platforms) != 2 ||
		acc.Platforms[0].Platform != "windows" || *acc.Platforms[0].Count != 200 || *acc.Platforms[0].Range.To != 500 ||
		acc.Platforms[1].Platform != "mac" || *acc.Platforms[1].Count != 100 || acc.Platforms[1].Range != nil {
		t.Errorf("accounts: %s", mustMarshal(t, acc))
	}
	// k2 has none of the new fields: it reads as before (no keys at all).
	r := s.must(200, ten, "GET", "/v1/service-contracts/k2", nil)
	for _, key := range []string{"label", "associated_services", "accounts"} {
		if strings.Contains(string(r.body), `"`+key+`"`) {
			t.Errorf("k2 without %s: %s", key, r.body)
		}
	}
	// Filters, paging, unknown service, unknown parameters.
	page = listingPage{}
	s.must(200, ten, "GET", "/v1/services/cloud/contracts?customer=c2", nil).decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].Contract.ID != "k2" {
		t.Errorf("customer=c2: %+v", page.Items)
	}
	page = listingPage{}
	s.must(200, ten, "GET", "/v1/services/cloud/contracts?pageSize=1", nil).decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].Contract.ID != "k1" || page.NextPage == "" {
		t.Fatalf("page 1: %+v", page)
	}
	next := page.NextPage
	page = listingPage{}
	s.must(200, ten, "GET", "/v1/services/cloud/contracts?pageSize=1&nextPage="+next, nil).decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].Contract.ID != "k2" || page.NextPage != "" {
		t.Errorf("page 2: %+v", page)
	}
	page = listingPage{}
	s.must(200, ten, "GET", "/v1/services/cloud/contracts?active_on=2026-01-15", nil).decode(t, &page)
	if len(page.Items) != 0 {
		t.Errorf("active_on before every start: %+v", page.Items)
	}
	if r := s.do(ten, "GET", "/v1/services/nope/contracts", nil); r.status != 404 {
		t.Errorf("unknown service: %s", r)
	}
	if r := s.do(tenantID("b"), "GET", "/v1/services/cloud/contracts", nil); r.status != 404 {
		t.Errorf("another tenant: %s", r)
	}
	for _, q := range []string{"?customer=", "?label=x"} {
		if r := s.do(ten, "GET", "/v1/services/cloud/contracts"+q, nil); r.status != 400 {
			t.Errorf("%s: %s, want 400", q, r)
		}
	}
}

// The typed listing fields are validated, naming the field.
func TestServiceContractListingFieldsValidated(t *testing.T) {
	conn, rdb, master := database(t)
	s := newServer(t, conn, rdb, master)
	ten := tenantID("a")
	postMasters(t, s, ten)
	s.must(201, ten, "POST", "/v1/customers", map[string]any{"id": "c1"})
	s.must(201, ten, "POST", "/v1/basic-contracts", map[string]any{"id": "b1", "customer": "c1", "start_date": "2026-01-01",
		"currency": "JPY", "time_zone": "Asia/Tokyo", "rounding": "half_up"})
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"id": "k1", "customer": "c1", "basic_contract": "b1", "service": "cloud", "start_date": "2026-02-01",
			"plans": []map[string]any{{"plan": "cloud-standard", "start_date": "2026-02-01"}}}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name  string
		extra map[string]any
		field string
	}{
		{"associated service without a name", map[string]any{"associated_services": []map[string]any{{"service": "mtx1"}}}, "associated_services[0].name"},
		{"associated service listed twice", map[string]any{"associated_services": []map[string]any{{"service": "mtx1", "name": "a"}, {"service": "mtx1", "name": "b"}}}, "associated_services[1].service"},
		{"range upside down", map[string]any{"accounts": map[string]any{"range": map[string]any{"from": 500, "to": 101}}}, "accounts.range.to"},
		{"negative count", map[string]any{"accounts": map[string]any{"count": -1}}, "accounts.count"},
		{"platform twice", map[string]any{"accounts": map[string]any{"platforms": []map[string]any{{"platform": "mac", "count": 1}, {"platform": "mac", "count": 2}}}}, "accounts.platforms[1].platform"},
		{"platform without count or range", map[string]any{"accounts": map[string]any{"platforms": []map[string]any{{"platform": "mac"}}}}, "accounts.platforms[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do(ten, "POST", "/v1/service-contracts", base(tt.extra))
			_, fields := r.problem()
			if r.status != 422 && r.status != 400 || !slices.ContainsFunc(fields, func(f string) bool { return strings.HasPrefix(f, tt.field+":") || f == tt.field }) {
				t.Errorf("%s: %s, want 422 naming %s (fields %q)", tt.name, r, tt.field, fields)
			}
		})
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
