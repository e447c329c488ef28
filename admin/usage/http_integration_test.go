package usage

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/segmentio/kafka-go"
)

// readAPI mounts the package's read routes as the server does (minor
// version first), each request acting for tenant acme.
func readAPI(conn driver.Conn) http.Handler { return readAPIFor(conn, "acme") }

// readAPIFor is readAPI with every request acting for tenant ten.
func readAPIFor(conn driver.Conn, ten string) http.Handler {
	pages := page.NewCodec([]byte("k"), 100)
	records, unrated, dups := NewRecords(usagedb.NewRecords(conn), pages), NewUnrated(usagedb.NewUnrated(conn), pages), NewDuplicates(usagedb.NewDuplicates(conn), pages)
	mux := http.NewServeMux()
	mux.Handle("GET /v1/charges", NewCharges(usagedb.NewCharges(conn)))
	mux.Handle("GET /v1/service-contracts/{id}/charges", NewContractCharges(usagedb.NewContractCharges(conn), testCatalogue, fixedNow))
	mux.HandleFunc("GET /v1/usage", records.ServeSearch)
	mux.HandleFunc("GET /v1/usage/count", records.ServeCount)
	mux.HandleFunc("GET /v1/usage/{usageId}", records.ServeGet)
	mux.HandleFunc("GET /v1/usage/unrated", unrated.ServeSearch)
	mux.HandleFunc("GET /v1/usage/unrated/count", unrated.ServeCount)
	mux.HandleFunc("GET /v1/usage/duplicates", dups.ServeSearch)
	mux.HandleFunc("GET /v1/usage/duplicates/count", dups.ServeCount)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpapi.WithVersion(mux).ServeHTTP(w, r.WithContext(tenant.With(r.Context(), ten)))
	})
}

// get sends GET target (with the Kakin-Version header when version is set)
// and returns the status and the raw body.
func get(t *testing.T, h http.Handler, version, target string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	if version != "" {
		req.Header.Set(httpapi.VersionHeader, version)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// TestReadRoutesRefuseUnknownQueryParameters: a parameter a route does not
// understand is answered 400 invalid_query naming it and the route's
// parameters — never ignored (GET /v1/charges?contract=X once answered the
// whole customer's total; contract is now a real filter) — and every
// parameter a route documents is accepted.
func TestReadRoutesRefuseUnknownQueryParameters(t *testing.T) {
	h := readAPI(newDB(t))
	records := []string{"customer", "element", "from", "to", "id", "contract", "event_from", "event_to", "status"}
	unrated := []string{"customer", "element", "from", "to", "reason"}
	dups := []string{"customer", "element", "from", "to", "payload_differs"}
	paged := func(filters []string) []string {
		return append(append([]string(nil), filters...), "pageSize", "nextPage")
	}
	const span = "from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z"
	tests := []struct {
		route   string
		unknown string   // a query naming a parameter the route does not take
		field   string   // the parameter the answer must name
		takes   []string // the route's parameters, as the answer must list them
		known   string   // every parameter the route takes (but nextPage), valid
		status  int      // the answer to known
	}{
		{"/v1/charges", "customer=c1&period=2026-03&contrat=k-1", "contrat", []string{"customer", "period", "contract"},
			"customer=c1&period=2026-03&contract=k-1", 200},
		{"/v1/service-contracts/sc-1/charges", "period=2026-03", "period", []string{"month"}, "month=202603", 200},
		{"/v1/usage", "custmer=c1", "custmer", paged(records),
			"customer=c1&element=api_calls&" + span + "&id=e1&contract=k-1&event_from=2026-03-01T00:00:00Z&event_to=2026-04-01T00:00:00Z&status=rated&pageSize=5", 200},
		{"/v1/usage/count", "pageSize=5", "pageSize", records,
			"customer=c1&element=api_calls&" + span + "&id=e1&contract=k-1&event_from=2026-03-01T00:00:00Z&event_to=2026-04-01T00:00:00Z&status=rated", 200},
		{"/v1/usage/e1", "as_of=2026-03-01T00:00:00Z", "as_of", nil, "", 404},
		{"/v1/usage/unrated", "status=rated", "status", paged(unrated),
			"customer=c1&element=api_calls&" + span + "&reason=unknown_element&pageSize=5", 200},
		{"/v1/usage/unrated/count", "nextPage=x", "nextPage", unrated,
			"customer=c1&element=api_calls&" + span + "&reason=unknown_element", 200},
		{"/v1/usage/duplicates", "contract=k-1", "contract", paged(dups),
			"customer=c1&element=api_calls&" + span + "&payload_differs=true&pageSize=5", 200},
		{"/v1/usage/duplicates/count", "reason=x&customer=c1", "reason", dups,
			"customer=c1&element=api_calls&" + span + "&payload_differs=false", 200},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.route, "/v1/"), func(t *testing.T) {
			status, body := get(t, h, "", tt.route+"?"+tt.unknown)
			var p httpapi.Problem
			if err := json.Unmarshal(body, &p); err != nil || status != 400 || p.Code != "invalid_query" || len(p.Errors) != 1 {
				t.Fatalf("?%s: %d %s, want 400 invalid_query naming %s", tt.unknown, status, body, tt.field)
			}
			want := "unknown query parameter; this route takes none"
			if len(tt.takes) > 0 {
				want = "unknown query parameter; this route takes " + strings.Join(tt.takes, ", ")
			}
			if p.Errors[0].Field != tt.field || p.Errors[0].Reason != want {
				t.Errorf("?%s: error %+v, want %s: %q", tt.unknown, p.Errors[0], tt.field, want)
			}
			if status, body := get(t, h, "", tt.route+"?"+tt.known); status != tt.status {
				t.Errorf("?%s: %d %s, want %d", tt.known, status, body, tt.status)
			}
		})
	}
}

// TestListsAnswerItemsFromV20270101: every list of the package answers its
// array as items from API version 2027-01-01 on, and under its own name
// (records) before, with nextPage alike in both.
func TestListsAnswerItemsFromV20270101(t *testing.T) {
	conn := newDB(t)
	// Two of each, so that a page of one is followed by another.
	var batch []kafka.Message
	for i, id := range []string{"e1", "e2"} {
		ev := record("acme", id, "c1", "api_calls", "", i)
		u := unrated("acme", id, schemas.ReasonUnknownElement)
		u.Event = ev
		batch = append(batch, acceptedMsg(t, 0, int64(2*i), ev), unratedMsg(t, 0, int64(2*i+1), u),
			dupMsg(t, 1, int64(9+i), duplicate("acme", id, 1, int64(9+i), 0, int64(2*i), false)))
	}
	if err := newStage(conn).HandleBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	h := readAPI(conn)
	for _, tt := range []struct {
		route  string
		legacy string // the array's name before 2027-01-01
		items  int    // on the first page of one
	}{
		{"/v1/usage", "records", 1},
		{"/v1/usage/unrated", "records", 1},
		{"/v1/usage/duplicates", "records", 1},
	} {
		for _, v := range []struct{ header, array string }{
			{"", tt.legacy}, {httpapi.V20261101, tt.legacy}, {httpapi.V20261201, tt.legacy}, {httpapi.V20270101, "items"},
		} {
			status, body := get(t, h, v.header, tt.route+"?pageSize=1")
			var got map[string]json.RawMessage
			if err := json.Unmarshal(body, &got); err != nil || status != 200 {
				t.Fatalf("%s version %q: %d %s", tt.route, v.header, status, body)
			}
			var items []map[string]any
			if err := json.Unmarshal(got[v.array], &items); err != nil || len(items) != tt.items || items[0]["id"] == nil {
				t.Errorf("%s version %q: %s has %d items (%v), want %d: %s", tt.route, v.header, v.array, len(items), err, tt.items, body)
			}
			if len(got) != 2 || got["nextPage"] == nil {
				t.Errorf("%s version %q: fields %s, want %s and nextPage", tt.route, v.header, body, v.array)
			}
		}
	}
}

// TestReadRoutesAreTenantScoped: every read route of the package, asked by
// tenant beta about tenant acme's records (same ids, customer and element),
// finds nothing — 404 for a record by id, empty lists, zero counts, no
// charges — while acme itself sees them (so the data is there).
func TestReadRoutesAreTenantScoped(t *testing.T) {
	conn := newDB(t)
	ev := record("acme", "e1", "c1", "api_calls", "", 0)
	u := unrated("acme", "e2", schemas.ReasonUnknownElement)
	u.Event = record("acme", "e2", "c1", "api_calls", "", 1)
	l := line("acme", "c1", "2026-03", "e1", "api_calls", "1", "0.01", "JPY")
	batch := []kafka.Message{acceptedMsg(t, 0, 0, ev), acceptedMsg(t, 0, 1, u.Event), unratedMsg(t, 0, 2, u),
		dupMsg(t, 1, 9, duplicate("acme", "e1", 1, 9, 0, 0, false)), ratedMsg(t, 0, 3, l)}
	if err := newStage(conn).HandleBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	const v = httpapi.V20270101 // one list shape: {items, nextPage}
	tests := []struct {
		name, target string
		kind         string // "list", "count", "get", "charges"
	}{
		{"usage search", "/v1/usage", "list"},
		{"usage search by id", "/v1/usage?id=e1", "list"},
		{"usage search by customer", "/v1/usage?customer=c1", "list"},
		{"usage count", "/v1/usage/count", "count"},
		{"usage by id", "/v1/usage/e1", "get"},
		{"unrated search", "/v1/usage/unrated", "list"},
		{"unrated count", "/v1/usage/unrated/count", "count"},
		{"duplicates search", "/v1/usage/duplicates", "list"},
		{"duplicates count", "/v1/usage/duplicates/count", "count"},
		{"charges", "/v1/charges?customer=c1&period=2026-03", "charges"},
	}
	for _, tt := range tests {
		for _, ten := range []string{"acme", "beta"} {
			own := ten == "acme"
			status, body := get(t, readAPIFor(conn, ten), v, tt.target)
			var got struct {
				Items  []json.RawMessage `json:"items"`
				Count  *uint64           `json:"count"`
				Totals []json.RawMessage `json:"totals"`
			}
			_ = json.Unmarshal(body, &got)
			var ok bool
			switch tt.kind {
			case "list":
				ok = status == 200 && (len(got.Items) > 0) == own
			case "count":
				ok = status == 200 && got.Count != nil && (*got.Count > 0) == own
			case "get":
				ok = (own && status == 200) || (!own && status == 404)
			case "charges":
				ok = status == 200 && (len(got.Totals) > 0) == own
			}
			if !ok || (!own && strings.Contains(string(body), `"c1"`) && tt.kind != "charges") {
				t.Errorf("%s as %s: %d %s", tt.name, ten, status, body)
			}
		}
	}
}

// closedOf is a tenant's closed periods.
type closedOf map[string]map[string]bool

func (c closedOf) Closed(_ context.Context, tenant string) (map[string]bool, error) {
	return c[tenant], nil
}

// GET /v1/charges marks a closed period's figures (period_closed): they are
// the stream's, which late usage still moves, while the period's
// receivables are final. The marker is the asking tenant's own.
func TestChargesMarkAClosedPeriod(t *testing.T) {
	conn := newDB(t)
	ev := record("acme", "e1", "c1", "api_calls", "", 0)
	l := line("acme", "c1", "2026-03", "e1", "api_calls", "1", "100", "JPY")
	if err := newStage(conn).HandleBatch(context.Background(), []kafka.Message{acceptedMsg(t, 0, 0, ev), ratedMsg(t, 0, 1, l)}); err != nil {
		t.Fatal(err)
	}
	h := NewCharges(usagedb.NewCharges(conn)).WithPeriods(closedOf{"acme": {"2026-03": true}, "beta": {"2026-04": true}})
	tests := []struct {
		tenant, period string
		closed         bool
	}{
		{"acme", "2026-03", true},
		{"acme", "2026-04", false},
		{"beta", "2026-03", false},
		{"beta", "2026-04", true},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/v1/charges?customer=c1&period="+tt.period, nil)
		r = r.WithContext(tenant.With(r.Context(), tt.tenant))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var got struct {
			Total        string `json:"total"`
			PeriodClosed bool   `json:"period_closed"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 || got.PeriodClosed != tt.closed {
			t.Errorf("%s %s: %d %s, want period_closed %v", tt.tenant, tt.period, w.Code, w.Body, tt.closed)
		}
		if tt.tenant == "acme" && tt.period == "2026-03" && got.Total != "100" {
			t.Errorf("acme 2026-03 total %q, want 100 (the stream's figure stays readable)", got.Total)
		}
	}
}
