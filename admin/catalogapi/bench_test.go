package catalogapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/internal/vault"
)

// BenchmarkCatalogAtScale loads one tenant with KAKIN_BENCH_CUSTOMERS
// customers (default 1,000,000; personal fields sealed, blind-indexed), as
// many basic contracts and as many service contracts, straight into
// ClickHouse in large batches, then measures: a replica's full load (time
// and heap), a rater-side replica's load and catalogue snapshot, and the
// latency (p50, p99) of searches, counts, reads and a write through the HTTP
// handlers. Run it with `make bench-catalog`; it is not part of make test.
func BenchmarkCatalogAtScale(b *testing.B) {
	f := scaleFixture(b)
	for _, q := range []struct{ name, method, path string }{
		{"count_all_customers", "GET", "/v1/customers/count"},
		{"customer_stats", "GET", "/v1/stats/customers"},
		{"count_customers_by_status", "GET", "/v1/customers/count?status=suspended"},
		{"search_customer_by_email", "GET", "/v1/customers?email=" + f.email},
		{"count_customers_by_phone", "GET", "/v1/customers/count?phone=" + f.phone},
		{"first_page_of_customers", "GET", "/v1/customers?pageSize=100"},
		{"last_page_of_customers", "GET", "/v1/customers?pageSize=100&nextPage=" + f.lastPage},
		{"get_customer", "GET", "/v1/customers/" + f.customer},
		{"contracts_of_a_customer", "GET", "/v1/service-contracts?customer=" + f.customer},
		{"contract_tree", "GET", "/v1/customers/" + f.customer + "/contracts"},
		{"count_contracts_by_plan", "GET", "/v1/service-contracts/count?plan=cloud-standard"},
		{"count_cancelled_contracts", "GET", "/v1/service-contracts/count?status=cancelled"},
		{"search_cancelled_contracts", "GET", "/v1/service-contracts?status=cancelled&service=cloud"},
		{"count_contracts_active_on_a_day", "GET", "/v1/service-contracts/count?active_on=2026-06-01"},
		{"count_all_contracts", "GET", "/v1/service-contracts/count"},
	} {
		b.Run(q.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				start := time.Now()
				rec := f.serve(q.method, q.path, "")
				lat = append(lat, time.Since(start))
				if rec.Code != 200 {
					b.Fatalf("%s: %d %s", q.path, rec.Code, rec.Body.String())
				}
			}
			reportLatency(b, lat)
		})
	}
	b.Run("update_customer", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			id := fmt.Sprintf("c%07d", (i*7919)%f.n)
			body := fmt.Sprintf(`{"id":%q,"attributes":{"bench":"%d"}}`, id, i)
			start := time.Now()
			rec := f.serve("PUT", "/v1/customers/"+id, body, "If-Match", "*")
			lat = append(lat, time.Since(start))
			if rec.Code != 200 {
				b.Fatalf("update %s: %d %s", id, rec.Code, rec.Body.String())
			}
		}
		reportLatency(b, lat)
	})
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	p := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

type fixture struct {
	handler  http.Handler
	tenant   string
	n        int
	email    string
	phone    string
	customer string
	lastPage string
}

func (f *fixture) serve(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	var req *http.Request
	if body != "" {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	req.Header.Set(tenant.Header, f.tenant)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return rec
}

var (
	scaleOnce sync.Once
	scale     *fixture
)

func scaleFixture(b *testing.B) *fixture {
	scaleOnce.Do(func() { scale = buildScale(b) })
	if scale == nil {
		b.Fatal("fixture setup failed")
	}
	return scale
}

func buildScale(b *testing.B) *fixture {
	n := 1_000_000
	if s := os.Getenv("KAKIN_BENCH_CUSTOMERS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	conn, rdb, master := database(b)
	quiet := slog.New(slog.DiscardHandler)
	ten := "big"
	v := vault.New(conn, rdb, master)

	// The masters through the store; then the bulk straight into the table.
	seed := catalogstore.NewReplica(conn, catalogstore.ReplicaOptions{Log: quiet})
	if err := seed.Load(ctx); err != nil {
		b.Fatal(err)
	}
	seedStore := catalogstore.NewStore(conn, rdb, seed, v, catalogstore.StoreOptions{Log: quiet})
	masters := demo(b)
	masters.Tenant = ten
	if _, err := seedStore.ApplyCatalogue(ctx, ten, "bench", masters); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	firstSeq := seed.Version(ten) + 1
	if err := bulkLoad(ctx, conn, v, ten, firstSeq, n); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("# bulk insert of %d customers, %d basic and %d service contracts: %s\n", n, n, n, time.Since(start).Round(time.Millisecond))

	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	// Rater-side: no personal fields and no customer documents, then the
	// catalogue snapshot the rater compiles.
	before := heap()
	start = time.Now()
	loud := slog.New(slog.NewTextHandler(os.Stdout, nil))
	rater := catalogstore.NewReplica(conn, catalogstore.ReplicaOptions{WithoutPII: true, Log: loud})
	if err := rater.Load(ctx); err != nil {
		b.Fatal(err)
	}
	loadRater := time.Since(start)
	start = time.Now()
	cat := rater.Catalogue(ten)
	snap := time.Since(start)
	heapRater := heap() - before
	runtime.KeepAlive(rater)
	runtime.KeepAlive(cat)
	fmt.Printf("# rater replica load: %s; catalogue snapshot (%d service contracts): %s; load + snapshot %s; heap %.0f MiB with the snapshot\n",
		loadRater.Round(time.Millisecond), len(cat.ServiceContracts), snap.Round(time.Millisecond),
		(loadRater + snap).Round(time.Millisecond), float64(heapRater)/(1<<20))
	rater, cat = nil, nil

	// Admin-side replica: everything, personal ciphertext included.
	before = heap()
	start = time.Now()
	replica := catalogstore.NewReplica(conn, catalogstore.ReplicaOptions{Log: loud})
	if err := replica.Load(ctx); err != nil {
		b.Fatal(err)
	}
	loadAdmin := time.Since(start)
	heapAdmin := heap() - before
	fmt.Printf("# admin replica load: %s, heap %.0f MiB (%.0f bytes per entity)\n", loadAdmin.Round(time.Millisecond),
		float64(heapAdmin)/(1<<20), float64(heapAdmin)/float64(3*n))

	store := catalogstore.NewStore(conn, rdb, replica, v, catalogstore.StoreOptions{Log: quiet})
	api := New(store, page.NewCodec([]byte("bench"), 1000), quiet)
	guard := auth.DevInsecure(quiet)
	mux := http.NewServeMux()
	for _, rt := range api.Routes() {
		mux.Handle(rt.Pattern(), httpapi.WithVersion(guard.Require(rt.Scope)(rt.Handler)))
	}
	f := &fixture{handler: mux, tenant: ten, n: n, customer: fmt.Sprintf("c%07d", n/2),
		email: fmt.Sprintf("user%07d%%40example.jp", n/2), phone: fmt.Sprintf("%%2B81-90-%08d", n/3)}
	// A cursor near the end (as the codec would issue after the customer
	// created 150th from last), to time a deep page.
	codec := page.NewCodec([]byte("bench"), 1000)
	req, _ := codec.Parse(url.Values{"pageSize": {"100"}}, page.Scope(ten, "catalog/customers"))
	f.lastPage = url.QueryEscape(codec.Next(req, true, strconv.FormatUint(firstSeq+uint64(n)-150, 10)))
	return f
}

// bulkLoad inserts n customers (c0000000...), one basic contract each and
// one service contract each (every tenth cancelled), with consecutive commit
// seqs from seq, in batches of 100,000 rows, column by column.
func bulkLoad(ctx context.Context, conn driver.Conn, v *vault.Vault, ten string, seq uint64, n int) error {
	const batchSize = 100_000
	now := time.Now().UTC().Truncate(time.Second)
	start, _ := catalog.ParseDate("2026-01-01")
	startT := start.In(time.UTC)
	for kind := 0; kind < 3; kind++ {
		for from := 0; from < n; from += batchSize {
			to := min(n, from+batchSize)
			m := to - from
			cols := struct {
				tenant, kind, id, changedBy, doc, pii, customer []string
				bi                                              [4][]string
				revision, seq, createdSeq                       []uint64
				createdAt, changedAt                            []time.Time
				deleted                                         []uint8
				startDate, endDate                              []*time.Time
			}{}
			for i := from; i < to; i++ {
				id := fmt.Sprintf("c%07d", i)
				var doc any
				var pii string
				var bi [4]string
				customer := id
				var sd, ed *time.Time
				switch kind {
				case 0:
					p := catalog.Personal{Name: fmt.Sprintf("Customer %d", i), Email: fmt.Sprintf("user%07d@example.jp", i),
						Phone: fmt.Sprintf("+81-90-%08d", i)}
					pt, _ := json.Marshal(p)
					sealed, err := v.Seal(ctx, ten, id, pt)
					if err != nil {
						return err
					}
					pii = string(sealed)
					for j, fv := range [][2]string{{"name", p.Name}, {"address", ""}, {"phone", p.Phone}, {"email", p.Email}} {
						if fv[1] != "" {
							if bi[j], err = v.BlindIndex(ctx, ten, fv[0], catalogstore.Normalize(fv[0], fv[1])); err != nil {
								return err
							}
						}
					}
					status := ""
					if i%50 == 0 {
						status = "suspended"
					}
					doc = catalog.Customer{ID: id, Status: status}
					customer = ""
				case 1:
					doc = catalog.BasicContract{ID: "b" + id[1:], Customer: id, DateRange: catalog.DateRange{Start: start},
						Currency: "JPY", TimeZone: "Asia/Tokyo", Rounding: "half_up"}
					id = "b" + id[1:]
					sd = &startT
				case 2:
					sc := catalog.ServiceContract{ID: "k" + id[1:], Customer: id, Basic: "b" + id[1:], Service: "cloud",
						DateRange: catalog.DateRange{Start: start},
						Plans:     []catalog.PricePlanTerm{{Plan: "cloud-standard", DateRange: catalog.DateRange{Start: start}}}}
					if i%10 == 0 {
						end, _ := catalog.ParseDate("2026-03-31")
						sc.End, sc.Cancelled, sc.Plans[0].End = &end, true, &end
						e := end.In(time.UTC)
						ed = &e
					}
					doc = sc
					id = "k" + id[1:]
					sd = &startT
				}
				js, _ := json.Marshal(doc)
				cols.tenant = append(cols.tenant, ten)
				cols.kind = append(cols.kind, []string{"customer", "basic_contract", "service_contract"}[kind])
				cols.id = append(cols.id, id)
				cols.revision = append(cols.revision, 1)
				cols.seq = append(cols.seq, seq)
				cols.createdSeq = append(cols.createdSeq, seq)
				seq++
				cols.createdAt = append(cols.createdAt, now)
				cols.deleted = append(cols.deleted, 0)
				cols.changedAt = append(cols.changedAt, now)
				cols.changedBy = append(cols.changedBy, "bench")
				cols.doc = append(cols.doc, string(js))
				cols.pii = append(cols.pii, pii)
				for j := range bi {
					cols.bi[j] = append(cols.bi[j], bi[j])
				}
				cols.customer = append(cols.customer, customer)
				cols.startDate = append(cols.startDate, sd)
				cols.endDate = append(cols.endDate, ed)
			}
			batch, err := conn.PrepareBatch(ctx, `INSERT INTO catalog_entities (tenant, kind, id, revision, seq, created_seq, created_at,
				deleted, changed_at, changed_by, doc, pii, bi_name, bi_address, bi_phone, bi_email, customer, start_date, end_date)`)
			if err != nil {
				return err
			}
			for i, col := range []any{cols.tenant, cols.kind, cols.id, cols.revision, cols.seq, cols.createdSeq, cols.createdAt,
				cols.deleted, cols.changedAt, cols.changedBy, cols.doc, cols.pii, cols.bi[0], cols.bi[1], cols.bi[2], cols.bi[3],
				cols.customer, cols.startDate, cols.endDate} {
				if err := batch.Column(i).Append(col); err != nil {
					return fmt.Errorf("column %d: %w", i, err)
				}
			}
			if err := batch.Send(); err != nil {
				return err
			}
			_ = m
		}
	}
	return nil
}
