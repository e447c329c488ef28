package billing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/admin/corrections"
	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/billing/run"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/shopspring/decimal"
)

// Every test migrates a ClickHouse database of its own on the servers the
// package's tests share (testenv); in -short mode the tests skip themselves.
func TestMain(m *testing.M) { testenv.Main(m, testenv.Want{ClickHouse: true, Redis: true}) }

type catalogues map[string]*catalog.Catalogue

func (c catalogues) Catalogue(t string) *catalog.Catalogue { return c[t] }

// env is one test's database, service and HTTP server; requests name their
// tenant in the test-only header X-Test-Tenant (standing in for the
// authenticated principal).
type env struct {
	t      *testing.T
	conn   driver.Conn
	store  *billingdb.Store
	svc    *run.Service
	runner *jobs.Runner
	srv    *httptest.Server
	now    time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	conn, _ := testenv.ClickHouse(t, "ab")
	rdb := testenv.Redis(t)
	name := testenv.DatabaseName(t, "runner")
	f, err := os.Open("../../billing/testdata/month.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, conn: conn, store: billingdb.New(conn), now: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)}
	e.svc = run.New(run.Options{Store: e.store, Records: usagedb.NewRecords(conn), Catalogues: catalogues{"acme": c},
		Periods: corrections.NewPeriods(conn), Redis: rdb, Now: func() time.Time { return e.now }, Members: members})
	js := jobs.NewStore(conn)
	e.runner = jobs.NewRunner(jobs.Options{Store: js, Redis: rdb, LeaseTTL: 3 * time.Second, Owner: name})
	e.runner.Register(run.Kind, run.NewJob(e.svc))
	e.runner.Register(run.CloseKind, run.NewCloseJob(e.svc))
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.runner.Run(rctx) }()
	api := New(e.store, e.svc, js, e.runner.Wake, page.NewCodec([]byte("test secret"), 1000), nil).WithMembers(members)
	mux := http.NewServeMux()
	for _, rt := range api.Routes() {
		mux.Handle(rt.Pattern(), rt.Handler)
	}
	versioned := httpapi.WithVersion(mux)
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ten := r.Header.Get("X-Test-Tenant"); ten != "" {
			r = r.WithContext(tenant.With(r.Context(), ten))
		}
		versioned.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		e.srv.Close()
		rcancel()
		<-done
	})
	return e
}

var tokyo, _ = time.LoadLocation("Asia/Tokyo")

// members: acme's groups g-c1 (customer c1) and g-none (no one).
func members(tenant, group string) ([]string, bool) {
	if tenant != "acme" {
		return nil, false
	}
	switch group {
	case "g-c1":
		return []string{"c1"}, true
	case "g-none":
		return nil, true
	}
	return nil, false
}

// storeNovember stores c1's November records of billing/testdata/month.yaml.
func (e *env) storeNovember() {
	e.t.Helper()
	var recs []usagedb.AcceptedRecord
	for i, x := range []struct {
		id, contract, element, qty string
		day, hour                  int
	}{
		{"u1", "k-api", "calls", "800", 1, 0}, {"u2", "k-api", "gb", "120", 3, 9}, {"u3", "k-api", "calls", "1200", 10, 12},
		{"u4", "k-food", "meals", "2", 15, 12}, {"u5", "k-api", "gb", "150", 20, 9}, {"u6", "k-api", "calls", "1000", 30, 23},
		{"u7", "k-food", "meals", "1", 30, 12},
	} {
		at := time.Date(2026, 11, x.day, x.hour, 0, 0, 0, tokyo)
		recs = append(recs, usagedb.AcceptedRecord{Partition: 0, Offset: int64(i + 1), Event: schemas.UsageEvent{Tenant: "acme",
			ID: x.id, Customer: "c1", Contract: x.contract, Element: x.element, Quantity: decimal.RequireFromString(x.qty),
			Time: at, ReceivedAt: at.Add(time.Second)}})
	}
	b, err := e.conn.PrepareBatch(context.Background(), usagedb.InsertInto("usage_records"))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := usagedb.AppendRecords(b, recs, e.now); err != nil {
		e.t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		e.t.Fatal(err)
	}
}

// do sends a request as tenant ten and returns the status and body.
func (e *env) do(ten, method, path, body string, hdr ...string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if ten != "" {
		req.Header.Set("X-Test-Tenant", ten)
	}
	req.Header.Set("Kakin-Version", "2027-01-01")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, sb.String()
}
