package clients

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/tenants"
)

// clientRoutes mounts the client routes as the server does (minor version
// first) for a new tenant with two clients; it returns the tenant's store
// and the id of its first client.
func clientRoutes(t *testing.T) (http.Handler, *auth.Store, string, string) {
	t.Helper()
	if conn == nil {
		t.Skip("needs ClickHouse (not in -short mode)")
	}
	registry := tenants.NewStore(conn)
	store := auth.NewStore(conn, registry)
	store.Hash = auth.HashParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32} // cheap in tests
	ten := fmt.Sprintf("t-%d", time.Now().UnixNano())
	if _, err := registry.CreateTenant(t.Context(), ten, "test", "test"); err != nil {
		t.Fatal(err)
	}
	var first string
	for i := range 2 {
		id, _, err := store.CreateClient(t.Context(), ten, fmt.Sprintf("client %d", i), []auth.Scope{auth.ScopeUsageRead}, tenants.Limits{}, "test")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = id
		}
	}
	c := New(store, page.NewCodec([]byte("k"), 100))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/clients", c.List)
	mux.HandleFunc("GET /v1/clients/count", c.Count)
	mux.HandleFunc("GET /v1/clients/{clientId}", c.Get)
	mux.HandleFunc("POST /v1/clients", c.Create)
	mux.HandleFunc("POST /v1/clients/{clientId}/revoke", c.Revoke)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpapi.WithVersion(mux).ServeHTTP(w, r.WithContext(tenant.With(r.Context(), ten)))
	})
	return h, store, ten, first
}

func call(h http.Handler, method, version, target, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if version != "" {
		req.Header.Set(httpapi.VersionHeader, version)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestClientRoutesRefuseUnknownQueryParameters: a parameter a client route
// does not understand is answered 400 invalid_query naming it and the
// route's parameters, and nothing is created or revoked; the ones it takes
// pass.
func TestClientRoutesRefuseUnknownQueryParameters(t *testing.T) {
	h, store, ten, id := clientRoutes(t)
	const create = `{"name":"new","scopes":["usage:read"]}`
	tests := []struct {
		method, route, body string
		unknown, field      string
		takes               string // as the answer lists them
		known               string
		status              int
	}{
		{"GET", "/v1/clients", "", "revoked=false", "revoked", "pageSize, nextPage", "pageSize=1", 200},
		{"GET", "/v1/clients/count", "", "revoked=false", "revoked", "none", "", 200},
		{"GET", "/v1/clients/" + id, "", "secret=1", "secret", "none", "", 200},
		{"POST", "/v1/clients", create, "scopes=admin", "scopes", "none", "", 201},
		{"POST", "/v1/clients/" + id + "/revoke", "", "reason=x", "reason", "none", "", 200},
	}
	for _, tt := range tests {
		before, err := store.CountClients(t.Context(), ten)
		if err != nil {
			t.Fatal(err)
		}
		rec := call(h, tt.method, "", tt.route+"?"+tt.unknown, tt.body)
		var p httpapi.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != 400 || p.Code != "invalid_query" || len(p.Errors) != 1 ||
			p.Errors[0].Field != tt.field || p.Errors[0].Reason != "unknown query parameter; this route takes "+tt.takes {
			t.Errorf("%s %s?%s: %d %s, want 400 naming %s and listing %s", tt.method, tt.route, tt.unknown, rec.Code, rec.Body, tt.field, tt.takes)
		}
		if tt.method == "POST" {
			// The refused request changed nothing.
			n, err := store.CountClients(t.Context(), ten)
			c, gerr := store.GetClient(t.Context(), ten, id)
			if err != nil || gerr != nil || n != before || c.Revoked {
				t.Errorf("%s %s?%s: %d clients, revoked %v (%v %v)", tt.method, tt.route, tt.unknown, n, c.Revoked, err, gerr)
			}
		}
		if rec := call(h, tt.method, "", tt.route+"?"+tt.known, tt.body); rec.Code != tt.status {
			t.Errorf("%s %s?%s: %d %s, want %d", tt.method, tt.route, tt.known, rec.Code, rec.Body, tt.status)
		}
	}
}

// TestClientListAnswersItemsFromV20270101: GET /v1/clients names its array
// clients before API version 2027-01-01 and items from it on.
func TestClientListAnswersItemsFromV20270101(t *testing.T) {
	h, _, _, _ := clientRoutes(t)
	for _, tt := range []struct{ version, array string }{
		{"", "clients"}, {httpapi.V20261101, "clients"}, {httpapi.V20261201, "clients"}, {httpapi.V20270101, "items"},
	} {
		rec := call(h, "GET", tt.version, "/v1/clients?pageSize=1", "")
		var body map[string]json.RawMessage
		var items []ClientView
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 200 {
			t.Fatalf("version %q: %d %s", tt.version, rec.Code, rec.Body)
		}
		if err := json.Unmarshal(body[tt.array], &items); err != nil || len(items) != 1 || items[0].ID == "" ||
			len(body) != 2 || body["nextPage"] == nil {
			t.Errorf("version %q: %s, want %s with one client and nextPage", tt.version, strings.TrimSpace(rec.Body.String()), tt.array)
		}
	}
}

// TestClientRoutesWithoutTenantFailClosed: a request that reaches a client
// route without a tenant (a mounting mistake) is refused 401 and never reads
// or changes any tenant's client. Before, GET /v1/clients/{id} read the
// empty tenant as "any tenant" and answered another tenant's client.
func TestClientRoutesWithoutTenantFailClosed(t *testing.T) {
	_, store, _, id := clientRoutes(t)
	c := New(store, page.NewCodec([]byte("k"), 100))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/clients", c.List)
	mux.HandleFunc("GET /v1/clients/count", c.Count)
	mux.HandleFunc("GET /v1/clients/{clientId}", c.Get)
	mux.HandleFunc("POST /v1/clients", c.Create)
	mux.HandleFunc("POST /v1/clients/{clientId}/revoke", c.Revoke)
	h := httpapi.WithVersion(mux) // no tenant in the context
	tests := []struct{ method, target, body string }{
		{"GET", "/v1/clients", ""},
		{"GET", "/v1/clients/count", ""},
		{"GET", "/v1/clients/" + id, ""},
		{"POST", "/v1/clients", `{"name":"x","scopes":["usage:read"]}`},
		{"POST", "/v1/clients/" + id + "/revoke", ""},
	}
	for _, tt := range tests {
		rec := call(h, tt.method, "", tt.target, tt.body)
		if rec.Code != http.StatusUnauthorized || strings.Contains(rec.Body.String(), id) {
			t.Errorf("%s %s without tenant: %d %s, want 401 naming no client", tt.method, tt.target, rec.Code, rec.Body)
		}
	}
	if cl, err := store.ClientByID(t.Context(), id); err != nil || cl.Revoked {
		t.Fatalf("client after the refused revoke: %+v, %v", cl, err)
	}
}
