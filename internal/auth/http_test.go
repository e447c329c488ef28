package auth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/kakin-dev/kakin/tenants"
	"github.com/prometheus/client_golang/prometheus"
)

// authEnv is an Authenticator over the test ClickHouse, served with a token
// route and two protected routes that echo the principal.
type authEnv struct {
	t     *testing.T
	store *Store
	auth  *Authenticator
	srv   *httptest.Server
}

func newAuthEnv(t *testing.T) *authEnv {
	t.Helper()
	store := testStore(t)
	a, err := New(store, testRing(t, testKeyLine(t)), Options{
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Revocations().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /oauth/token", a.TokenHandler())
	mux.Handle("GET /v1/read", a.Require(ScopeUsageRead)(echoPrincipal()))
	mux.Handle("POST /v1/write", a.Require(ScopeUsageWrite)(echoPrincipal()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &authEnv{t: t, store: store, auth: a, srv: srv}
}

func echoPrincipal() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		ten, _ := tenant.From(r.Context())
		if !ok || ten != p.Tenant {
			http.Error(w, "no principal", 500)
			return
		}
		httpapi.WriteJSON(w, 200, p)
	})
}

// client creates a client of a fresh tenant.
func (e *authEnv) client(scopes []Scope, lim tenants.Limits) (ten, id, secret string) {
	e.t.Helper()
	ten = newTenant(e.t, e.store)
	id, secret, err := e.store.CreateClient(context.Background(), ten, "test client", scopes, lim, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	return ten, id, secret
}

type tokenReply struct {
	status int
	header http.Header
	body   map[string]any
}

func (e *authEnv) tokenRequest(form url.Values, basicID, basicSecret string) tokenReply {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	r := tokenReply{status: resp.StatusCode, header: resp.Header}
	if err := json.NewDecoder(resp.Body).Decode(&r.body); err != nil {
		e.t.Fatalf("token response not JSON: %v", err)
	}
	return r
}

func (e *authEnv) token(id, secret string) string {
	e.t.Helper()
	r := e.tokenRequest(url.Values{"grant_type": {"client_credentials"}}, id, secret)
	if r.status != 200 {
		e.t.Fatalf("token: %d %v", r.status, r.body)
	}
	return r.body["access_token"].(string)
}

type apiReply struct {
	status  int
	header  http.Header
	problem httpapi.Problem
	p       Principal
}

func (e *authEnv) call(method, path, authz string) apiReply {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, nil)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	r := apiReply{status: resp.StatusCode, header: resp.Header}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		err = json.Unmarshal(body, &r.p)
	} else {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			e.t.Fatalf("%d with Content-Type %q: %s", resp.StatusCode, ct, body)
		}
		err = json.Unmarshal(body, &r.problem)
	}
	if err != nil {
		e.t.Fatalf("body %s: %v", body, err)
	}
	return r
}

func TestTokenEndpoint(t *testing.T) {
	e := newAuthEnv(t)
	ten, id, secret := e.client([]Scope{ScopeUsageWrite, ScopeUsageRead}, tenants.Limits{IngestEventsPerSecond: 50})
	if _, err := e.store.tenants.SetTenantLimits(context.Background(), ten, tenants.Limits{IngestEventsPerSecond: 999, AdminRequestsPerMinute: 30}, "test"); err != nil {
		t.Fatal(err)
	}
	_, revokedID, revokedSecret := e.client([]Scope{ScopeUsageWrite}, tenants.Limits{})
	if _, err := e.store.RevokeClient(context.Background(), mustClient(t, e.store, revokedID).Tenant, revokedID, "test"); err != nil {
		t.Fatal(err)
	}
	cc := "client_credentials"
	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	cases := []struct {
		name              string
		form              url.Values
		basicID, basicSec string
		status            int
		err               string
		scope             string
	}{
		{"basic", form("grant_type", cc), id, secret, 200, "", "usage:write usage:read"},
		{"form fields", form("grant_type", cc, "client_id", id, "client_secret", secret), "", "", 200, "", "usage:write usage:read"},
		{"narrowed scope", form("grant_type", cc, "scope", "usage:read"), id, secret, 200, "", "usage:read"},
		{"empty scope means all", form("grant_type", cc, "scope", ""), id, secret, 200, "", "usage:write usage:read"},
		{"scope not held", form("grant_type", cc, "scope", "usage:read admin"), id, secret, 400, "invalid_scope", ""},
		{"unknown scope", form("grant_type", cc, "scope", "usage:delete"), id, secret, 400, "invalid_scope", ""},
		{"bad secret", form("grant_type", cc), id, secret + "x", 401, "invalid_client", ""},
		{"bad secret in form", form("grant_type", cc, "client_id", id, "client_secret", "nope"), "", "", 401, "invalid_client", ""},
		{"unknown client", form("grant_type", cc), "kc_aaaaaaaaaaaaaaaaaaaaaaaa", secret, 401, "invalid_client", ""},
		{"malformed client id", form("grant_type", cc), "x' OR 1=1 --", secret, 401, "invalid_client", ""},
		{"revoked client", form("grant_type", cc), revokedID, revokedSecret, 401, "invalid_client", ""},
		{"no credentials", form("grant_type", cc), "", "", 401, "invalid_client", ""},
		{"two auth methods", form("grant_type", cc, "client_id", id, "client_secret", secret), id, secret, 400, "invalid_request", ""},
		{"no grant type", form(), id, secret, 400, "invalid_request", ""},
		{"password grant", form("grant_type", "password"), id, secret, 400, "unsupported_grant_type", ""},
		{"repeated parameter", form("grant_type", cc, "grant_type", cc), id, secret, 400, "invalid_request", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.tokenRequest(tc.form, tc.basicID, tc.basicSec)
			if r.status != tc.status || (tc.err != "" && r.body["error"] != tc.err) {
				t.Fatalf("got %d %v, want %d %s", r.status, r.body, tc.status, tc.err)
			}
			if cc := r.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 without Basic challenge: %q", r.header.Get("WWW-Authenticate"))
			}
			if tc.status != 200 {
				return
			}
			if r.body["token_type"] != "Bearer" || r.body["scope"] != tc.scope || r.body["expires_in"].(float64) < 3590 {
				t.Fatalf("body %v", r.body)
			}
			p, err := e.auth.Tokens().Verify(r.body["access_token"].(string))
			if err != nil {
				t.Fatal(err)
			}
			// Client limits win; the tenant's fill the zero fields.
			want := tenants.Limits{IngestEventsPerSecond: 50, AdminRequestsPerMinute: 30}
			if p.Tenant != ten || p.ClientID != id || p.Limits != want {
				t.Fatalf("principal %+v, want tenant %s limits %+v", p, ten, want)
			}
		})
	}

	// Unknown client and wrong secret answer identically.
	a := e.tokenRequest(form("grant_type", cc), id, "wrong")
	b := e.tokenRequest(form("grant_type", cc), "kc_bbbbbbbbbbbbbbbbbbbbbbbb", "wrong")
	if a.status != b.status || a.body["error"] != b.body["error"] || a.body["error_description"] != b.body["error_description"] {
		t.Fatalf("wrong secret %v vs unknown client %v", a, b)
	}

	// Wrong content type.
	req, _ := http.NewRequest("POST", e.srv.URL+"/oauth/token", strings.NewReader(`{"grant_type":"client_credentials"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("JSON body: %d", resp.StatusCode)
	}
}

func mustClient(t *testing.T, s *Store, id string) Client {
	t.Helper()
	c, err := s.ClientByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestInvalidClientTiming checks an unknown client costs about what a wrong
// secret does, with the production argon2id parameters.
// An unknown client id costs the same argon2id work as a wrong secret: it is
// checked against a dummy hash made with the store's parameters, so the two
// cannot be told apart by timing. (Checked by the hashes' parameters, not by
// wall-clock timings, which a shared machine makes flaky.)
func TestInvalidClientTiming(t *testing.T) {
	e := newAuthEnv(t)
	// Not the defaults: a dummy made with fixed parameters would differ.
	e.store.Hash = HashParams{Memory: 7 * 1024, Time: 3, Threads: 1, SaltLen: 16, KeyLen: 32}
	a, err := New(e.store, testRing(t, testKeyLine(t)), Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ten := newTenant(t, e.store)
	id, _, err := e.store.CreateClient(context.Background(), ten, "c", []Scope{ScopeUsageRead}, tenants.Limits{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.store.ClientByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	// "argon2id$v=19$m=…,t=…,p=…$salt$key": algorithm, version and cost
	// parameters equal, and keys of the same length.
	real, dummy := strings.Split(c.secretHash, "$"), strings.Split(a.dummy, "$")
	if len(real) != 5 || len(dummy) != 5 || strings.Join(real[:3], "$") != strings.Join(dummy[:3], "$") || len(real[4]) != len(dummy[4]) {
		t.Fatalf("dummy hash %q does not cost what the client's %q costs", a.dummy, c.secretHash)
	}
	for _, who := range []string{id, "kc_cccccccccccccccccccccccc"} {
		if _, _, status, err := a.authenticateClient(context.Background(), who, "wrong-secret"); status != 401 || !errors.Is(err, errInvalidClient) {
			t.Fatalf("%s with a wrong secret: %d %v, want 401 invalid_client", who, status, err)
		}
	}
}

func TestRequire(t *testing.T) {
	e := newAuthEnv(t)
	ten, id, secret := e.client([]Scope{ScopeUsageRead}, tenants.Limits{})
	readTok := e.token(id, secret)
	_, adminID, adminSecret := e.client([]Scope{ScopeAdmin}, tenants.Limits{})
	adminTok := e.token(adminID, adminSecret)

	other := NewTokens(testRing(t, testKeyLine(t)), time.Hour, 0)
	foreign, _, _ := other.Issue(Principal{Tenant: ten, ClientID: id, Scopes: []Scope{ScopeAdmin}})
	expiring := NewTokens(e.auth.keys, time.Hour, time.Second)
	expiring.Now = func() time.Time { return clock.Now().Add(-2 * time.Hour) }
	expired, _, _ := expiring.Issue(Principal{Tenant: ten, ClientID: id, Scopes: []Scope{ScopeUsageRead}})

	cases := []struct {
		name, method, path, authz string
		status                    int
		code, challenge           string
	}{
		{"read ok", "GET", "/v1/read", "Bearer " + readTok, 200, "", ""},
		{"scheme case-insensitive", "GET", "/v1/read", "bearer " + readTok, 200, "", ""},
		{"admin holds every scope", "POST", "/v1/write", "Bearer " + adminTok, 200, "", ""},
		{"missing scope", "POST", "/v1/write", "Bearer " + readTok, 403, CodeInsufficientScope, `error="insufficient_scope", scope="usage:write"`},
		{"no header", "GET", "/v1/read", "", 401, CodeUnauthenticated, `Bearer realm="kakin"`},
		{"basic instead of bearer", "GET", "/v1/read", "Basic Zm9vOmJhcg==", 401, CodeUnauthenticated, `Bearer realm="kakin"`},
		{"garbage token", "GET", "/v1/read", "Bearer abc.def.ghi", 401, CodeInvalidToken, `error="invalid_token"`},
		{"unknown key", "GET", "/v1/read", "Bearer " + foreign, 401, CodeInvalidToken, `error="invalid_token"`},
		{"expired", "GET", "/v1/read", "Bearer " + expired, 401, CodeTokenExpired, `error="invalid_token"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call(tc.method, tc.path, tc.authz)
			if r.status != tc.status {
				t.Fatalf("status %d (%+v), want %d", r.status, r.problem, tc.status)
			}
			if tc.status == 200 {
				if r.p.Tenant != ten && r.p.ClientID != adminID {
					t.Fatalf("principal %+v", r.p)
				}
				return
			}
			if r.problem.Code != tc.code || r.problem.Status != tc.status {
				t.Fatalf("problem %+v, want code %s", r.problem, tc.code)
			}
			if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, tc.challenge) {
				t.Fatalf("WWW-Authenticate %q, want it to contain %q", ch, tc.challenge)
			}
			if tc.code == CodeInsufficientScope && !strings.Contains(r.problem.Detail, "usage:write") {
				t.Fatalf("403 detail %q does not name the scope", r.problem.Detail)
			}
		})
	}
}

func TestRevocationFlow(t *testing.T) {
	e := newAuthEnv(t)
	ten, id, secret := e.client([]Scope{ScopeUsageRead}, tenants.Limits{})
	tok := e.token(id, secret)
	if r := e.call("GET", "/v1/read", "Bearer "+tok); r.status != 200 {
		t.Fatalf("before revocation: %d", r.status)
	}
	if _, err := e.store.RevokeClient(context.Background(), ten, id, "test"); err != nil {
		t.Fatal(err)
	}
	// No new token, at once (the token endpoint reads the store).
	if r := e.tokenRequest(url.Values{"grant_type": {"client_credentials"}}, id, secret); r.status != 401 || r.body["error"] != "invalid_client" {
		t.Fatalf("token for a revoked client: %d %v", r.status, r.body)
	}
	// The existing token works until this process's next refresh...
	if r := e.call("GET", "/v1/read", "Bearer "+tok); r.status != 200 {
		t.Fatalf("before refresh: %d", r.status)
	}
	// ...and is refused after it.
	if err := e.auth.Revocations().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := e.call("GET", "/v1/read", "Bearer "+tok)
	if r.status != 401 || r.problem.Code != CodeClientRevoked {
		t.Fatalf("after refresh: %d %+v", r.status, r.problem)
	}
	if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("challenge %q", r.header.Get("WWW-Authenticate"))
	}
}

// fakeLister is a revocation source that can fail.
type fakeLister struct {
	ids []string
	err error
}

func (f *fakeLister) RevokedClientIDs(context.Context) ([]string, error) { return f.ids, f.err }

func TestRevocationsStale(t *testing.T) {
	src := &fakeLister{ids: []string{"kc_a"}}
	r := newRevocations(src, 15*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, loaded := r.Revoked("kc_a"); loaded || !r.Stale() {
		t.Fatal("loaded before the first refresh")
	}
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rev, loaded := r.Revoked("kc_a"); !rev || !loaded {
		t.Fatal("kc_a not revoked")
	}
	now := clock.Now()
	src.ids, src.err = nil, errors.New("clickhouse down")
	r.SetClock(func() time.Time { return now.Add(time.Minute) })
	if err := r.Refresh(context.Background()); err == nil {
		t.Fatal("refresh did not fail")
	}
	if rev, _ := r.Revoked("kc_a"); !rev {
		t.Fatal("failed refresh dropped the last list")
	}
	if !r.Stale() || r.Age() < time.Minute {
		t.Fatalf("stale=%v age=%s after a failed refresh", r.Stale(), r.Age())
	}
}

// TestNotLoadedFailsClosed: before the revocation list is loaded, valid
// tokens get 503, not access.
func TestNotLoadedFailsClosed(t *testing.T) {
	store := NewStore(nil, nil)
	store.Hash = testHash
	a, err := New(store, testRing(t, testKeyLine(t)), Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _ := a.Tokens().Issue(testPrincipal)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	a.Require(ScopeUsageRead)(echoPrincipal()).ServeHTTP(rec, req)
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), CodeAuthUnavailable) || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if a.Ready(context.Background()) == nil {
		t.Fatal("ready before the revocation list loaded")
	}
	if _, err := New(store, testRing(t, testKeyLine(t)), Options{RevocationRefresh: 2 * time.Minute}); err == nil {
		t.Fatal("refresh interval above a minute accepted")
	}
}

func TestDevInsecure(t *testing.T) {
	g := DevInsecure(slog.New(slog.NewTextHandler(io.Discard, nil)))
	h := g.Require(ScopeAdmin)(echoPrincipal())
	for _, tc := range []struct {
		tenant string
		status int
	}{{"acme", 200}, {"", 401}, {"Bad Tenant", 401}} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		if tc.tenant != "" {
			req.Header.Set(tenant.Header, tc.tenant)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Fatalf("tenant %q: %d %s", tc.tenant, rec.Code, rec.Body)
		}
		if tc.status == 200 {
			var p Principal
			json.Unmarshal(rec.Body.Bytes(), &p)
			if p.Tenant != tc.tenant || !slices.Equal(p.Scopes, AllScopes) || p.Limits != (tenants.Limits{}) {
				t.Fatalf("principal %+v", p)
			}
		} else if rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("401 content type %q", rec.Header().Get("Content-Type"))
		}
	}
}

// BenchmarkRequire is the whole middleware on a token seen before: header
// parsing, verification, revocation and scope checks, context.
func BenchmarkRequire(b *testing.B) {
	store := NewStore(nil, nil)
	store.Hash = testHash
	a, err := New(store, testRing(b, testKeyLine(b)), Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	a.revoked.store = &fakeLister{}
	if err := a.revoked.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	tok, _, _ := a.Tokens().Issue(testPrincipal)
	h := a.Require(ScopeUsageWrite)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest("POST", "/v1/usage", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

func TestRemoteAddress(t *testing.T) {
	tests := []struct {
		remote string
		want   string
	}{
		{"192.0.2.7:51234", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:51234", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa::1]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::9]:443", "2001:db8:1:2::/64"}, // the same /64: one budget
		{"[2001:db8:1:3::1]:443", "2001:db8:1:3::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"not-an-address", "not-an-address"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", nil)
		r.RemoteAddr = tt.remote
		r.Header.Set("X-Forwarded-For", "203.0.113.1")
		r.Header.Set("Forwarded", "for=203.0.113.1")
		if got := RemoteAddress(r); got != tt.want {
			t.Errorf("RemoteAddress(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}
