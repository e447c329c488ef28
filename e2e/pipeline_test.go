package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

const e2ePrices = `{"tenants": {
  "acme":  {"currency": "JPY", "rounding": "half_up", "time_zone": "Asia/Tokyo", "customers": ["c1", "c2"],
            "prices": {"api_calls": "0.5", "transfer_gb": "9.8"}},
  "other": {"currency": "USD", "rounding": "up", "time_zone": "UTC", "customers": ["c1"],
            "prices": {"api_calls": "0.0125"}}
}}`

// TestEndToEnd posts valid, invalid, duplicate and unratable records through
// one all-roles process and checks every outcome where a user would look.
func TestEndToEnd(t *testing.T) {
	e := newEnv(t, e2ePrices)
	p := e.start("all", "all")
	ctx := context.Background()

	// 2026-11-01T00:30+09:00 is still October in UTC: the period is the tenant's (Tokyo) month.
	body := strings.Join([]string{
		`{"id":"e1","customer":"c1","element":"api_calls","quantity":3,"time":"2026-11-01T00:30:00+09:00"}`,   // 1.5 → 2
		`{"id":"e2","customer":"c1","element":"transfer_gb","quantity":"1.25","time":"2026-11-02T00:00:00Z"}`, // 12.25 → 12
		`{"id":"e3","customer":"c1","element":"api_calls","quantity":"0.999","time":"2026-11-03T00:00:00Z"}`,  // 0.4995 → 0
		`{"id":"e1","customer":"c1","element":"api_calls","quantity":3,"time":"2026-11-01T00:30:00+09:00"}`,   // exact duplicate
		`{"id":"e2","customer":"c1","element":"transfer_gb","quantity":"99","time":"2026-11-02T00:00:00Z"}`,   // same id, other payload
		`{"id":"e4","customer":"c1","element":"api_calls","quantity":-1,"time":"2026-11-03T00:00:00Z"}`,       // invalid
		`{"id":"e5","customer":"c1","element":"api_calls","time":"2026-11-03T00:00:00Z","extra":1}`,           // invalid twice
		`not json`,
		`{"id":"e6","customer":"nobody","element":"api_calls","quantity":1,"time":"2026-11-03T00:00:00Z"}`,  // unknown customer
		`{"id":"e7","customer":"c2","element":"sms","quantity":1,"time":"2026-11-03T00:00:00Z"}`,            // unknown element
		`{"id":"e8","customer":"c2","element":"api_calls","quantity":7,"time":"2026-11-20T23:59:59+09:00"}`, // 3.5 → 4
	}, "\n")
	code, resp := post(t, p.url, "acme", []byte(body))
	if code != http.StatusAccepted {
		t.Fatalf("status %d", code)
	}
	wantStatus := []string{"accepted", "accepted", "accepted", "accepted", "accepted", "rejected", "rejected", "rejected", "accepted", "accepted", "accepted"}
	if resp.Accepted != 8 || resp.Rejected != 3 || len(resp.Results) != len(wantStatus) {
		t.Fatalf("response %+v", resp)
	}
	for i, want := range wantStatus {
		if r := resp.Results[i]; r.Status != want || r.Index != i {
			t.Errorf("record %d: %+v, want %s", i, r, want)
		}
	}
	fieldsOf := func(i int) string {
		var f []string
		for _, e := range resp.Results[i].Errors {
			f = append(f, e.Field)
		}
		return strings.Join(f, ",")
	}
	if got := fieldsOf(5); got != "quantity" {
		t.Errorf("record 5 error fields %q, want quantity", got)
	}
	if got := fieldsOf(6); got != "extra,quantity" {
		t.Errorf("record 6 error fields %q, want extra (unknown field) and quantity (missing)", got)
	}
	// The same event ids under another tenant are not duplicates.
	if code, resp := post(t, p.url, "other", []byte(`{"id":"e1","customer":"c1","element":"api_calls","quantity":1,"time":"2026-11-05T00:00:00Z"}`)); code != http.StatusAccepted || resp.Accepted != 1 {
		t.Fatalf("other tenant: %d %+v", code, resp)
	}

	waitFor(t, 30*time.Second, "rated lines, duplicates and unrated records", func() (bool, string) {
		r, err := e.rated(ctx, "acme")
		if err != nil {
			return false, err.Error()
		}
		d := e.count(ctx, "SELECT count() FROM usage_duplicates FINAL WHERE tenant = 'acme'")
		u := e.count(ctx, "SELECT count() FROM usage_unrated FINAL WHERE tenant = 'acme'")
		o, _ := e.rated(ctx, "other")
		state := fmt.Sprintf("rated %d lines %s, %d duplicates, %d unrated, other %d", r.Lines, r.Amount, d, u, o.Lines)
		return r.Lines == 4 && d == 2 && u == 2 && o.Lines == 1, state
	})

	r, _ := e.rated(ctx, "acme")
	if !r.Amount.Equal(decimal.NewFromInt(18)) {
		t.Errorf("acme total %s, want 18", r.Amount)
	}
	var differs []uint8
	rows, err := e.ch.Query(ctx, "SELECT event_id, payload_differs, first_offset FROM usage_duplicates FINAL WHERE tenant = 'acme' ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var d uint8
		var firstOffset int64
		if err := rows.Scan(&id, &d, &firstOffset); err != nil {
			t.Fatal(err)
		}
		differs = append(differs, d)
	}
	rows.Close()
	if fmt.Sprint(differs) != "[0 1]" {
		t.Errorf("payload_differs for e1,e2 = %v, want [0 1]", differs)
	}
	var reasons []string
	rows, err = e.ch.Query(ctx, "SELECT reason_code FROM usage_unrated FINAL WHERE tenant = 'acme' ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		rows.Scan(&c)
		reasons = append(reasons, c)
	}
	rows.Close()
	if fmt.Sprint(reasons) != "[unknown_customer unknown_element]" {
		t.Errorf("unrated reasons %v", reasons)
	}

	// Duplicates are searchable over HTTP, with the reference to the first record.
	if code, body := get(t, p.url+"/v1/usage/duplicates?payload_differs=true", "acme"); code != 200 ||
		!strings.Contains(body, `"id":"e2"`) || strings.Contains(body, `"id":"e1"`) || !strings.Contains(body, `"first_position"`) {
		t.Errorf("duplicates with differing payloads: %d %s", code, body)
	}
	if code, body := get(t, p.url+"/v1/usage/duplicates/count", "acme"); code != 200 || strings.TrimSpace(body) != `{"count":2}` {
		t.Errorf("duplicates count: %d %s", code, body)
	}
	if code, body := get(t, p.url+"/v1/usage/unrated/count?reason=unknown_element", "acme"); code != 200 || strings.TrimSpace(body) != `{"count":1}` {
		t.Errorf("unrated count: %d %s", code, body)
	}

	// The charges query answers per element, exact, in the tenant's period.
	ch := getCharges(t, p.url, "acme", "c1", "2026-11")
	if ch.Total != "14" || ch.Currency != "JPY" || len(ch.Lines) != 2 {
		t.Fatalf("charges c1 2026-11: %+v", ch)
	}
	if l := ch.Lines[0]; l.Element != "api_calls" || l.Quantity != "3.999" || l.Amount != "2" || l.Events != 2 {
		t.Errorf("api_calls line %+v", l)
	}
	if l := ch.Lines[1]; l.Element != "transfer_gb" || l.Quantity != "1.25" || l.Amount != "12" {
		t.Errorf("transfer_gb line %+v", l)
	}
	if ch := getCharges(t, p.url, "acme", "c2", "2026-11"); ch.Total != "4" {
		t.Errorf("charges c2: %+v", ch)
	}
	if ch := getCharges(t, p.url, "other", "c1", "2026-11"); ch.Total != "0.02" || ch.Currency != "USD" {
		t.Errorf("charges other/c1: %+v", ch)
	}
	// Another tenant's charges are not visible under this tenant.
	if ch := getCharges(t, p.url, "other", "c2", "2026-11"); len(ch.Lines) != 0 {
		t.Errorf("tenant other sees acme's c2: %+v", ch)
	}

	// Bad queries are 400 with the field named.
	resp2, _ := http.Get(p.url + "/v1/charges?customer=c1&period=2026-13")
	if resp2.StatusCode != http.StatusUnauthorized {
		t.Errorf("charges without tenant: %d, want 401", resp2.StatusCode)
	}
	resp2.Body.Close()

	// Readiness and metrics.
	if code, body := get(t, p.url+"/readyz", ""); code != 200 || !strings.Contains(body, `"redis":"ok"`) || !strings.Contains(body, `"clickhouse":"ok"`) || !strings.Contains(body, `"kafka":"ok"`) {
		t.Errorf("readyz %d %s", code, body)
	}
	_, metrics := get(t, p.url+"/metrics", "")
	for _, want := range []string{
		`kakin_stage_records_total{outcome="accepted",stage="ingest"} 9`,
		`kakin_stage_records_total{outcome="rejected",stage="ingest"} 3`,
		`kakin_stage_records_total{outcome="duplicate",stage="dedupe"} 2`,
		`kakin_stage_records_total{outcome="unrated",stage="rater"} 2`,
		`kakin_clickhouse_insert_seconds_count{table="rated_usage"}`,
		`kakin_stage_consumer_lag_records{stage="aggregator"}`,
		`kakin_stage_batch_seconds_bucket{stage="rater"`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

type chargesResponse struct {
	Customer string `json:"customer"`
	Period   string `json:"period"`
	Currency string `json:"currency"`
	Total    string `json:"total"`
	Lines    []struct {
		Element  string `json:"element"`
		Quantity string `json:"quantity"`
		Amount   string `json:"amount"`
		Currency string `json:"currency"`
		Events   uint64 `json:"events"`
	} `json:"lines"`
}

func getCharges(t *testing.T, baseURL, tenant, customer, period string) chargesResponse {
	t.Helper()
	code, body := get(t, fmt.Sprintf("%s/v1/charges?customer=%s&period=%s", baseURL, customer, period), tenant)
	if code != http.StatusOK {
		t.Fatalf("charges: %d %s", code, body)
	}
	var out chargesResponse
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func get(t *testing.T, url, tenant string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if tenant != "" {
		req.Header.Set("Kakin-Tenant", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
