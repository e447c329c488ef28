package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/apitest"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/tenants"
)

// api is a client of one running kakin process whose every request and
// response is validated against the OpenAPI document.
type api struct {
	t    *testing.T
	base string
	http *http.Client
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r reply) problemCode() string {
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(r.body, &p)
	return p.Code
}

// do sends a request with an optional bearer token and extra headers.
func (a *api) do(method, path, token string, body []byte, headers ...string) reply {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

// token obtains an access token with the client-credentials grant.
func (a *api) token(id, secret string) string {
	a.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest(http.MethodPost, a.base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 || tok.AccessToken == "" {
		a.t.Fatalf("token for %s: status %d, %v", id, resp.StatusCode, err)
	}
	return tok.AccessToken
}

type testClient struct{ id, secret, token string }

// TestAPIPlatform runs one all-roles process with token authentication and
// checks the rules every route shares, with every request and answer
// validated against the OpenAPI document.
func TestAPIPlatform(t *testing.T) {
	e := newEnv(t, e2ePrices)
	e.secure = true
	e.extraEnv = []string{"KAKIN_REVOCATION_REFRESH=1s", "KAKIN_MAX_RECORDS=50", "KAKIN_MAX_BODY_BYTES=65536"}
	ctx := context.Background()
	registry := tenants.NewStore(e.ch)
	store := auth.NewStore(e.ch, registry)
	store.Hash = auth.HashParams{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	for _, ten := range []string{"acme", "other"} {
		if _, err := registry.CreateTenant(ctx, ten, ten, "e2e"); err != nil {
			t.Fatal(err)
		}
	}
	newClient := func(ten string, limits tenants.Limits, scopes ...auth.Scope) testClient {
		id, secret, err := store.CreateClient(ctx, ten, "e2e "+ten, scopes, limits, "e2e")
		if err != nil {
			t.Fatal(err)
		}
		return testClient{id: id, secret: secret}
	}
	acmeAdmin := newClient("acme", tenants.Limits{}, auth.AllScopes...)
	acmeWriter := newClient("acme", tenants.Limits{}, auth.ScopeUsageWrite)
	acmeSlow := newClient("acme", tenants.Limits{AdminRequestsPerMinute: 3, IngestEventsPerSecond: 1}, auth.AllScopes...)
	otherAdmin := newClient("other", tenants.Limits{}, auth.AllScopes...)

	p := e.start("all", "all")
	v := apitest.NewValidator(t)
	a := &api{t: t, base: p.url, http: v.Client()}
	for _, c := range []*testClient{&acmeAdmin, &acmeWriter, &acmeSlow, &otherAdmin} {
		c.token = a.token(c.id, c.secret)
	}

	t.Run("no token, bad token, missing scope", func(t *testing.T) {
		if r := a.do("GET", "/v1/charges?customer=c1&period=2026-11", "", nil); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("no token: %d %s", r.status, r.body)
		}
		if r := a.do("GET", "/v1/charges?customer=c1&period=2026-11", acmeAdmin.token+"x", nil); r.status != 401 {
			t.Errorf("tampered token: %d %s", r.status, r.body)
		}
		r := a.do("GET", "/v1/charges?customer=c1&period=2026-11", acmeWriter.token, nil)
		if r.status != 403 || r.problemCode() != "insufficient_scope" || !strings.Contains(string(r.body), "billing:read") {
			t.Errorf("missing scope: %d %s", r.status, r.body)
		}
	})

	// acme's data: usage and charges.
	usage := []byte(`{"id":"a1","customer":"c1","element":"api_calls","quantity":3,"time":"2026-11-02T00:00:00Z"}` + "\n" +
		`{"id":"a2","customer":"c9","element":"api_calls","quantity":1,"time":"2026-11-02T00:00:00Z"}`)
	if r := a.do("POST", "/v1/usage", acmeWriter.token, usage, "Content-Type", "application/x-ndjson"); r.status != 202 {
		t.Fatalf("post usage: %d %s", r.status, r.body)
	}
	waitFor(t, 30*time.Second, "acme's line and unrated record", func() (bool, string) {
		r, _ := e.rated(ctx, "acme")
		u := e.count(ctx, "SELECT count() FROM usage_unrated FINAL WHERE tenant = 'acme'")
		return r.Lines == 1 && u == 1, fmt.Sprintf("lines %d unrated %d", r.Lines, u)
	})

	// acme's import job: a file whose only record is invalid (it changes no
	// totals), so that the job and its error report exist.
	imp := a.doInvalid("POST", "/v1/usage/imports", acmeWriter.token,
		[]byte("id,customer,element,quantity,time\nimp-secret,c1,api_calls,-1,2026-11-02T00:00:00Z\n"), "Content-Type", "text/csv")
	var accepted struct {
		Job struct {
			ID string `json:"id"`
		} `json:"job"`
	}
	if imp.status != 202 {
		t.Fatalf("import: %d %s", imp.status, imp.body)
	}
	imp.json(t, &accepted)
	acmeJob := accepted.Job.ID
	waitFor(t, 30*time.Second, "acme's import job to end", func() (bool, string) {
		r := a.do("GET", "/v1/jobs/"+acmeJob, acmeAdmin.token, nil)
		return r.status == 200 && strings.Contains(string(r.body), `"status":"failed"`), string(r.body)
	})
	if r := a.do("GET", "/v1/jobs/"+acmeJob+"/errors", acmeAdmin.token, nil); r.status != 200 || !strings.Contains(string(r.body), "imp-secret") {
		t.Fatalf("acme's error report: %d %s", r.status, r.body)
	}
	// acme's usage report (spec 003): c1 held api_calls at 3 from Nov 2nd on.
	rep := a.do("POST", "/v1/reports", acmeAdmin.token, []byte(`{"type":"user","from":"2026-11-01","to":"2026-11-03"}`))
	var acmeReport struct {
		ID          string `json:"id"`
		DownloadURL string `json:"download_url"`
	}
	if rep.status != 202 {
		t.Fatalf("acme's report: %d %s", rep.status, rep.body)
	}
	rep.json(t, &acmeReport)
	waitFor(t, 60*time.Second, "acme's report to complete", func() (bool, string) {
		r := a.do("GET", "/v1/reports/"+acmeReport.ID, acmeAdmin.token, nil)
		r.json(t, &acmeReport)
		return r.status == 200 && strings.Contains(string(r.body), `"status":"completed"`), string(r.body)
	})
	if r := a.do("GET", acmeReport.DownloadURL, "", nil); r.status != 200 || !strings.Contains(string(r.body), ",c1,") || !strings.Contains(string(r.body), ",6,") {
		t.Fatalf("acme's report file: %d %s", r.status, r.body)
	}

	t.Run("scope checked on every route", func(t *testing.T) {
		// A token with only usage:write is refused (403 naming the scope) on
		// every route that needs another scope.
		for _, rt := range v.Routes() {
			if rt.Public || len(rt.Scopes) == 0 || rt.Scopes[0] == string(auth.ScopeUsageWrite) {
				continue
			}
			path := rt.Expand(map[string]string{"clientId": acmeAdmin.id, "jobId": acmeJob, "usageId": "a1", "id": "x", "code": "x", "customerId": "x", "n": "0",
				"runId": acmeJob, "closeId": acmeJob, "receivableId": "x", "period": "2026-11", "reportId": acmeReport.ID})
			var body []byte
			if rt.HasBody {
				body = []byte(`{"name":"x","scopes":["usage:read"]}`)
			}
			r := a.doInvalid(rt.Method, path, acmeWriter.token, body)
			if r.status != 403 || r.problemCode() != "insufficient_scope" || !strings.Contains(string(r.body), rt.Scopes[0]) {
				t.Errorf("%s %s with a usage:write token: %d %s, want 403 naming %s", rt.Method, rt.Path, r.status, r.body, rt.Scopes[0])
			}
		}
		billing := newClient("acme", tenants.Limits{}, auth.ScopeBillingRead)
		billing.token = a.token(billing.id, billing.secret)
		if r := a.do("POST", "/v1/usage", billing.token, usage, "Content-Type", "application/x-ndjson"); r.status != 403 {
			t.Errorf("POST /v1/usage with a billing:read token: %d", r.status)
		}
	})

	t.Run("cross-tenant walk over every route", func(t *testing.T) {
		// Tenant other's admin token (all scopes) against acme's resources:
		// every answer is 403/404, or other's own (empty) data — never acme's.
		// acme's catalogue: a customer with personal fields, a group, a plan.
		for _, c := range []struct{ path, body string }{
			{"/v1/customers", `{"id":"acme-c1","personal":{"name":"Acme Secret Name","email":"secret@acme.example"}}`},
			{"/v1/groups", `{"id":"acme-g1","name":"acme-only-group","members":["acme-c1"]}`},
			{"/v1/elements", `{"code":"acme-el","name":"acme-only-element","versions":[{"valid_from":"2026-01-01T00:00:00Z","unit":"h","aggregation":"sum"}]}`},
		} {
			if r := a.do("POST", c.path, acmeAdmin.token, []byte(c.body)); r.status != 201 {
				t.Fatalf("POST %s as acme: %d %s", c.path, r.status, r.body)
			}
		}
		secrets := []string{acmeAdmin.id, acmeWriter.id, `"a1"`, `"a2"`, `"c9"`, `"total":"2"`, // what only acme's data holds
			"Acme Secret Name", "secret@acme.example", "acme-only-group", "acme-only-element", acmeJob, "imp-secret", acmeReport.ID}
		ids := map[string]string{"customers": "acme-c1", "groups": "acme-g1", "elements": "acme-el"}
		for _, rt := range v.Routes() {
			if rt.Public {
				continue
			}
			id := ids[strings.Split(rt.Path, "/")[2]]
			if id == "" {
				id = "acme-c1"
			}
			path := rt.Expand(map[string]string{"clientId": acmeAdmin.id, "id": id, "code": id, "customerId": "acme-c1", "n": "0", "jobId": acmeJob, "usageId": "a1",
				"runId": acmeJob, "closeId": acmeJob, "receivableId": "rcv_202611_00000000000000000000000000000000", "period": "2026-11", "reportId": acmeReport.ID})
			var body []byte
			headers := []string{}
			switch rt.OperationID {
			case "ingestUsage", "importUsage":
				continue // writes to the caller's own tenant; covered by the isolation of every read below
			case "createClient":
				body = []byte(`{"name":"x","scopes":["usage:read"]}`)
			case "invalidateUsageBulk", "cancelUsageInvalidationBulk":
				body = []byte(`{"customer":"c1"}`) // matches acme's a1, but only the caller's tenant is searched
			}
			switch {
			case strings.HasPrefix(rt.Path, "/v1/charges"):
				path += "?customer=c1&period=2026-11"
			case strings.HasPrefix(rt.Path, "/v1/usage/unrated"):
				path += "?customer=c9"
			}
			r := a.do(rt.Method, path, otherAdmin.token, body, headers...)
			for _, s := range secrets {
				if bytes.Contains(r.body, []byte(s)) {
					t.Errorf("%s %s as tenant other: answer %d contains acme's %s: %s", rt.Method, path, r.status, s, r.body)
				}
			}
			if r.status >= 500 {
				t.Errorf("%s %s: %d %s", rt.Method, path, r.status, r.body)
			}
			if (strings.Contains(rt.Path, "{clientId}") || strings.Contains(rt.Path, "{usageId}") || strings.Contains(rt.Path, "{jobId}") || strings.Contains(rt.Path, "{reportId}")) && r.status != 404 {
				t.Errorf("%s %s with acme's id as tenant other: %d, want 404", rt.Method, path, r.status)
			}
			if strings.HasSuffix(rt.OperationID, "Bulk") && (r.status != 202 || !bytes.Contains(r.body, []byte(`"matched":0`))) {
				t.Errorf("%s %s as tenant other: %d %s, want 202 matching none of acme's records", rt.Method, path, r.status, r.body)
			}
			if (strings.Contains(rt.Path, "{id}") || strings.Contains(rt.Path, "{code}")) && r.status < 400 {
				t.Errorf("%s %s with acme's id as tenant other: %d, want it not to exist", rt.Method, path, r.status)
			}
		}
		// acme's download URL names acme: with tenant other it is refused.
		if r := a.do("GET", strings.Replace(acmeReport.DownloadURL, "tenant=acme", "tenant=other", 1), "", nil); r.status != 403 {
			t.Errorf("acme's report URL for tenant other: %d %s", r.status, r.body)
		}
		// And acme still sees its own data.
		r := a.do("GET", "/v1/charges?customer=c1&period=2026-11", acmeAdmin.token, nil)
		if r.status != 200 || !strings.Contains(string(r.body), `"total":"2"`) {
			t.Errorf("acme's own charges: %d %s", r.status, r.body)
		}
		r = a.do("GET", "/v1/clients/"+acmeWriter.id, acmeAdmin.token, nil)
		if r.status != 200 || !strings.Contains(string(r.body), acmeWriter.id) {
			t.Errorf("acme's own client: %d %s", r.status, r.body)
		}
	})

	t.Run("problem+json for each class of bad input", func(t *testing.T) {
		tests := []struct {
			name, method, path string
			body               []byte
			status             int
			field              string
		}{
			{"bad JSON", "POST", "/v1/clients", []byte(`{"name":`), 400, ""},
			{"unknown field", "POST", "/v1/clients", []byte(`{"name":"x","scopes":["admin"],"colour":"red"}`), 400, "colour"},
			{"wrong type", "POST", "/v1/clients", []byte(`{"name":7,"scopes":["admin"]}`), 400, "name"},
			{"unknown scope", "POST", "/v1/clients", []byte(`{"name":"x","scopes":["root"]}`), 400, "scopes[0]"},
			{"out of range page size", "GET", "/v1/clients?pageSize=100000", nil, 400, "pageSize"},
			{"bad period", "GET", "/v1/charges?customer=c1&period=2026-13", nil, 400, "period"},
			{"bad time filter", "GET", "/v1/usage/unrated?from=yesterday", nil, 400, "from"},
			{"tampered cursor", "GET", "/v1/clients?nextPage=eyJzIjoieCJ9.AAAA", nil, 400, "nextPage"},
			{"oversized body", "POST", "/v1/usage", bytes.Repeat([]byte(" "), 70000), 413, ""},
			{"unknown version", "GET", "/v1/clients", nil, 400, "header:Kakin-Version"},
		}
		for _, tt := range tests {
			headers := []string{}
			if tt.name == "unknown version" {
				headers = []string{"Kakin-Version", "1999-01-01"}
			}
			req := func() reply {
				if tt.status >= 400 && tt.body != nil {
					// The document rejects these bodies too; tell the validator they are meant to be bad.
					return a.doInvalid(tt.method, tt.path, acmeAdmin.token, tt.body, headers...)
				}
				return a.do(tt.method, tt.path, acmeAdmin.token, tt.body, headers...)
			}()
			var prob struct {
				Code   string `json:"code"`
				Errors []struct{ Field string }
			}
			_ = json.Unmarshal(req.body, &prob)
			ok := req.status == tt.status && strings.HasPrefix(req.header.Get("Content-Type"), "application/problem+json") && prob.Code != ""
			if tt.field != "" {
				found := false
				for _, f := range prob.Errors {
					found = found || f.Field == tt.field
				}
				ok = ok && found
			}
			if !ok {
				t.Errorf("%s: %d %s %s, want %d problem naming %q", tt.name, req.status, req.header.Get("Content-Type"), req.body, tt.status, tt.field)
			}
		}
	})

	t.Run("versioned ingest answer", func(t *testing.T) {
		body := []byte(`{"id":"v1","customer":"c1","element":"api_calls","quantity":1,"time":"2026-11-03T00:00:00Z"}` + "\n" + `{"id":"v2"}`)
		for _, tt := range []struct {
			version string
			listed  int
		}{{"", 2}, {"2026-11-01", 2}, {"2026-12-01", 1}} {
			headers := []string{"Content-Type", "application/x-ndjson"}
			if tt.version != "" {
				headers = append(headers, "Kakin-Version", tt.version)
			}
			r := a.doInvalid("POST", "/v1/usage", acmeWriter.token, body, headers...)
			var resp ingestResponse
			r.json(t, &resp)
			want := tt.version
			if want == "" {
				want = "2026-11-01"
			}
			if r.status != 202 || len(resp.Results) != tt.listed || r.header.Get("Kakin-Version") != want {
				t.Errorf("version %q: %d, %d results listed, echoed %q", tt.version, r.status, len(resp.Results), r.header.Get("Kakin-Version"))
			}
		}
	})

	t.Run("idempotency key replay and conflict", func(t *testing.T) {
		body := []byte(`{"name":"idem","scopes":["usage:read"]}`)
		first := a.do("POST", "/v1/clients", acmeAdmin.token, body, "Idempotency-Key", "k-1")
		again := a.do("POST", "/v1/clients", acmeAdmin.token, body, "Idempotency-Key", "k-1")
		if first.status != 201 || again.status != 201 || !bytes.Equal(first.body, again.body) || again.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %d %s / %d %s", first.status, first.body, again.status, again.body)
		}
		other := a.do("POST", "/v1/clients", acmeAdmin.token, []byte(`{"name":"idem2","scopes":["usage:read"]}`), "Idempotency-Key", "k-1")
		if other.status != 422 || other.problemCode() != "idempotency_key_reused" {
			t.Errorf("conflict: %d %s", other.status, other.body)
		}
	})

	t.Run("pagination stays correct while clients are added", func(t *testing.T) {
		for i := 0; i < 12; i++ {
			a.do("POST", "/v1/clients", acmeAdmin.token, []byte(fmt.Sprintf(`{"name":"page-%d","scopes":["usage:read"]}`, i)))
		}
		var before struct{ Count int }
		a.do("GET", "/v1/clients/count", acmeAdmin.token, nil).json(t, &before)
		seen := map[string]int{}
		next := ""
		for pages := 0; ; pages++ {
			path := "/v1/clients?pageSize=4"
			if next != "" {
				path += "&nextPage=" + url.QueryEscape(next)
			}
			r := a.do("GET", path, acmeAdmin.token, nil)
			var page struct {
				Clients []struct {
					ID string `json:"client_id"`
				}
				NextPage string `json:"nextPage"`
			}
			r.json(t, &page)
			if r.status != 200 || len(page.Clients) > 4 {
				t.Fatalf("page %d: %d %s", pages, r.status, r.body)
			}
			for _, c := range page.Clients {
				seen[c.ID]++
			}
			// Records added while paging must not disturb the walk.
			a.do("POST", "/v1/clients", acmeAdmin.token, []byte(fmt.Sprintf(`{"name":"during-%d","scopes":["usage:read"]}`, pages)))
			if page.NextPage == "" {
				break
			}
			next = page.NextPage
			if pages > 50 {
				t.Fatal("pagination does not end")
			}
		}
		if len(seen) < before.Count {
			t.Errorf("saw %d distinct clients, %d existed before paging began", len(seen), before.Count)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("client %s on %d pages", id, n)
			}
		}
		// Another tenant cannot replay acme's cursor.
		if next != "" {
			if r := a.do("GET", "/v1/clients?nextPage="+url.QueryEscape(next), otherAdmin.token, nil); r.status != 400 {
				t.Errorf("acme's cursor as tenant other: %d", r.status)
			}
		}
	})

	t.Run("rate limits answer 429 and store nothing", func(t *testing.T) {
		var limited reply
		for i := 0; i < 5; i++ {
			if r := a.do("GET", "/v1/clients/count", acmeSlow.token, nil); r.status == 429 {
				limited = r
				break
			}
		}
		if limited.status != 429 || limited.header.Get("Retry-After") == "" || limited.header.Get("RateLimit-Limit") != "3" ||
			limited.header.Get("RateLimit-Remaining") != "0" || limited.header.Get("RateLimit-Reset") == "" {
			t.Fatalf("admin limit: %d %v %s", limited.status, limited.header, limited.body)
		}
		// Events: 1/s with a burst of one full request (50 records): the first
		// 50 pass, the next request is refused and none of it is stored.
		batch := func(prefix string) []byte {
			var b strings.Builder
			for i := 0; i < 50; i++ {
				fmt.Fprintf(&b, `{"id":"%s-%d","customer":"c2","element":"api_calls","quantity":2,"time":"2026-11-04T00:00:00Z"}`+"\n", prefix, i)
			}
			return []byte(b.String())
		}
		if r := a.do("POST", "/v1/usage", acmeSlow.token, batch("ok"), "Content-Type", "application/x-ndjson"); r.status != 202 {
			t.Fatalf("first batch: %d %s", r.status, r.body)
		}
		// The budget is shared: a second ingest process refuses the next batch.
		second := &api{t: t, base: e.start("ingest-2", "ingest").url, http: v.Client()}
		r := second.do("POST", "/v1/usage", acmeSlow.token, batch("refused"), "Content-Type", "application/x-ndjson")
		if r.status != 429 || r.header.Get("Retry-After") == "" {
			t.Fatalf("second batch, through another ingest process: %d %s", r.status, r.body)
		}
		waitFor(t, 30*time.Second, "the first batch", func() (bool, string) {
			n := e.count(ctx, "SELECT count() FROM rated_usage FINAL WHERE tenant = 'acme' AND customer = 'c2'")
			return n == 50, fmt.Sprint(n)
		})
		time.Sleep(time.Second) // anything of the refused batch would have arrived with the first
		if n := e.count(ctx, "SELECT count() FROM rated_usage FINAL WHERE tenant = 'acme' AND event_id LIKE 'refused-%'"); n != 0 {
			t.Errorf("%d records of a refused request were stored", n)
		}
	})

	t.Run("revoked client", func(t *testing.T) {
		if r := a.do("POST", "/v1/clients/"+acmeWriter.id+"/revoke", acmeAdmin.token, []byte(`{}`)); r.status != 200 || !strings.Contains(string(r.body), `"revoked":true`) {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		// No new token at once.
		form := url.Values{"grant_type": {"client_credentials"}}
		req, _ := http.NewRequest("POST", a.base+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(acmeWriter.id, acmeWriter.secret)
		resp, err := a.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("token for a revoked client: %d", resp.StatusCode)
		}
		// Its existing token stops within the refresh interval (1 s here).
		waitFor(t, 10*time.Second, "the revoked token to be refused", func() (bool, string) {
			r := a.do("POST", "/v1/usage", acmeWriter.token, usage, "Content-Type", "application/x-ndjson")
			return r.status == 401, fmt.Sprint(r.status)
		})
	})

	for _, u := range v.Unvisited() {
		t.Logf("route never exercised: %s %s", u.Method, u.Path)
	}
}

// doInvalid sends a request the OpenAPI document itself rejects (to test the
// server's answer to bad input); only the answer is validated.
func (a *api) doInvalid(method, path, token string, body []byte, headers ...string) reply {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := a.http.Do(apitest.ExpectInvalidRequest(req))
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}
