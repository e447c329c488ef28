package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// periodLinesCatalogue: a commitment of 1000 JPY a month with fee minimums
// due without usage (storage: 10 JPY per GB, minimum 300; calls: 1 JPY, no
// minimum), for three customers from October 2026 (the world clock's
// previous period).
const periodLinesCatalogue = `
services: [{code: svc, name: Svc, versions: [{valid_from: "2026-01-01T00:00:00Z", kind: service, plans: [p]}]}]
plans: [{code: p, name: P, versions: [{valid_from: "2026-01-01T00:00:00Z", type: metered, currency: JPY, fees: [calls, storage], commitment: 1000, minimum_without_usage: true}]}]
fees:
  - {code: calls, name: Calls, versions: [{valid_from: "2026-01-01T00:00:00Z", kind: metered, element: calls, rates: [{rate_table: one}]}]}
  - {code: storage, name: Storage, versions: [{valid_from: "2026-01-01T00:00:00Z", kind: metered, element: gb, rates: [{rate_table: ten}], minimum: 300}]}
elements:
  - {code: calls, name: Calls, versions: [{valid_from: "2026-01-01T00:00:00Z", unit: call, aggregation: sum}]}
  - {code: gb, name: GB, versions: [{valid_from: "2026-01-01T00:00:00Z", unit: GB, aggregation: sum}]}
rate_tables:
  - {code: one, name: One, versions: [{valid_from: "2026-01-01T00:00:00Z", model: per_unit, unit_price: 1}]}
  - {code: ten, name: Ten, versions: [{valid_from: "2026-01-01T00:00:00Z", model: per_unit, unit_price: 10}]}
basic_contracts:
  - {id: b-idle, customer: c-idle, start_date: "2026-10-01", currency: JPY, closing_day: 0, time_zone: UTC, rounding: half_up}
  - {id: b-under, customer: c-under, start_date: "2026-10-01", currency: JPY, closing_day: 0, time_zone: UTC, rounding: half_up}
  - {id: b-over, customer: c-over, start_date: "2026-10-01", currency: JPY, closing_day: 0, time_zone: UTC, rounding: half_up}
service_contracts:
  - {id: k-idle, customer: c-idle, basic_contract: b-idle, service: svc, start_date: "2026-10-01", plans: [{plan: p, start_date: "2026-10-01"}]}
  - {id: k-under, customer: c-under, basic_contract: b-under, service: svc, start_date: "2026-10-01", plans: [{plan: p, start_date: "2026-10-01"}]}
  - {id: k-over, customer: c-over, basic_contract: b-over, service: svc, start_date: "2026-10-01", plans: [{plan: p, start_date: "2026-10-01"}]}
`

// TestPeriodLinesInTheStream (issue 19 items 6 and 11 through the
// processes): October has ended on the world clock, so the rater's
// fixed-fee emitter writes each contract's idle minimum and commitment
// true-up from the stored October records: c-idle 300 + 700, c-under 300 +
// 500 (1000 − 200 calls − 300), c-over nothing (its lines at zero). A second
// rater process (its emitter's first round) writes the same line ids again:
// rated_usage keeps one of each. The billing run of October computes the
// same lines: 0 reconciliation differences.
func TestPeriodLinesInTheStream(t *testing.T) {
	e := newEnv(t, e2ePrices)
	catFile := filepath.Join(e.dir, "commit.yaml")
	if err := os.WriteFile(catFile, []byte(periodLinesCatalogue), 0o600); err != nil {
		t.Fatal(err)
	}
	p := e.start("all", "all")
	for _, c := range []string{"c-idle", "c-under", "c-over"} {
		req, _ := http.NewRequest(http.MethodPost, p.url+"/v1/customers", strings.NewReader(`{"id":"`+c+`"}`))
		req.Header.Set("Kakin-Tenant", "commit")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /v1/customers %s: %d %s", c, resp.StatusCode, b)
		}
	}
	e.output(t, "catalog", "apply", "--tenant", "commit", "-f", catFile, "--yes")
	// The rater prices with the tenant's compiled catalogue once its replica
	// has it (a record before would be priced by the price list: unrated).
	waitFor(t, 30*time.Second, "the rater to compile the catalogue", func() (bool, string) {
		resp, err := http.Get(p.url + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `kakin_rater_catalogue_compiles_total{outcome="ok"} 1`), "no compile yet"
	})
	ctx := context.Background()
	at := "2026-10-20T09:00:00Z"
	usage := []byte(fmt.Sprintf(`{"id":"u1","customer":"c-under","element":"calls","quantity":200,"time":%[1]q}
{"id":"o1","customer":"c-over","element":"calls","quantity":900,"time":%[1]q}
{"id":"o2","customer":"c-over","element":"gb","quantity":50,"time":%[1]q}`, at))
	if code, _ := post(t, p.url, "commit", usage); code != 202 {
		t.Fatalf("POST /v1/usage: %d", code)
	}
	waitFor(t, 30*time.Second, "the October records to be rated and stored", func() (bool, string) {
		rated := e.count(ctx, "SELECT count() FROM rated_usage FINAL WHERE tenant = 'commit' AND NOT startsWith(event_id, 'fixed:')")
		stored := e.count(ctx, "SELECT count() FROM usage_records FINAL WHERE tenant = 'commit'")
		return rated == 3 && stored == 3, fmt.Sprintf("rated %d, stored %d; %s", rated, stored, e.lags(ctx))
	})
	// The first process's emitter ran when it started, before the records
	// were stored; a second rater's first round sees them (and so does the
	// first one's next round, a minute later).
	e.start("rater-2", "rater")
	want := map[string]string{
		"k-idle/storage#minimum": "300", "k-idle/#commitment": "700",
		"k-under/storage#minimum": "300", "k-under/#commitment": "500",
		"k-over/storage#minimum": "0", "k-over/#commitment": "0",
	}
	got := map[string]string{}
	var rows int
	waitFor(t, 90*time.Second, "the period lines of October", func() (bool, string) {
		got, rows = map[string]string{}, 0
		r, err := e.ch.Query(ctx, "SELECT item, toString(toDecimal64(amount, 0)) FROM rated_usage FINAL WHERE tenant = 'commit' AND period = '2026-10' AND position(item, '#') > 0")
		if err != nil {
			return false, err.Error()
		}
		defer r.Close()
		for r.Next() {
			var item, amount string
			if err := r.Scan(&item, &amount); err != nil {
				return false, err.Error()
			}
			got[item] = amount
			rows++
		}
		for k, w := range want {
			if got[k] != w {
				return false, fmt.Sprintf("%v", got)
			}
		}
		return rows == len(want), fmt.Sprintf("%d rows: %v", rows, got)
	})

	// A billing run counts the records received before its watermark, the
	// business clock in whole seconds: let the clock pass the second the
	// records were received in.
	var received time.Time
	if err := e.ch.QueryRow(ctx, "SELECT max(received_at) FROM usage_records FINAL WHERE tenant = 'commit'").Scan(&received); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the world clock to pass the records' receive second", func() (bool, string) {
		return worldNow().Truncate(time.Second).After(received), worldNow().String()
	})
	out := e.output(t, "billing", "run", "--tenant", "commit", "--period", "2026-10")
	var res struct {
		Receivables, Differences uint64
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("kakin billing run: %v\n%s", err, out)
	}
	if res.Receivables != 3 || res.Differences != 0 {
		t.Errorf("billing run %+v, want 3 receivables and 0 reconciliation differences\n%s", res, out)
		r, err := e.ch.Query(ctx, "SELECT customer, item, outcome, toString(batch_amount), toString(stream_amount) FROM billing_reconciliation WHERE tenant = 'commit'")
		if err == nil {
			for r.Next() {
				var c, i, o, b, s string
				_ = r.Scan(&c, &i, &o, &b, &s)
				t.Logf("reconciliation %s %s: %s batch %s stream %s", c, i, o, b, s)
			}
			r.Close()
		}
	}
}
