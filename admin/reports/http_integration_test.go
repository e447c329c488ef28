package reports

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/tenant"
	usagereports "github.com/kakin-dev/kakin/reports"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/shopspring/decimal"
)

// fakeCatalogue holds a few entities per tenant.
type fakeCatalogue map[string]map[catalogstore.Kind]map[string]any

func (f fakeCatalogue) Get(ten string, k catalogstore.Kind, id string) (catalogstore.Entity, bool) {
	v, ok := f[ten][k][id]
	return catalogstore.Entity{Kind: k, ID: id, Value: v}, ok
}

func catalogueOf(ten string) map[catalogstore.Kind]map[string]any {
	return map[catalogstore.Kind]map[string]any{
		catalogstore.KindGroup:           {"g1": &catalog.Group{ID: "g1", Name: "Reseller One", Members: []string{"c2"}}},
		catalogstore.KindServiceContract: {"sc1": &catalog.ServiceContract{ID: "sc1", Service: "suite"}},
		catalogstore.KindService:         {"suite": &catalog.Service{Code: "suite", Name: "WEBEX_SUITE"}},
		catalogstore.KindElement:         {"seats": &catalog.Element{Code: "seats", Name: "Seats"}},
		catalogstore.KindCustomer:        {"c1": &catalogstore.StoredCustomer{Customer: catalog.Customer{ID: "c1", Attributes: map[string]string{"external_id": "ext-1"}}}},
	}
}

// businessNow is the business clock of these tests: the reports are of
// March 2026, well before it.
var businessNow = time.Date(2026, 4, 10, 3, 0, 0, 0, time.UTC)

type harness struct {
	t      *testing.T
	srv    *httptest.Server
	signer *usagereports.Signer
}

// newHarness runs the report routes (tenant from the X-Tenant header, as
// the authenticator would set it) and a job runner.
func newHarness(t *testing.T) (*harness, driver.Conn) {
	conn := newConn(t)
	store := jobs.NewStore(conn)
	db := usagereports.NewDB(conn)
	log := slog.New(slog.DiscardHandler)
	h := usagereports.NewHandler(db, fakeCatalogue{"ta": catalogueOf("ta"), "tb": catalogueOf("tb")}, t.TempDir(), log)
	ctx, cancel := context.WithCancel(context.Background())
	runner := jobs.NewRunner(jobs.Options{Store: store, Redis: env.rdb, LeaseTTL: 3 * time.Second, Log: log})
	runner.Register(usagereports.Kind, h)
	done := make(chan struct{})
	go func() { _ = runner.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	signer := usagereports.NewSigner([]byte("test key"), time.Hour)
	api := New(Options{Jobs: store, DB: db, Handler: h, Signer: signer, Pages: page.NewCodec([]byte("k"), 100),
		Redis: env.rdb, Wake: runner.Wake, Now: func() time.Time { return businessNow }, Log: log})
	mux := http.NewServeMux()
	withTenant := func(f http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ten := r.Header.Get("X-Tenant"); ten != "" {
				r = r.WithContext(tenant.With(r.Context(), ten))
			}
			f(w, r)
		})
	}
	mux.Handle("POST /v1/reports", withTenant(api.Create))
	mux.Handle("GET /v1/reports", withTenant(api.List))
	mux.Handle("GET /v1/reports/{reportId}", withTenant(api.Get))
	mux.Handle("DELETE /v1/reports/{reportId}", withTenant(api.Delete))
	mux.HandleFunc("GET /report-files/{reportId}", api.Download)
	srv := httptest.NewServer(httpapi.WithVersion(mux))
	t.Cleanup(srv.Close)
	return &harness{t: t, srv: srv, signer: signer}, conn
}

func (h *harness) do(ten, method, path, body string) (int, []byte, http.Header) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if ten != "" {
		req.Header.Set("X-Tenant", ten)
	}
	req.Header.Set(httpapi.VersionHeader, httpapi.V20270101)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func (h *harness) create(ten, body string, want int) View {
	h.t.Helper()
	code, b, hdr := h.do(ten, "POST", "/v1/reports", body)
	if code != want {
		h.t.Fatalf("POST %s: %d %s, want %d", body, code, b, want)
	}
	var v View
	if code == http.StatusAccepted {
		_ = json.Unmarshal(b, &v)
		if v.Status != StatusInProgress || hdr.Get("Location") != Path(v.ID) {
			h.t.Fatalf("POST answered %s (Location %q)", b, hdr.Get("Location"))
		}
	}
	return v
}

// wait polls the report until it is no longer in progress.
func (h *harness) wait(ten, id string) View {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, b, _ := h.do(ten, "GET", Path(id), "")
		var v View
		_ = json.Unmarshal(b, &v)
		if code != http.StatusOK {
			h.t.Fatalf("GET %s: %d %s", id, code, b)
		}
		if v.Status != StatusInProgress {
			return v
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("report %s still in progress: %s", id, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// insertRecords stores usage records as the aggregator does.
func insertRecords(t *testing.T, conn driver.Conn, recs []usagedb.AcceptedRecord) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), usagedb.InsertInto("usage_records"))
	if err != nil {
		t.Fatal(err)
	}
	if err := usagedb.AppendRecords(b, recs, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

func problemCode(b []byte) (string, []httpapi.FieldError) {
	var p httpapi.Problem
	_ = json.Unmarshal(b, &p)
	return p.Code, p.Errors
}

func TestReportsOverHTTP(t *testing.T) {
	h, conn := newHarness(t)
	for _, ten := range []string{"ta", "tb"} {
		recs := []usagedb.AcceptedRecord{
			record(ten, "e1", "c1", "sc1", "seats", "1", "2026-03-01T00:00:00Z", "user", "u1", "workspace", "w1", "location", "l1"),
			record(ten, "e2", "c1", "sc1", "seats", "0", "2026-03-02T12:00:00Z", "user", "u1", "workspace", "w1", "location", "l1"),
			record(ten, "e3", "c2", "sc2", "seats", "2", "2026-03-03T00:00:00Z", "user", "u4"),
		}
		insertRecords(t, conn, recs)
	}

	// Validation: every bad field named, dates against the business clock.
	for _, tc := range []struct {
		body   string
		code   int
		fields []string
	}{
		{`{"type":"user","from":"2026-04-01","to":"2026-04-10"}`, 422, []string{"to"}},
		{`{"type":"user","from":"2021-04-09","to":"2026-03-01"}`, 422, []string{"from"}},
		{`{"type":"group","from":"2026-03-03","to":"2026-03-01","format":"xlsx","time_zone":"Mars/Base"}`, 422, []string{"type", "format", "time_zone", "to"}},
		{`{"type":"user","from":"2026-3-1","to":"2026-03-01"}`, 422, []string{"from"}},
		{`{"type":"user","from":"2026-03-01","to":"2026-03-01","colour":"red"}`, 400, []string{"colour"}},
	} {
		code, b, _ := h.do("ta", "POST", "/v1/reports", tc.body)
		_, errs := problemCode(b)
		var fields []string
		for _, e := range errs {
			fields = append(fields, e.Field)
		}
		if code != tc.code || strings.Join(fields, ",") != strings.Join(tc.fields, ",") {
			t.Errorf("POST %s: %d %s, want %d naming %v", tc.body, code, b, tc.code, tc.fields)
		}
	}
	if code, b, _ := h.do("ta", "POST", "/v1/reports?x=1", `{"type":"user","from":"2026-03-01","to":"2026-03-03"}`); code != 400 {
		t.Errorf("unknown query parameter: %d %s", code, b)
	}
	if code, _, _ := h.do("", "POST", "/v1/reports", `{"type":"user","from":"2026-03-01","to":"2026-03-03"}`); code != 401 {
		t.Errorf("no tenant: %d, want 401", code)
	}

	// A user report, as CSV.
	v := h.create("ta", `{"type":"user","from":"2026-03-01","to":"2026-03-03"}`, 202)
	done := h.wait("ta", v.ID)
	if done.Status != StatusCompleted || done.DownloadURL == "" || done.Rows == nil || *done.Rows != 2 {
		t.Fatalf("report: %+v", done)
	}
	code, body, hdr := h.do("", "GET", done.DownloadURL, "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Fatalf("download: %d %s", code, body)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		usagereports.Columns(usagereports.TypeUser),
		{"ta", "ta", "sc1", "WEBEX_SUITE", "seats", "Seats", "2026-03-01", "2026-03-02", "1.5", "c1", "ext-1", "u1", "u1", "w1", "l1"},
		{"ta", "ta", "sc2", "", "seats", "Seats", "2026-03-03", "2026-03-03", "2", "c2", "", "u4", "u4", "", ""},
	}
	if got, w := csvString(rows), csvString(want); got != w {
		t.Errorf("CSV\n%s\nwant\n%s", got, w)
	}

	// The same type and period again: 409 until the report is deleted.
	code, b, _ := h.do("ta", "POST", "/v1/reports", `{"type":"user","from":"2026-03-01","to":"2026-03-03"}`)
	if c, _ := problemCode(b); code != 409 || c != "report_exists" || !strings.Contains(string(b), v.ID) {
		t.Errorf("regenerate: %d %s, want 409 report_exists naming %s", code, b, v.ID)
	}

	// Tenant isolation on every route: tenant tb sees nothing of ta's.
	for _, r := range []struct{ method, path string }{{"GET", Path(v.ID)}, {"DELETE", Path(v.ID)}} {
		if code, b, _ := h.do("tb", r.method, r.path, ""); code != 404 {
			t.Errorf("tb %s %s: %d %s, want 404", r.method, r.path, code, b)
		}
	}
	if code, b, _ := h.do("tb", "GET", "/v1/reports", ""); code != 200 || strings.Contains(string(b), v.ID) {
		t.Errorf("tb list: %d %s", code, b)
	}
	u, _ := url.Parse(done.DownloadURL)
	qv := u.Query()
	qv.Set("tenant", "tb")
	if code, b, _ := h.do("", "GET", u.Path+"?"+qv.Encode(), ""); code != 403 {
		t.Errorf("ta's URL with tenant tb: %d %s, want 403", code, b)
	}
	// tb's own report of the same period is independent of ta's (no 409) and holds tb's usage only.
	vb := h.wait("tb", h.create("tb", `{"type":"partner","from":"2026-03-01","to":"2026-03-03"}`, 202).ID)
	if vb.Status != StatusCompleted || *vb.Rows != 2 {
		t.Errorf("tb's report: %+v", vb)
	}

	// A sub-partner (customer group) report as Parquet.
	vp := h.wait("ta", h.create("ta", `{"type":"user","from":"2026-03-01","to":"2026-03-03","group":"g1","format":"parquet"}`, 202).ID)
	if vp.Status != StatusCompleted {
		t.Fatalf("parquet report: %+v", vp)
	}
	code, body, hdr = h.do("", "GET", vp.DownloadURL, "")
	if code != 200 || hdr.Get("Content-Type") != "application/vnd.apache.parquet" {
		t.Fatalf("parquet download: %d", code)
	}
	prow, err := usagereports.ReadParquetUser(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	if len(prow) != 1 || prow[0].PartnerID != "g1" || prow[0].PartnerName != "Reseller One" || prow[0].CustomerID != "c2" ||
		!prow[0].Quantity.Equal(decimal.RequireFromString("2")) || prow[0].Start.String() != "2026-03-03" {
		t.Errorf("parquet rows %+v", prow)
	}

	// A group of another tenant (or none) fails the report.
	vf := h.wait("tb", h.create("tb", `{"type":"user","from":"2026-03-01","to":"2026-03-02","group":"g9"}`, 202).ID)
	if vf.Status != StatusFailed || !strings.Contains(vf.Error, "g9") {
		t.Errorf("unknown group: %+v", vf)
	}

	// List: filters, sort and pages.
	code, b, _ = h.do("ta", "GET", "/v1/reports?type=user&sort=-created_at&pageSize=1", "")
	var pg httpapi.Page[View]
	_ = json.Unmarshal(b, &pg)
	if code != 200 || len(pg.Items) != 1 || pg.NextPage == "" {
		t.Fatalf("list page 1: %d %s", code, b)
	}
	code, b, _ = h.do("ta", "GET", "/v1/reports?type=user&sort=-created_at&pageSize=1&nextPage="+url.QueryEscape(pg.NextPage), "")
	var pg2 httpapi.Page[View]
	_ = json.Unmarshal(b, &pg2)
	if code != 200 || len(pg2.Items) != 1 || pg2.NextPage != "" || pg2.Items[0].ID == pg.Items[0].ID {
		t.Errorf("list page 2: %d %s", code, b)
	}
	for _, q := range []string{"from=2026-03-04", "to=2026-02-28", "type=partner"} {
		code, b, _ = h.do("ta", "GET", "/v1/reports?"+q, "")
		if code != 200 || strings.Contains(string(b), v.ID) {
			t.Errorf("list %s: %d %s (must not list %s)", q, code, b, v.ID)
		}
	}
	for _, q := range []string{"sort=size", "type=x", "from=03-01", "colour=red"} {
		if code, b, _ = h.do("ta", "GET", "/v1/reports?"+q, ""); code != 400 {
			t.Errorf("list %s: %d %s, want 400", q, code, b)
		}
	}

	// An expired or altered URL does not work.
	expired, _ := h.signer.URL("ta", v.ID, time.Now().Add(-2*time.Hour))
	if code, b, _ := h.do("", "GET", expired, ""); code != 403 || !strings.Contains(string(b), "url_expired") {
		t.Errorf("expired URL: %d %s", code, b)
	}
	if code, _, _ := h.do("", "GET", strings.Replace(done.DownloadURL, "signature=", "signature=0", 1), ""); code != 403 {
		t.Errorf("altered URL: %d", code)
	}

	// Delete: gone at once, URL included; then the period can be generated again.
	if code, b, _ := h.do("ta", "DELETE", Path(v.ID), ""); code != 204 {
		t.Fatalf("delete: %d %s", code, b)
	}
	if code, _, _ := h.do("", "GET", done.DownloadURL, ""); code != 404 {
		t.Errorf("URL of a deleted report: %d, want 404", code)
	}
	if code, _, _ := h.do("ta", "GET", Path(v.ID), ""); code != 404 {
		t.Errorf("deleted report: %d, want 404", code)
	}
	h.create("ta", `{"type":"user","from":"2026-03-01","to":"2026-03-03"}`, 202)
}

func csvString(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, ",") + "\n")
	}
	return b.String()
}

func record(ten, id, customer, contract, element, qty, at string, kv ...string) usagedb.AcceptedRecord {
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		panic(err)
	}
	attrs := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		attrs[kv[i]] = kv[i+1]
	}
	return usagedb.AcceptedRecord{Event: schemas.UsageEvent{Tenant: ten, ID: id, Customer: customer, Contract: contract,
		Element: element, Quantity: decimal.RequireFromString(qty), Time: t, ReceivedAt: t.Add(time.Minute), Attributes: attrs}}
}
