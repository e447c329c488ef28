package e2e

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/apitest"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/shopspring/decimal"
)

// reportUsers is the subscribers of TestReportSurvivesAKilledAdminProcess:
// enough that the report's days phase writes several inserts of
// usage_daily, so the process can be killed between them.
const reportUsers = 60_000

// TestReportSurvivesAKilledAdminProcess posts a user-level usage report
// (spec 003) to an admin process, SIGKILLs that process once the report's
// job is under way (its first usage_daily rows are stored, the job not
// completed), starts another admin process, and checks that the report
// completes there with exactly the expected rows: one per subscriber, its
// quantity the day fractions of what it held.
func TestReportSurvivesAKilledAdminProcess(t *testing.T) {
	e := newEnv(t, e2ePrices)
	e.extraEnv = []string{"KAKIN_JOB_LEASE=2s", "KAKIN_REPORT_DIR=" + filepath.Join(e.dir, "reports")}
	ctx := context.Background()
	// Subscriber k of customer c(k%40) holds 1 + k%3 seats from 1 or 2
	// November (k%2) 00:00 UTC on: over 1–3 November that is 3 or 2 whole
	// days, so its quantity is (1 + k%3) × (3 − k%2).
	want := map[string]string{}
	var recs []usagedb.AcceptedRecord
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for k := range reportUsers {
		cu, user, q := fmt.Sprintf("c%02d", k%40), fmt.Sprintf("u%06d", k), int64(1+k%3)
		at := start.Add(time.Duration(k%2) * 24 * time.Hour)
		recs = append(recs, usagedb.AcceptedRecord{Partition: k % 6, Offset: int64(k), Event: schemas.UsageEvent{Tenant: "rep",
			ID: "r-" + user, Customer: cu, Contract: "k-" + cu, Element: "seats", Quantity: decimal.NewFromInt(q), Time: at,
			ReceivedAt: at.Add(time.Minute), Attributes: map[string]string{"user": user, "workspace": "w" + cu}}})
		want[cu+"/"+user] = decimal.NewFromInt(q * int64(3-k%2)).String()
	}
	for i := 0; i < len(recs); i += 50_000 {
		b, err := e.ch.PrepareBatch(ctx, usagedb.InsertInto("usage_records"))
		if err != nil {
			t.Fatal(err)
		}
		if err := usagedb.AppendRecords(b, recs[i:min(i+50_000, len(recs))], worldNow()); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}

	v := apitest.NewValidator(t)
	first := e.start("admin-1", "admin")
	a := tenantAPI{&api{t: t, base: first.url, http: v.Client()}, "rep"}
	r := a.call("POST", "/v1/reports", `{"type":"user","from":"2026-11-01","to":"2026-11-03"}`)
	var rep struct {
		ID          string `json:"id"`
		Status      string `json:"status"`
		DownloadURL string `json:"download_url"`
	}
	if r.status != http.StatusAccepted {
		t.Fatalf("POST /v1/reports: %d %s", r.status, r.body)
	}
	r.json(t, &rep)
	waitFor(t, 60*time.Second, "the report's first usage_daily rows", func() (bool, string) {
		n := e.count(ctx, "SELECT count() FROM usage_daily WHERE tenant = 'rep'")
		return n > 0, fmt.Sprintf("%d rows", n)
	})
	first.kill()
	killed := time.Now()
	days := e.count(ctx, "SELECT count() FROM usage_daily WHERE tenant = 'rep'")
	if n := e.count(ctx, "SELECT count() FROM jobs FINAL WHERE tenant = 'rep' AND status = 'completed'"); n != 0 {
		t.Fatalf("the report completed before the kill (%d usage_daily rows): make reportUsers larger", days)
	}

	second := e.start("admin-2", "admin")
	b := tenantAPI{&api{t: t, base: second.url, http: v.Client()}, "rep"}
	waitFor(t, 90*time.Second, "the report to complete in the second process", func() (bool, string) {
		r := b.call("GET", "/v1/reports/"+rep.ID, "")
		r.json(t, &rep)
		return rep.Status == "completed" || rep.Status == "failed", string(r.body)
	})
	if rep.Status != "completed" {
		t.Fatalf("report %s", rep.Status)
	}
	j, _ := getJob(t, second.url, "rep", rep.ID)
	t.Logf("killed with %d usage_daily rows stored; completed %s later by the second process (job %+v)",
		days, time.Since(killed).Round(time.Millisecond), j)

	f := b.do("GET", rep.DownloadURL, "", nil)
	if f.status != 200 {
		t.Fatalf("download: %d %s", f.status, f.body)
	}
	rows, err := csv.NewReader(strings.NewReader(string(f.body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	got := map[string]string{}
	for _, row := range rows[1:] {
		k := row[col["customer_org_id"]] + "/" + row[col["user_id"]]
		if _, dup := got[k]; dup {
			t.Errorf("%s twice in the report", k)
		}
		got[k] = row[col["quantity"]]
	}
	if len(got) != len(want) || len(rows)-1 != len(want) {
		t.Errorf("%d rows (%d keys), want %d", len(rows)-1, len(got), len(want))
	}
	bad := 0
	for k, q := range want {
		if got[k] != q {
			if bad++; bad <= 5 {
				t.Errorf("%s: quantity %q, want %s", k, got[k], q)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d subscribers wrong", bad, len(want))
	}
}
