package apitest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeTB records what the validator reports instead of failing the test.
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	logs   []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) reset() ([]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, l := f.errors, f.logs
	f.errors, f.logs = nil, nil
	return e, l
}

const validCharges = `{"customer":"cust-001","period":"2026-11","currency":"JPY","total":"1200",` +
	`"totals":[{"currency":"JPY","amount":"1200"}],` +
	`"lines":[{"element":"api_calls","quantity":"1200","amount":"1200","currency":"JPY","events":3}]}`

// testServer answers like Kakin would, or breaks the contract in the way the
// request's X-Test-Mode header asks.
func testServer(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/charges", func(w http.ResponseWriter, r *http.Request) {
		mode := r.Header.Get("X-Test-Mode")
		if mode != "no-request-id" {
			w.Header().Set("Request-Id", "req-1")
		}
		if mode != "no-version" {
			w.Header().Set("Kakin-Version", "2026-11-01")
		}
		w.Header().Set("RateLimit-Limit", "100")
		w.Header().Set("RateLimit-Remaining", "99")
		w.Header().Set("RateLimit-Reset", "1")
		switch mode {
		case "", "no-request-id", "no-version":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, validCharges)
		case "number-total": // money as a JSON number instead of a decimal string
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, strings.Replace(validCharges, `"total":"1200"`, `"total":1200`, 1))
		case "missing-lines":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"customer":"c","period":"2026-11","totals":[]}`)
		case "problem":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(400)
			io.WriteString(w, `{"type":"about:blank","title":"Bad Request","status":400,"code":"invalid_query",`+
				`"errors":[{"field":"period","reason":"required, as YYYY-MM"}]}`)
		case "problem-as-json": // an error with the wrong media type and no code
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"missing token"}`)
		case "429-no-retry-after":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(429)
			io.WriteString(w, `{"type":"about:blank","title":"Too Many Requests","status":429,"code":"rate_limited"}`)
		case "429":
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(429)
			io.WriteString(w, `{"type":"about:blank","title":"Too Many Requests","status":429,"code":"rate_limited"}`)
		case "teapot":
			w.WriteHeader(http.StatusTeapot)
		}
	})
	mux.HandleFunc("POST /v1/usage", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Request-Id", "req-2")
		w.Header().Set("Kakin-Version", "2026-12-01")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(202)
		io.WriteString(w, `{"accepted":1,"rejected":1,"results":[{"index":1,"id":"e-2","status":"rejected",`+
			`"errors":[{"field":"quantity","reason":"must not be negative"}]}]}`)
	})
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") == "" {
			t.Errorf("test server: token request not form-encoded as expected: %v %v", err, r.PostForm)
		}
		w.Header().Set("Request-Id", "req-3")
		if r.Header.Get("X-Test-Mode") != "cacheable" {
			w.Header().Set("Cache-Control", "no-store")
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"abc","token_type":"Bearer","expires_in":3600,"scope":"usage:write"}`)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Request-Id", "req-4")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestValidatorCatchesMismatches(t *testing.T) {
	srv := testServer(t)
	ftb := &fakeTB{TB: t}
	v := NewValidator(ftb)
	client := &http.Client{Transport: v.Transport(nil)}

	ndjson := `{"id":"e-1","customer":"c-1","element":"api_calls","quantity":1,"time":"2026-11-23T10:00:00+09:00"}` + "\n\n" +
		`{"id":"e-2","customer":"c-1","element":"api_calls","quantity":"2.5","time":"2026-11-23T10:00:00Z","attributes":{"region":"jp"}}` + "\n"
	badNDJSON := `{"id":"e-1","customer":"c-1","element":"api_calls","quantity":1,"time":"2026-11-23T10:00:00+09:00"}` + "\n" +
		`{"id":"e-2","customer":"c-1","element":"api_calls","quantity":-1,"time":"2026-11-23T10:00:00Z"}` + "\n"

	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		mode        string
		expectBad   bool   // mark the request with ExpectInvalidRequest
		wantError   string // substring of the reported error; "" for none
	}{
		{name: "valid charges", method: "GET", path: "/v1/charges?customer=cust-001&period=2026-11"},
		{name: "money as number", method: "GET", path: "/v1/charges?customer=c&period=2026-11", mode: "number-total",
			wantError: "response does not match the document"},
		{name: "required field missing", method: "GET", path: "/v1/charges?customer=c&period=2026-11", mode: "missing-lines",
			wantError: `"lines"`},
		{name: "no Request-Id", method: "GET", path: "/v1/charges?customer=c&period=2026-11", mode: "no-request-id",
			wantError: "Request-Id"},
		{name: "no Kakin-Version", method: "GET", path: "/v1/charges?customer=c&period=2026-11", mode: "no-version",
			wantError: "Kakin-Version"},
		{name: "undocumented status", method: "GET", path: "/v1/charges?customer=c&period=2026-11", mode: "teapot",
			wantError: "418"},
		{name: "error not problem+json", method: "GET", path: "/v1/charges?customer=c&period=2026-11", mode: "problem-as-json",
			wantError: "application/json"},
		{name: "429 without Retry-After", method: "GET", path: "/v1/charges?customer=c&period=2026-11", mode: "429-no-retry-after",
			wantError: "Retry-After"},
		{name: "valid 429", method: "GET", path: "/v1/charges?customer=c&period=2026-11", mode: "429"},
		{name: "invalid request refused", method: "GET", path: "/v1/charges?customer=c&period=2026-13", mode: "problem"},
		{name: "invalid request accepted", method: "GET", path: "/v1/charges?customer=c&period=2026-13",
			wantError: "yet the server did not refuse it"},
		{name: "invalid request accepted, expected", method: "GET", path: "/v1/charges?period=2026-13", expectBad: true},
		{name: "unknown version accepted", method: "GET", path: "/v1/charges?customer=c&period=2026-11&v=1",
			wantError: "Kakin-Version"},
		{name: "unknown route", method: "GET", path: "/v1/nope", wantError: "no operation in the document"},
		{name: "wrong method", method: "DELETE", path: "/v1/charges", wantError: "no operation in the document"},
		{name: "ndjson usage", method: "POST", path: "/v1/usage", contentType: "application/x-ndjson", body: ndjson},
		{name: "ndjson usage with a bad record", method: "POST", path: "/v1/usage", contentType: "application/x-ndjson",
			body: badNDJSON, wantError: "yet the server did not refuse it"},
		{name: "ndjson usage with a bad record, expected", method: "POST", path: "/v1/usage",
			contentType: "application/x-ndjson", body: badNDJSON, expectBad: true},
		{name: "json usage with an unknown field", method: "POST", path: "/v1/usage", contentType: "application/json",
			body:      `{"id":"e","customer":"c","element":"x","quantity":1,"time":"2026-11-23T10:00:00Z","tenant":"t"}`,
			wantError: "yet the server did not refuse it"},
		{name: "json usage array", method: "POST", path: "/v1/usage", contentType: "application/json",
			body: `[{"id":"e","customer":"c","element":"x","quantity":"1","time":"2026-11-23T10:00:00Z","contract":"k"}]`},
		{name: "token", method: "POST", path: "/oauth/token", contentType: "application/x-www-form-urlencoded",
			body: "grant_type=client_credentials&client_id=kc_x&client_secret=s&scope=usage%3Awrite"},
		{name: "token without Cache-Control", method: "POST", path: "/oauth/token", mode: "cacheable",
			contentType: "application/x-www-form-urlencoded", body: "grant_type=client_credentials",
			wantError: "Cache-Control"},
		{name: "token with another grant", method: "POST", path: "/oauth/token",
			contentType: "application/x-www-form-urlencoded", body: "grant_type=password", mode: "",
			wantError: "yet the server did not refuse it"},
		{name: "healthz", method: "GET", path: "/healthz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.mode != "" {
				req.Header.Set("X-Test-Mode", tt.mode)
			}
			if strings.Contains(tt.path, "&v=1") {
				req.Header.Set("Kakin-Version", "2099-01-01")
			}
			req.Header.Set("Authorization", "Bearer whatever")
			if tt.expectBad {
				req = ExpectInvalidRequest(req)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tt.mode == "" && tt.path == "/v1/charges?customer=cust-001&period=2026-11" && string(got) != validCharges {
				t.Errorf("the transport changed the response body: %s", got)
			}
			errs, logs := ftb.reset()
			switch {
			case tt.wantError == "" && len(errs) > 0:
				t.Errorf("unexpected validation errors:\n%s", strings.Join(errs, "\n"))
			case tt.wantError != "" && len(errs) == 0:
				t.Errorf("mismatch not caught (want an error containing %q); logs:\n%s", tt.wantError, strings.Join(logs, "\n"))
			case tt.wantError != "" && !strings.Contains(strings.Join(errs, "\n"), tt.wantError):
				t.Errorf("error does not mention %q:\n%s", tt.wantError, strings.Join(errs, "\n"))
			}
			for _, e := range errs {
				// Every report names the method, path and status.
				if !strings.Contains(e, tt.method+" "+strings.SplitN(tt.path, "&v=", 2)[0]) || !strings.Contains(e, fmt.Sprintf("→ %d", resp.StatusCode)) {
					t.Errorf("report lacks method, path or status: %s", e)
				}
			}
		})
	}
	if seen := v.Seen(); seen["getCharges"][200] == 0 || seen["ingestUsage"][202] == 0 {
		t.Errorf("Seen = %v", seen)
	}
}

func TestHandlerWrapper(t *testing.T) {
	ftb := &fakeTB{TB: t}
	v := NewValidator(ftb)
	h := v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"broken"}`) // no Request-Id either
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 200 || rec.Body.String() != `{"status":"broken"}` {
		t.Errorf("wrapper changed the answer: %d %q", rec.Code, rec.Body.String())
	}
	errs, _ := ftb.reset()
	if len(errs) != 1 || !strings.Contains(errs[0], "GET /healthz → 200") {
		t.Errorf("errors = %q", errs)
	}
}

func TestRoutes(t *testing.T) {
	v := NewValidator(t)
	routes := v.Routes()
	got := map[string]Route{}
	for _, r := range routes {
		got[r.Method+" "+r.Path] = r
		if r.OperationID == "" {
			t.Errorf("%s %s has no operationId", r.Method, r.Path)
		}
	}
	// A sample of routes with how they are secured (the full list of routes
	// and scopes is checked against the document in schemas/openapi).
	want := map[string]string{ // route -> scope ("" public)
		"POST /oauth/token":                   "",
		"GET /healthz":                        "",
		"POST /v1/usage":                      "usage:write",
		"POST /v1/usage/{usageId}/invalidate": "usage:write",
		"GET /v1/charges":                     "billing:read",
		"POST /v1/clients/{clientId}/revoke":  "admin",
		"GET /v1/stats/customers":             "customers:read",
		"POST /v1/rerate":                     "usage:write",
	}
	if len(got) <= len(want) {
		t.Errorf("%d routes: the document's routes were not all read", len(got))
	}
	for key, scope := range want {
		r, ok := got[key]
		switch {
		case !ok:
			t.Errorf("route %s missing", key)
		case scope == "" && (!r.Public || r.Scopes != nil):
			t.Errorf("%s: public %v scopes %v, want public", key, r.Public, r.Scopes)
		case scope != "" && (r.Public || !slices.Equal(r.Scopes, []string{scope})):
			t.Errorf("%s: public %v scopes %v, want %s", key, r.Public, r.Scopes, scope)
		}
	}
	rev := got["POST /v1/clients/{clientId}/revoke"]
	if p := rev.Expand(map[string]string{"clientId": "kc_1"}); p != "/v1/clients/kc_1/revoke" || !slices.Equal(rev.PathParams, []string{"clientId"}) {
		t.Errorf("Expand = %q, params %v", p, rev.PathParams)
	}
	inv := got["POST /v1/usage/{usageId}/invalidate"]
	if p := inv.Expand(map[string]string{"usageId": "e-1"}); p != "/v1/usage/e-1/invalidate" || !slices.Equal(inv.PathParams, []string{"usageId"}) {
		t.Errorf("Expand = %q, params %v", p, inv.PathParams)
	}
	if !got["POST /v1/usage"].HasBody || got["GET /v1/charges"].HasBody {
		t.Error("HasBody wrong")
	}
	if len(v.Unvisited()) != len(routes) {
		t.Error("Unvisited should list every route before any traffic")
	}
}

func TestNDJSONBodyDecoder(t *testing.T) {
	v, err := NDJSONBodyDecoder(strings.NewReader("{\"a\":1}\n\n  {\"b\":2}  \n"), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if arr, ok := v.([]any); !ok || len(arr) != 2 {
		t.Errorf("decoded %#v", v)
	}
	if _, err := NDJSONBodyDecoder(strings.NewReader("{\"a\":1}\nnot json\n"), nil, nil, nil); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("err = %v", err)
	}
}
