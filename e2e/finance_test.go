package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/apitest"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/shopspring/decimal"
)

// TestFinanceRoutes runs the admin role as a process and reads through it
// what finance asks (issue 16): one service contract's charges per month
// (GET /v1/service-contracts/{id}/charges) over lines stored in ClickHouse,
// and a service's contracts with options (GET /v1/services/{code}/contracts),
// each isolated from another tenant.
func TestFinanceRoutes(t *testing.T) {
	e := newEnv(t, e2ePrices)
	v := apitest.NewValidator(t)
	p := e.start("admin", "admin")
	a := tenantAPI{&api{t: t, base: p.url, http: v.Client()}, "demo"}
	other := tenantAPI{&api{t: t, base: p.url, http: v.Client()}, "other"}
	e.output(t, "catalog", "apply", "--tenant", "demo", "-f", "deploy/demo/catalogue.yaml", "--yes")
	for _, c := range []struct{ path, body string }{
		{"/v1/customers", `{"id":"c1"}`},
		{"/v1/basic-contracts", `{"id":"b1","customer":"c1","start_date":"2026-01-01","currency":"JPY","time_zone":"Asia/Tokyo","rounding":"half_up"}`},
		{"/v1/service-contracts", `{"id":"k1","customer":"c1","basic_contract":"b1","service":"cloud","start_date":"2026-11-10","label":"hq",
			"associated_services":[{"service":"mtx1","name":"Private backbone"}],"plans":[{"plan":"cloud-standard","start_date":"2026-11-10"}]}`},
		{"/v1/service-contracts", `{"id":"k2","customer":"c1","basic_contract":"b1","service":"cloud-backup","parent":"k1","start_date":"2026-11-10",
			"plans":[{"plan":"backup-flat","start_date":"2026-11-10"}]}`},
	} {
		if r := a.call("POST", c.path, c.body); r.status != 201 {
			t.Fatalf("POST %s: %d %s", c.path, r.status, r.body)
		}
	}
	// Two metered lines and a fixed fee of k1 in 2026-11, stored as the
	// aggregator stores them (twice: a redelivered batch).
	at := time.Date(2026, 11, 12, 3, 0, 0, 0, time.UTC)
	line := func(id, element, item, amount string) schemas.RatedLine {
		return schemas.RatedLine{LineID: schemas.LineID("demo", id, item),
			Event: schemas.UsageEvent{Tenant: "demo", ID: id, Customer: "c1", Element: element, Contract: "k1",
				Quantity: decimal.RequireFromString("2"), Time: at, ReceivedAt: at},
			Item: item, Amount: decimal.RequireFromString(amount), Currency: "JPY", Period: "2026-11", RatedAt: at}
	}
	lines := []schemas.RatedLine{line("u1", "api_calls", "k1/api-calls", "120"), line("u2", "api_calls", "k1/api-calls", "80"),
		line("fixed:k1:2026-11:cloud-standard:base:2026-11-10", "base", "k1/base", "1000")}
	ctx := context.Background()
	for range 2 {
		b, err := e.ch.PrepareBatch(ctx, usagedb.InsertInto("rated_usage"))
		if err != nil {
			t.Fatal(err)
		}
		if err := usagedb.AppendRated(b, lines); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}

	var charges struct {
		Contract string `json:"contract"`
		Months   []struct {
			Month, Result, Total string
			Items                []struct {
				BillItem      string `json:"bill_item"`
				Amount        string `json:"amount"`
				EffectiveDate string `json:"effective_date"`
			}
		} `json:"months"`
	}
	r := a.call("GET", "/v1/service-contracts/k1/charges?month=202611", "")
	if r.status != 200 {
		t.Fatalf("charges: %d %s", r.status, r.body)
	}
	if err := json.Unmarshal(r.body, &charges); err != nil {
		t.Fatal(err)
	}
	if len(charges.Months) != 1 || charges.Months[0].Result != "ok" || charges.Months[0].Total != "1200" || len(charges.Months[0].Items) != 2 ||
		charges.Months[0].Items[0].BillItem != "base" || charges.Months[0].Items[1].Amount != "200" || charges.Months[0].Items[0].EffectiveDate != "2026-11-10" {
		t.Errorf("charges of k1 in 202611: %s", r.body)
	}
	if r := a.call("GET", "/v1/service-contracts/k1/charges?month=202610", ""); r.status != 200 || !strings.Contains(string(r.body), `"result":"no_data"`) {
		t.Errorf("a month without lines: %d %s", r.status, r.body)
	}
	if r := a.call("GET", "/v1/service-contracts/k1/charges", ""); r.status != 200 || strings.Count(string(r.body), `"month":`) != 2 {
		t.Errorf("without month: %d %s", r.status, r.body)
	}
	if r := a.doInvalid("GET", "/v1/service-contracts/k1/charges?month=2026-11", "", nil, "Kakin-Tenant", "demo", "Authorization", "Bearer dev"); r.status != 400 ||
		!strings.Contains(string(r.body), "YYYYMM") {
		t.Errorf("bad month: %d %s", r.status, r.body)
	}
	for _, c := range []struct {
		api  tenantAPI
		path string
	}{{a, "/v1/service-contracts/nope/charges"}, {other, "/v1/service-contracts/k1/charges"}, {other, "/v1/services/cloud/contracts"}} {
		if r := c.api.call("GET", c.path, ""); r.status != 404 || strings.Contains(string(r.body), "1200") {
			t.Errorf("%s as %s: %d %s, want 404", c.path, c.api.tenant, r.status, r.body)
		}
	}
	if r := a.call("GET", "/v1/charges?customer=c1&period=2026-11&contract=k1", ""); r.status != 200 || !strings.Contains(string(r.body), `"total":"1200"`) {
		t.Errorf("charges?contract=k1: %d %s", r.status, r.body)
	}

	r = a.call("GET", "/v1/services/cloud/contracts", "")
	var listing struct {
		Items []struct {
			Contract struct {
				ID                 string `json:"id"`
				AssociatedServices []struct {
					Service string `json:"service"`
				} `json:"associated_services"`
			} `json:"contract"`
			Options []struct {
				Contract struct {
					ID string `json:"id"`
				} `json:"contract"`
			} `json:"options"`
		} `json:"items"`
	}
	if err := json.Unmarshal(r.body, &listing); err != nil || r.status != 200 {
		t.Fatalf("listing: %d %s", r.status, r.body)
	}
	if len(listing.Items) != 1 || listing.Items[0].Contract.ID != "k1" || len(listing.Items[0].Contract.AssociatedServices) != 1 ||
		len(listing.Items[0].Options) != 1 || listing.Items[0].Options[0].Contract.ID != "k2" {
		t.Errorf("contracts of cloud: %s", r.body)
	}
}
