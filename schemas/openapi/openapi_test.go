package openapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	billing "github.com/kakin-dev/kakin/admin/billing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/kakin-dev/kakin/admin/catalogapi"
	"github.com/kakin-dev/kakin/admin/clients"
	"github.com/kakin-dev/kakin/admin/corrections"
	reportsapi "github.com/kakin-dev/kakin/admin/reports"
	"github.com/kakin-dev/kakin/admin/usage"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/ingest"
	"github.com/kakin-dev/kakin/ingest/imports"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/idempotency"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/schemas/openapi"
	"github.com/kakin-dev/kakin/tenants"
	"github.com/kakin-dev/kakin/usagedb"
)

func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

type operation struct {
	method, path string
	op           *openapi3.Operation
}

func (o operation) String() string { return o.method + " " + o.path }

func operations(doc *openapi3.T) []operation {
	var out []operation
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			out = append(out, operation{method, path, op})
		}
	}
	slices.SortFunc(out, func(a, b operation) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// routes is every route of the server with the scope it needs ("" = none).
var routes = map[string]string{
	"POST /v1/billing-runs":                       "admin",
	"GET /v1/billing-runs/{runId}":                "billing:read",
	"GET /v1/billing-runs/{runId}/reconciliation": "billing:read",
	"GET /v1/receivables":                         "billing:read",
	"GET /v1/receivables/count":                   "billing:read",
	"GET /v1/receivables/preview":                 "billing:read",
	"GET /v1/receivables/{receivableId}":          "billing:read",
	"GET /v1/receivables/{receivableId}/lines":    "billing:read",
	"DELETE /v1/receivables/{receivableId}":       "admin",
	"POST /v1/billing-periods/{period}/close":     "admin",
	"POST /v1/billing-closes":                     "admin",
	"GET /v1/billing-closes/{closeId}":            "billing:read",
	"POST /v1/billing-periods/{period}/reopen":    "admin",
	"GET /v1/billing-settings":                    "billing:read",
	"PUT /v1/billing-settings":                    "admin",

	"POST /v1/rerate":                        "usage:write",
	"POST /oauth/token":                      "",
	"POST /v1/usage":                         "usage:write",
	"GET /v1/usage":                          "usage:read",
	"GET /v1/usage/count":                    "usage:read",
	"GET /v1/usage/{usageId}":                "usage:read",
	"POST /v1/usage/{usageId}/invalidate":    "usage:write",
	"POST /v1/usage/{usageId}/cancel":        "usage:write",
	"POST /v1/usage/invalidate":              "usage:write",
	"POST /v1/usage/cancel":                  "usage:write",
	"GET /v1/usage/unrated":                  "usage:read",
	"GET /v1/usage/unrated/count":            "usage:read",
	"GET /v1/usage/duplicates":               "usage:read",
	"GET /v1/usage/duplicates/count":         "usage:read",
	"GET /v1/charges":                        "billing:read",
	"GET /v1/service-contracts/{id}/charges": "billing:read",
	"GET /v1/clients":                        "admin",
	"GET /v1/clients/count":                  "admin",
	"POST /v1/clients":                       "admin",
	"GET /v1/clients/{clientId}":             "admin",
	"POST /v1/clients/{clientId}/revoke":     "admin",
	"GET /openapi.json":                      "",
	"GET /docs":                              "",
	"GET /metrics":                           "",
	"GET /healthz":                           "",
	"GET /readyz":                            "",
	"POST /v1/usage/imports":                 "usage:write",
	"GET /v1/jobs":                           "usage:read",
	"GET /v1/jobs/count":                     "usage:read",
	"GET /v1/jobs/{jobId}":                   "usage:read",
	"GET /v1/jobs/{jobId}/errors":            "usage:read",
	"POST /v1/jobs/{jobId}/cancel":           "usage:write",
	// The catalogue: customers, groups, contracts and masters (admin/catalogapi).
	"POST /v1/customers":                               "customers:write",
	"GET /v1/customers":                                "customers:read",
	"GET /v1/customers/count":                          "customers:read",
	"GET /v1/customers/{id}":                           "customers:read",
	"PUT /v1/customers/{id}":                           "customers:write",
	"DELETE /v1/customers/{id}":                        "customers:write",
	"GET /v1/customers/{id}/revisions":                 "customers:read",
	"POST /v1/groups":                                  "customers:write",
	"GET /v1/groups":                                   "customers:read",
	"GET /v1/groups/count":                             "customers:read",
	"GET /v1/groups/{id}":                              "customers:read",
	"PUT /v1/groups/{id}":                              "customers:write",
	"DELETE /v1/groups/{id}":                           "customers:write",
	"GET /v1/groups/{id}/revisions":                    "customers:read",
	"POST /v1/groups/{id}/members/{customerId}":        "customers:write",
	"DELETE /v1/groups/{id}/members/{customerId}":      "customers:write",
	"POST /v1/basic-contracts":                         "customers:write",
	"GET /v1/basic-contracts":                          "customers:read",
	"GET /v1/basic-contracts/count":                    "customers:read",
	"GET /v1/basic-contracts/{id}":                     "customers:read",
	"PUT /v1/basic-contracts/{id}":                     "customers:write",
	"DELETE /v1/basic-contracts/{id}":                  "customers:write",
	"GET /v1/basic-contracts/{id}/revisions":           "customers:read",
	"POST /v1/service-contracts":                       "customers:write",
	"GET /v1/service-contracts":                        "customers:read",
	"GET /v1/service-contracts/count":                  "customers:read",
	"GET /v1/service-contracts/{id}":                   "customers:read",
	"PUT /v1/service-contracts/{id}":                   "customers:write",
	"DELETE /v1/service-contracts/{id}":                "customers:write",
	"GET /v1/service-contracts/{id}/revisions":         "customers:read",
	"POST /v1/service-contracts/{id}/cancel":           "customers:write",
	"POST /v1/discount-contracts":                      "customers:write",
	"GET /v1/discount-contracts":                       "customers:read",
	"GET /v1/discount-contracts/count":                 "customers:read",
	"GET /v1/discount-contracts/{id}":                  "customers:read",
	"PUT /v1/discount-contracts/{id}":                  "customers:write",
	"DELETE /v1/discount-contracts/{id}":               "customers:write",
	"GET /v1/discount-contracts/{id}/revisions":        "customers:read",
	"POST /v1/discount-contracts/{id}/cancel":          "customers:write",
	"POST /v1/services":                                "catalog:write",
	"GET /v1/services":                                 "catalog:read",
	"GET /v1/services/count":                           "catalog:read",
	"GET /v1/services/{code}":                          "catalog:read",
	"PUT /v1/services/{code}":                          "catalog:write",
	"DELETE /v1/services/{code}":                       "catalog:write",
	"GET /v1/services/{code}/revisions":                "catalog:read",
	"POST /v1/services/{code}/versions":                "catalog:write",
	"POST /v1/services/{code}/versions/{n}/end":        "catalog:write",
	"POST /v1/plans":                                   "catalog:write",
	"GET /v1/plans":                                    "catalog:read",
	"GET /v1/plans/count":                              "catalog:read",
	"GET /v1/plans/{code}":                             "catalog:read",
	"PUT /v1/plans/{code}":                             "catalog:write",
	"DELETE /v1/plans/{code}":                          "catalog:write",
	"GET /v1/plans/{code}/revisions":                   "catalog:read",
	"POST /v1/plans/{code}/versions":                   "catalog:write",
	"POST /v1/plans/{code}/versions/{n}/end":           "catalog:write",
	"POST /v1/fees":                                    "catalog:write",
	"GET /v1/fees":                                     "catalog:read",
	"GET /v1/fees/count":                               "catalog:read",
	"GET /v1/fees/{code}":                              "catalog:read",
	"PUT /v1/fees/{code}":                              "catalog:write",
	"DELETE /v1/fees/{code}":                           "catalog:write",
	"GET /v1/fees/{code}/revisions":                    "catalog:read",
	"POST /v1/fees/{code}/versions":                    "catalog:write",
	"POST /v1/fees/{code}/versions/{n}/end":            "catalog:write",
	"POST /v1/elements":                                "catalog:write",
	"GET /v1/elements":                                 "catalog:read",
	"GET /v1/elements/count":                           "catalog:read",
	"GET /v1/elements/{code}":                          "catalog:read",
	"PUT /v1/elements/{code}":                          "catalog:write",
	"DELETE /v1/elements/{code}":                       "catalog:write",
	"GET /v1/elements/{code}/revisions":                "catalog:read",
	"POST /v1/elements/{code}/versions":                "catalog:write",
	"POST /v1/elements/{code}/versions/{n}/end":        "catalog:write",
	"POST /v1/rate-tables":                             "catalog:write",
	"GET /v1/rate-tables":                              "catalog:read",
	"GET /v1/rate-tables/count":                        "catalog:read",
	"GET /v1/rate-tables/{code}":                       "catalog:read",
	"PUT /v1/rate-tables/{code}":                       "catalog:write",
	"DELETE /v1/rate-tables/{code}":                    "catalog:write",
	"GET /v1/rate-tables/{code}/revisions":             "catalog:read",
	"POST /v1/rate-tables/{code}/versions":             "catalog:write",
	"POST /v1/rate-tables/{code}/versions/{n}/end":     "catalog:write",
	"POST /v1/discount-tables":                         "catalog:write",
	"GET /v1/discount-tables":                          "catalog:read",
	"GET /v1/discount-tables/count":                    "catalog:read",
	"GET /v1/discount-tables/{code}":                   "catalog:read",
	"PUT /v1/discount-tables/{code}":                   "catalog:write",
	"DELETE /v1/discount-tables/{code}":                "catalog:write",
	"GET /v1/discount-tables/{code}/revisions":         "catalog:read",
	"POST /v1/discount-tables/{code}/versions":         "catalog:write",
	"POST /v1/discount-tables/{code}/versions/{n}/end": "catalog:write",
	"GET /v1/customers/{id}/contracts":                 "customers:read",
	"GET /v1/stats/customers":                          "customers:read",
	"GET /v1/services/{code}/contracts":                "customers:read",
	// Usage reports (admin/reports); the file behind a signed URL needs no token.
	"POST /v1/reports":              "billing:write",
	"GET /v1/reports":               "billing:read",
	"GET /v1/reports/{reportId}":    "billing:read",
	"DELETE /v1/reports/{reportId}": "billing:write",
	"GET /report-files/{reportId}":  "",
}

func TestOpenAPILoadsAndValidates(t *testing.T) {
	doc := loadDoc(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q, want 3.0.3", doc.OpenAPI)
	}
	// The loader must reject a broken document, or the test above proves nothing.
	broken := bytes.Replace(openapi.OpenAPIYAML(), []byte("$ref: '#/components/schemas/ChargesResponse'"),
		[]byte("$ref: '#/components/schemas/NoSuchSchema'"), 1)
	if _, err := openapi3.NewLoader().LoadFromData(broken); err == nil {
		t.Error("a document with a dangling $ref loaded")
	}
}

func TestEveryRouteIsDocumentedWithItsSecurity(t *testing.T) {
	doc := loadDoc(t)
	ids := map[string]string{}
	seen := map[string]bool{}
	for _, o := range operations(doc) {
		seen[o.String()] = true
		scope, known := routes[o.String()]
		if !known {
			t.Errorf("%s: not a route of the server", o)
		}
		if o.op.OperationID == "" {
			t.Errorf("%s: no operationId", o)
		} else if prev, dup := ids[o.op.OperationID]; dup {
			t.Errorf("%s: operationId %q also used by %s", o, o.op.OperationID, prev)
		}
		ids[o.op.OperationID] = o.String()
		if o.op.Summary == "" {
			t.Errorf("%s: no summary", o)
		}
		if o.op.Security == nil {
			t.Errorf("%s: no explicit security requirement", o)
			continue
		}
		sec := *o.op.Security
		switch {
		case scope != "":
			if len(sec) != 1 || len(sec[0]) != 1 || !slices.Equal(sec[0]["oauth2"], []string{scope}) {
				t.Errorf("%s: security %v, want oauth2 with scope %s", o, sec, scope)
			}
		case o.path == "/oauth/token":
			if len(sec) != 2 || sec[0]["clientBasic"] == nil || len(sec[1]) != 0 {
				t.Errorf("%s: security %v, want HTTP Basic or form credentials", o, sec)
			}
		default:
			if len(sec) != 0 {
				t.Errorf("%s: security %v, want none", o, sec)
			}
		}
	}
	for r := range routes {
		if !seen[r] {
			t.Errorf("route %s is not documented", r)
		}
	}
}

func TestResponsesAndParameters(t *testing.T) {
	doc := loadDoc(t)
	for _, o := range operations(doc) {
		v1 := strings.HasPrefix(o.path, "/v1/")
		want := []int{}
		switch {
		case v1:
			want = append(want, 400, 401, 403, 429, 503)
		case o.path == "/oauth/token":
			want = append(want, 200, 400, 401)
		case o.path == "/readyz":
			want = append(want, 200, 503)
		default:
			want = append(want, 200)
		}
		if o.method == "POST" && v1 {
			want = append(want, 413)
		}
		if strings.Contains(o.path, "{clientId}") || strings.Contains(o.path, "{usageId}") || strings.Contains(o.path, "{jobId}") {
			want = append(want, 404)
		}
		catalogue := v1 && !strings.HasPrefix(o.path, "/v1/usage") && !strings.HasPrefix(o.path, "/v1/charges") && !strings.HasPrefix(o.path, "/v1/clients") &&
			!strings.HasPrefix(o.path, "/v1/jobs") && o.path != "/v1/rerate" && !strings.HasPrefix(o.path, "/v1/reports") &&
			!strings.HasPrefix(o.path, "/v1/billing-") && !strings.HasPrefix(o.path, "/v1/receivables")
		catalogueItem := catalogue && strings.Contains(o.path, "}")
		catalogueWrite := catalogue && o.method != "GET"
		if catalogueItem {
			want = append(want, 404)
		}
		if catalogueWrite {
			// Revision conflicts, existing ids and references (409),
			// invalid entities (422), oversized bodies (413).
			want = append(want, 409, 413, 422)
			if !hasParam(o.op, "header", idempotency.Header) {
				t.Errorf("%s: no %s header parameter", o, idempotency.Header)
			}
		}
		if catalogueWrite && (o.method == "PUT" || o.method == "DELETE") && !strings.Contains(o.path, "/members/") {
			want = append(want, 428) // the revision being changed is required
			if !hasParam(o.op, "header", "If-Match") {
				t.Errorf("%s: no If-Match header parameter", o)
			}
		}
		if catalogue {
			switch {
			case o.method == "POST" && strings.Count(o.path, "/") == 2:
				want = append(want, 201)
			default:
				want = append(want, 200)
			}
		}
		adminPost := o.method == "POST" && strings.HasPrefix(o.path, "/v1/") && o.path != "/v1/usage" && o.path != "/v1/usage/imports"
		if adminPost {
			want = append(want, 409, 422)
			if !hasParam(o.op, "header", idempotency.Header) {
				t.Errorf("%s: no %s header parameter", o, idempotency.Header)
			}
		}
		switch o.String() {
		case "POST /v1/usage":
			want = append(want, 202, 422)
		case "POST /v1/clients":
			want = append(want, 201)
		case "POST /v1/usage/{usageId}/invalidate", "POST /v1/usage/{usageId}/cancel", "POST /v1/usage/invalidate", "POST /v1/usage/cancel":
			want = append(want, 202)
		case "POST /v1/rerate", "POST /v1/reports", "POST /v1/billing-runs", "POST /v1/billing-closes":
			want = append(want, 202)
		case "GET /v1/reports", "GET /v1/reports/{reportId}":
			want = append(want, 200)
		case "DELETE /v1/reports/{reportId}":
			want = append(want, 204, 404)
		case "GET /report-files/{reportId}":
			want = append(want, 403, 404)
		case "GET /v1/billing-runs/{runId}", "GET /v1/billing-runs/{runId}/reconciliation", "GET /v1/billing-closes/{closeId}", "GET /v1/receivables/{receivableId}",
			"GET /v1/receivables/{receivableId}/lines", "DELETE /v1/receivables/{receivableId}",
			"POST /v1/billing-periods/{period}/close", "POST /v1/billing-periods/{period}/reopen":
			want = append(want, 200, 404)
		case "GET /v1/receivables", "GET /v1/receivables/count", "GET /v1/billing-settings":
			want = append(want, 200)
		case "GET /v1/receivables/preview":
			want = append(want, 200, 404, 409)
		case "PUT /v1/billing-settings":
			want = append(want, 200, 422)
		case "POST /v1/usage/imports":
			want = append(want, 202, 415)
		case "POST /v1/jobs/{jobId}/cancel":
			want = append(want, 200, 202, 409, 422)
			if !hasParam(o.op, "header", idempotency.Header) {
				t.Errorf("%s: no %s header parameter", o, idempotency.Header)
			}
		case "GET /v1/jobs", "GET /v1/jobs/count", "GET /v1/jobs/{jobId}", "GET /v1/jobs/{jobId}/errors",
			"GET /v1/usage", "GET /v1/usage/count", "GET /v1/usage/{usageId}":
			want = append(want, 200)
		case "GET /v1/charges", "GET /v1/usage/unrated", "GET /v1/usage/unrated/count", "GET /v1/clients",
			"GET /v1/usage/duplicates", "GET /v1/usage/duplicates/count",
			"GET /v1/clients/count", "GET /v1/clients/{clientId}", "POST /v1/clients/{clientId}/revoke":
			want = append(want, 200)
		}
		for _, status := range want {
			if o.op.Responses.Status(status) == nil {
				t.Errorf("%s: no %d response", o, status)
			}
		}
		if v1 && !hasParam(o.op, "header", httpapi.VersionHeader) {
			t.Errorf("%s: no %s header parameter", o, httpapi.VersionHeader)
		}
		for code, ref := range o.op.Responses.Map() {
			status, _ := strconv.Atoi(code)
			r := ref.Value
			where := o.String() + " " + code
			if r.Description == nil || *r.Description == "" {
				t.Errorf("%s: no description", where)
			}
			requireHeader(t, where, r, httpapi.RequestIDHeader, true)
			if v1 {
				requireHeader(t, where, r, httpapi.VersionHeader, true)
			} else {
				requireHeader(t, where, r, httpapi.VersionHeader, false)
			}
			switch {
			case status == 429:
				for _, h := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"} {
					requireHeader(t, where, r, h, v1 || h == "Retry-After")
				}
			case v1 && status < 300:
				for _, h := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
					requireHeader(t, where, r, h, false)
				}
			case v1 && status == 503, v1 && status == 409 && strings.HasPrefix(o.path, "/v1/clients"):
				requireHeader(t, where, r, "Retry-After", true)
			case v1 && status == 409:
				// Only the idempotency conflict always asks for a retry; a
				// state conflict (a closed period, a catalogue revision) is
				// not cured by waiting.
				requireHeader(t, where, r, "Retry-After", ref.Ref == "#/components/responses/IdempotencyConflict")
			case v1 && status == 401:
				requireHeader(t, where, r, "WWW-Authenticate", true)
			}
			if len(r.Content) == 0 {
				t.Errorf("%s: no content", where)
			}
			if v1 && status >= 400 && !(o.path == "/v1/usage" && status == 422) {
				mt := r.Content.Get("application/problem+json")
				if mt == nil || mt.Schema == nil || mt.Schema.Ref != "#/components/schemas/Problem" {
					t.Errorf("%s: not an application/problem+json Problem", where)
				}
			}
			if o.path == "/oauth/token" && (status == 400 || status == 401) {
				mt := r.Content.Get("application/json")
				if mt == nil || mt.Schema == nil || mt.Schema.Ref != "#/components/schemas/OAuthError" {
					t.Errorf("%s: not an RFC 6749 error", where)
				}
			}
		}
	}
}

func hasParam(op *openapi3.Operation, in, name string) bool {
	return op.Parameters.GetByInAndName(in, name) != nil
}

// requireHeader checks that r declares header name; when required, that it
// is marked required.
func requireHeader(t *testing.T, where string, r *openapi3.Response, name string, required bool) {
	t.Helper()
	h := r.Headers[name]
	switch {
	case h == nil || h.Value == nil:
		t.Errorf("%s: header %s not declared", where, name)
	case required && !h.Value.Required:
		t.Errorf("%s: header %s not required", where, name)
	}
}

// Request bodies the server decodes strictly must say so.
func TestRequestBodiesAreStrict(t *testing.T) {
	doc := loadDoc(t)
	for _, name := range []string{"UsageRecord", "ClientCreateRequest", "LimitsInput", "TokenRequest", "CorrectionRequest", "BulkCorrectionRequest"} {
		s := doc.Components.Schemas[name].Value
		if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has {
			t.Errorf("%s: additionalProperties is not false", name)
		}
	}
	if ref := doc.Components.Schemas["ClientCreateRequest"].Value.Properties["limits"].Ref; ref != "#/components/schemas/LimitsInput" {
		t.Errorf("ClientCreateRequest.limits is %s", ref)
	}
}

// validate checks a Go value's JSON encoding against a component schema.
func validate(t *testing.T, doc *openapi3.T, schema string, v any) error {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return validateJSON(t, doc, schema, b)
}

func validateJSON(t *testing.T, doc *openapi3.T, schema string, b []byte) error {
	t.Helper()
	var value any
	if err := json.Unmarshal(b, &value); err != nil {
		t.Fatal(err)
	}
	ref := doc.Components.Schemas[schema]
	if ref == nil {
		t.Fatalf("no schema %s", schema)
	}
	return ref.Value.VisitJSON(value, openapi3.MultiErrors())
}

// The server's response types must encode to what the document says.
func TestServerTypesMatchTheDocument(t *testing.T) {
	doc := loadDoc(t)
	at := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	ok := []struct {
		schema string
		value  any
	}{
		{"UsageResponse", ingest.Response{Accepted: 1, Rejected: 1, Results: []ingest.Result{
			{Index: 0, ID: "e-1", Status: "accepted"},
			{Index: 1, Status: "rejected", Errors: []httpapi.FieldError{{Reason: "malformed JSON: unexpected end of record"}}},
		}}},
		{"UsageResponse", ingest.Response{Results: []ingest.Result{}}},
		{"Problem", httpapi.Problem{Type: "about:blank", Title: "Bad Request", Status: 400, Code: "invalid_query",
			Detail: "the query parameters are invalid", Errors: []httpapi.FieldError{{Field: "period", Reason: "required, as YYYY-MM"}}}},
		{"ChargesResponse", usagedb.ChargesResponse{Customer: "c", Period: "2026-11", Currency: "JPY", Total: "1200",
			Totals: []usagedb.Total{{Currency: "JPY", Amount: "1200"}},
			Lines:  []usagedb.ChargeLine{{Element: "api_calls", Quantity: "1200.5", Amount: "1200", Currency: "JPY", Events: 3}}}},
		{"ChargesResponse", usagedb.ChargesResponse{Customer: "c", Period: "2026-11",
			Totals: []usagedb.Total{{Currency: "JPY", Amount: "1200"}, {Currency: "USD", Amount: "12.50"}},
			Lines: []usagedb.ChargeLine{{Element: "a", Quantity: "1", Amount: "1200", Currency: "JPY", Events: 1},
				{Element: "b", Quantity: "0.000000001", Amount: "12.50", Currency: "USD", Events: 1}}}},
		{"ChargesResponse", usagedb.ChargesResponse{Customer: "c", Period: "2026-11", Totals: []usagedb.Total{}, Lines: []usagedb.ChargeLine{}}},
		{"ChargesResponse", usagedb.ChargesResponse{Customer: "c", Contract: "sc-1", Period: "2026-11", Totals: []usagedb.Total{}, Lines: []usagedb.ChargeLine{}}},
		{"ContractChargesResponse", usage.ContractChargesResponse{Contract: "sc-1", Customer: "c", Service: "flex", Months: []usage.ContractChargeMonth{
			{Month: "202611", Period: "2026-11", PeriodStart: "2026-11-01", PeriodEnd: "2026-11-30", Result: usage.MonthOK,
				Items: []usage.ContractChargeItem{
					{BillItem: usage.BillItemBase, BillItemCode: "0", Item: "sc-1/base", Fee: "base", Element: "base", Attributes: map[string]string{},
						Quantity: "1", Amount: "1000", Currency: "JPY", Lines: 1, EffectiveDate: "2026-11-10", TerminationDate: "2026-11-30"},
					{BillItem: usage.BillItemAdditional, BillItemCode: "1", Item: "sc-1/bw[500]", Fee: "bw", Element: "traffic",
						Attributes: map[string]string{"bandwidth": "500"}, Quantity: "2.5", Amount: "20", Currency: "JPY", Lines: 2,
						EffectiveDate: "2026-11-10", TerminationDate: "2026-11-30", FirstUsageAt: &at, LastUsageAt: &at}},
				Totals: []usagedb.Total{{Currency: "JPY", Amount: "1020"}}, Currency: "JPY", Total: "1020"},
			{Month: "202612", Period: "2026-12", PeriodStart: "2026-12-01", PeriodEnd: "2026-12-31", Result: usage.MonthNoData,
				Items: []usage.ContractChargeItem{}, Totals: []usagedb.Total{}}}}},
		{"UnratedPage", usage.UnratedPage{Records: []usagedb.UnratedRecord{{ID: "e-1", Customer: "c", Element: "x",
			Quantity: "1", Time: at, ReceivedAt: at, ReasonCode: schemas.ReasonUnknownElement, Reason: "no price", Stage: "rater"}},
			NextPage: "abc.def"}},
		{"UnratedPage", usage.UnratedPage{Records: []usagedb.UnratedRecord{}}},
		{"UsageRecordPage", usage.UsageRecordPage{Records: []usagedb.UsageRecord{
			{ID: "e-1", Customer: "c", Element: "x", Contract: "k", Quantity: "1.5", Time: at, ReceivedAt: at,
				Attributes: map[string]string{"region": "jp"}, Status: usagedb.StatusInvalid, Generation: 1},
			{ID: "e-2", Customer: "c", Element: "x", Quantity: "2", Time: at, ReceivedAt: at,
				Import: &schemas.ImportSource{File: "usage.csv", Job: "j-1"}, Status: usagedb.StatusRated},
			{ID: "e-1", Customer: "c", Element: "x", Quantity: "1.5", Time: at, ReceivedAt: at, Status: usagedb.StatusDuplicate}},
			NextPage: "abc.def"}},
		{"UsageRecordPage", usage.UsageRecordPage{Records: []usagedb.UsageRecord{}}},
		{"UsageRecordDetail", usagedb.RecordDetail{
			UsageRecord: usagedb.UsageRecord{ID: "e-1", Customer: "c", Element: "x", Quantity: "1", Time: at, ReceivedAt: at,
				Status: usagedb.StatusRated, Generation: 2},
			History: []usagedb.StatusEntry{{Generation: 1, Action: "invalidate", Status: "invalid", Reason: "r", Actor: "client:kc_x",
				RequestedAt: at, AppliedAt: at, Priced: true}},
			Lines: []usagedb.RecordLine{{LineID: "l", Kind: usagedb.LineUsage, Item: "x", Quantity: "1", UnitPrice: "0.5",
				Amount: "1", Currency: "JPY", Period: "2026-11", RatedAt: at},
				{LineID: "m", Kind: usagedb.LineInvalidate, Generation: 1, Item: "x", Quantity: "-1", UnitPrice: "0.5",
					Amount: "-1", Currency: "JPY", Period: "2026-11", RatedAt: at}},
			Duplicates: []usagedb.DuplicateRecord{}}},
		{"UsageRecordDetail", usagedb.RecordDetail{ // a line priced by a graduated rate: no unit price
			UsageRecord: usagedb.UsageRecord{ID: "e-3", Customer: "c", Element: "x", Quantity: "150", Time: at, ReceivedAt: at,
				Status: usagedb.StatusRated},
			History: []usagedb.StatusEntry{},
			Lines: []usagedb.RecordLine{{LineID: "l", Kind: usagedb.LineUsage, Item: "s1/calls", Quantity: "150",
				Amount: "125", Currency: "JPY", Period: "2026-11", RatedAt: at}},
			Duplicates: []usagedb.DuplicateRecord{}}},
		{"UsageRecordDetail", usagedb.RecordDetail{
			UsageRecord: usagedb.UsageRecord{ID: "e-2", Customer: "c", Element: "x", Quantity: "1", Time: at, ReceivedAt: at,
				Status: usagedb.StatusUnrated},
			History: []usagedb.StatusEntry{}, Lines: []usagedb.RecordLine{}, Duplicates: []usagedb.DuplicateRecord{},
			Unrated: &usagedb.UnratedReason{ReasonCode: "unknown_element", Reason: "no price", Stage: "rater"}}},
		{"CorrectionAccepted", corrections.CorrectionAccepted{ID: "e-1", Action: "invalidate", Generation: 1, Status: "invalid", RequestedAt: at}},
		{"BulkCorrectionAccepted", corrections.BulkCorrectionAccepted{Action: "cancel", Matched: 3, Changed: 2, Unchanged: 1, RequestedAt: at}},
		{"Limits", tenants.Limits{IngestEventsPerSecond: 1000, AdminRequestsPerMinute: 60}},
		{"Limits", tenants.Limits{}},
		{"LimitsInput", tenants.Limits{IngestRequestsPerSecond: 10}},
		{"Count", map[string]uint64{"count": 3}},
		{"Readiness", map[string]string{"kafka": "ok", "redis": "dial tcp: refused"}},
		{"Health", map[string]string{"status": "ok"}},
		{"Report", reportsapi.View{ID: jobs.NewID(), Type: "user", From: "2026-03-01", To: "2026-03-31", Format: "csv",
			TimeZone: "Asia/Tokyo", Status: reportsapi.StatusInProgress, CreatedBy: "kc_1", CreatedAt: at}},
		{"Report", func() reportsapi.View {
			rows, bytes := int64(2), int64(300)
			return reportsapi.View{ID: jobs.NewID(), Type: "partner", From: "2026-03-01", To: "2026-03-31", Group: "g1",
				Format: "parquet", TimeZone: "UTC", Status: reportsapi.StatusCompleted, Rows: &rows, Bytes: &bytes, SHA256: "ab",
				CreatedBy: "kc_1", CreatedAt: at, FinishedAt: &at, DownloadURL: "/report-files/job_x?tenant=t&expires=1&signature=ab", DownloadExpiresAt: &at}
		}()},
		{"ReportPage", reportsapi.Page{Reports: []reportsapi.View{}}},
		{"Job", jobs.NewView(jobs.Job{ID: jobs.NewID(), Kind: imports.Kind, Status: jobs.StatusProcessing,
			Params: json.RawMessage(`{"mode":"partial","format":"csv","size":10,"received_at":"2026-11-23T01:00:00Z"}`),
			Counts: jobs.Counts{Total: 3, Processed: 1, Accepted: 1}, CreatedBy: "kc_1", CreatedAt: at, UpdatedAt: at}, false)},
		{"Job", jobs.NewView(jobs.Job{ID: jobs.NewID(), Kind: imports.Kind, Status: jobs.StatusFailed, Error: "3 of 5 records are invalid",
			CreatedAt: at, UpdatedAt: at, FinishedAt: at, Attempts: 1}, true)},
		{"JobPage", jobs.Page{Jobs: []jobs.View{}}},
		// Every list from Kakin-Version 2027-01-01 on (httpapi.WriteList), and the
		// older shapes that have no case above.
		{"JobItems", httpapi.Page[jobs.View]{Items: []jobs.View{jobs.NewView(jobs.Job{ID: jobs.NewID(), Kind: imports.Kind,
			Status: jobs.StatusPending, CreatedAt: at, UpdatedAt: at}, false)}, NextPage: "abc.def"}},
		{"JobItems", httpapi.Page[jobs.View]{Items: []jobs.View{}}},
		{"UsageRecordItems", httpapi.Page[usagedb.UsageRecord]{Items: []usagedb.UsageRecord{{ID: "e-1", Customer: "c", Element: "x",
			Quantity: "1.5", Time: at, ReceivedAt: at, Status: usagedb.StatusRated}}, NextPage: "abc.def"}},
		{"UsageRecordItems", httpapi.Page[usagedb.UsageRecord]{Items: []usagedb.UsageRecord{}}},
		{"UnratedItems", httpapi.Page[usagedb.UnratedRecord]{Items: []usagedb.UnratedRecord{{ID: "e-1", Customer: "c", Element: "x",
			Quantity: "1", Time: at, ReceivedAt: at, ReasonCode: schemas.ReasonUnknownElement, Reason: "no price", Stage: "rater"}}}},
		{"DuplicateItems", httpapi.Page[usagedb.DuplicateRecord]{Items: []usagedb.DuplicateRecord{{ID: "e-1", Customer: "c", Element: "x",
			Quantity: "1", Time: at, ReceivedAt: at, Position: usagedb.Position{Partition: 1, Offset: 9}, FirstReceivedAt: at}}, NextPage: "abc.def"}},
		{"DuplicatePage", usage.DuplicatePage{Records: []usagedb.DuplicateRecord{}}},
		{"ClientItems", httpapi.Page[clients.ClientView]{Items: []clients.ClientView{{ID: "kc_x", Name: "n", Scopes: []auth.Scope{auth.ScopeAdmin},
			CreatedAt: at}}, NextPage: "abc.def"}},
		{"ClientList", clients.ClientPage{Clients: []clients.ClientView{{ID: "kc_x", Name: "n", Scopes: []auth.Scope{auth.ScopeAdmin}, CreatedAt: at}}}},
		{"JobError", jobs.LineError{Line: 3, RecordID: "e-2", Field: "quantity", Reason: "must not be negative"}},
		{"ImportAccepted", imports.Accepted{Size: 10, CheckImportStatus: "/v1/jobs/x",
			Job: jobs.NewView(jobs.Job{ID: jobs.NewID(), Kind: imports.Kind, Status: jobs.StatusPending, CreatedAt: at, UpdatedAt: at}, false)}},
		{"CustomerStats", catalogapi.CustomerStats{Customers: 3, Active: 2, Suspended: 1}},
		{"ContractTree", catalogapi.ContractTree{Customer: "c1", BasicContracts: []json.RawMessage{}, ServiceContracts: []*catalogapi.ContractNode{},
			DiscountContracts: []json.RawMessage{}}},
	}
	// The catalogue's documents as Go writes them match their schemas.
	demo, err := os.Open("../../deploy/demo/catalogue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer demo.Close()
	cat, err := catalog.Decode(demo)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range cat.Plans {
		ok = append(ok, struct {
			schema string
			value  any
		}{"Plan", p})
	}
	for _, f := range cat.Fees {
		ok = append(ok, struct {
			schema string
			value  any
		}{"Fee", f})
	}
	for _, r := range cat.RateTables {
		ok = append(ok, struct {
			schema string
			value  any
		}{"RateTable", r})
	}
	ok = append(ok, struct {
		schema string
		value  any
	}{"Customer", catalog.Customer{ID: "c1", Personal: catalog.Personal{Email: "a@example.jp"}}})
	for _, tt := range ok {
		if err := validate(t, doc, tt.schema, tt.value); err != nil {
			t.Errorf("%s %+v: %v", tt.schema, tt.value, err)
		}
	}
	// What httpapi.WriteProblem writes, headers included.
	rec := httptest.NewRecorder()
	httpapi.WriteProblem(rec, 413, "body_too_large", "too big")
	if ct := rec.Header().Get("Content-Type"); doc.Components.Responses["PayloadTooLarge"].Value.Content.Get(ct) == nil {
		t.Errorf("WriteProblem writes Content-Type %q, not documented", ct)
	}
	if err := validateJSON(t, doc, "Problem", rec.Body.Bytes()); err != nil {
		t.Errorf("WriteProblem body: %v", err)
	}

	bad := []struct {
		schema string
		json   string
	}{
		{"ChargesResponse", `{"customer":"c","period":"2026-11","total":1200,"totals":[],"lines":[]}`},
		{"ChargesResponse", `{"customer":"c","period":"2026-11","totals":[],"lines":[{"element":"a","quantity":"1","amount":"1e3","currency":"JPY","events":1}]}`},
		{"UnratedPage", `{"records":[{"id":"e","customer":"c","element":"x","quantity":"1","time":"yesterday","received_at":"2026-11-23T01:00:00Z","reason_code":"r","reason":"r","stage":"s"}]}`},
		{"UsageResponse", `{"accepted":1,"rejected":0,"results":[{"index":0,"status":"ok"}]}`},
		{"Problem", `{"type":"about:blank","title":"x","status":400}`},
		{"RevokedClient", `{"client_id":"kc_x","name":"n","scopes":["admin"],"limits":{},"revoked":false,"created_at":"2026-11-23T01:00:00Z"}`},
		{"ClientCreated", `{"client_id":"kc_x","name":"n","scopes":["admin"],"limits":{},"revoked":false,"created_at":"2026-11-23T01:00:00Z"}`},
		{"TokenResponse", `{"access_token":"a","token_type":"Bearer","expires_in":"3600","scope":""}`},
		{"StoredUsageRecord", `{"id":"e","customer":"c","element":"x","quantity":"1","time":"2026-11-23T01:00:00Z","received_at":"2026-11-23T01:00:00Z","status":"valid","generation":0}`},
		{"BulkCorrectionRequest", `{"customer":"c","status":"rated"}`},
		{"CorrectionRequest", `{"reason":"x","force":true}`},
		{"PlanEntity", `{"code":"p","versions":[{"valid_from":"2026-01-01T00:00:00Z","type":"fixed","currency":"JPY","fees":["f"]}]}`}, // no revision
		{"PlanInput", `{"code":"p","colour":"red","versions":[{"valid_from":"2026-01-01T00:00:00Z","type":"fixed","currency":"JPY","fees":["f"]}]}`},
		{"RateTable", `{"code":"r","versions":[{"valid_from":"2026-01-01T00:00:00Z","model":"per_unit","unit_price":"-1"}]}`},
		{"CustomerStats", `{"customers":"3","active":3,"suspended":0}`},
	}
	for _, tt := range bad {
		if err := validateJSON(t, doc, tt.schema, []byte(tt.json)); err == nil {
			t.Errorf("%s accepted %s", tt.schema, tt.json)
		}
	}
	good := []struct {
		schema string
		json   string
	}{
		{"RevokedClient", `{"client_id":"kc_x","name":"n","scopes":["admin"],"limits":{},"revoked":true,"created_at":"2026-11-23T01:00:00Z","revoked_at":"2026-11-24T01:00:00Z"}`},
		{"ClientCreated", `{"client_id":"kc_x","name":"n","scopes":["usage:write"],"limits":{"ingest_events_per_second":5},"revoked":false,"created_at":"2026-11-23T01:00:00Z","client_secret":"s3cr3t"}`},
		{"ClientList", `{"clients":[],"nextPage":"x"}`},
		{"TokenResponse", `{"access_token":"a","token_type":"Bearer","expires_in":3600,"scope":"usage:write usage:read"}`},
		{"OAuthError", `{"error":"invalid_scope","error_description":"unknown scope foo"}`},
	}
	for _, tt := range good {
		if err := validateJSON(t, doc, tt.schema, []byte(tt.json)); err != nil {
			t.Errorf("%s rejected %s: %v", tt.schema, tt.json, err)
		}
	}
}

// Enums and defaults in the document follow the code they describe.
func TestConstantsMatchTheCode(t *testing.T) {
	doc := loadDoc(t)
	var scopes []string
	for _, v := range doc.Components.Schemas["Scope"].Value.Enum {
		scopes = append(scopes, v.(string))
	}
	var code []string
	for _, s := range auth.AllScopes {
		code = append(code, string(s))
	}
	if !slices.Equal(scopes, code) {
		t.Errorf("Scope enum %v, auth.AllScopes %v", scopes, code)
	}
	flowScopes := doc.Components.SecuritySchemes["oauth2"].Value.Flows.ClientCredentials.Scopes
	for _, s := range code {
		if flowScopes[s] == "" {
			t.Errorf("oauth2 flow does not list scope %s", s)
		}
	}
	if len(flowScopes) != len(code) {
		t.Errorf("oauth2 flow lists %d scopes, code has %d", len(flowScopes), len(code))
	}

	versionParam := doc.Components.Parameters["KakinVersion"].Value
	var versions []string
	for _, v := range versionParam.Schema.Value.Enum {
		versions = append(versions, v.(string))
	}
	if !slices.Equal(versions, httpapi.Versions) || versionParam.Schema.Value.Default != httpapi.Versions[0] {
		t.Errorf("Kakin-Version enum %v default %v, code %v", versions, versionParam.Schema.Value.Default, httpapi.Versions)
	}
	if doc.Info.Version != httpapi.Versions[len(httpapi.Versions)-1] {
		t.Errorf("info.version %s is not the latest minor version", doc.Info.Version)
	}

	size := doc.Components.Parameters["PageSize"].Value.Schema.Value
	if size.Default != float64(page.DefaultSize) || *size.Max != float64(page.NewCodec([]byte("k"), 0).MaxSize()) {
		t.Errorf("pageSize default %v max %v, code %d / %d", size.Default, *size.Max, page.DefaultSize, page.NewCodec([]byte("k"), 0).MaxSize())
	}
	if doc.Components.Parameters["IdempotencyKey"].Value.Name != idempotency.Header ||
		doc.Components.Responses["IdempotencyConflict"] == nil {
		t.Error("idempotency header or responses missing")
	}
	if doc.Components.Headers["IdempotentReplayed"] == nil || idempotency.ReplayedHeader != "Idempotent-Replayed" {
		t.Error("Idempotent-Replayed header missing")
	}
}

func TestUsageRecordSchema(t *testing.T) {
	doc := loadDoc(t)
	good := []string{
		`{"id":"evt-123","customer":"cust-001","element":"api_calls","quantity":"12.5","time":"2026-11-23T10:00:00+09:00","contract":"k-1","attributes":{"region":"jp"}}`,
		`{"id":"e","customer":"c","element":"a.b:c-d_e","quantity":1200,"time":"2026-11-23T01:00:00.123456789Z"}`,
		`{"id":"e","customer":"c","element":"x","quantity":0,"time":"2026-11-23T01:00:00Z"}`,
		`{"id":"e","customer":"c","element":"x","quantity":" 0.000000001 ","time":"2026-11-23T01:00:00Z"}`,
	}
	for _, s := range good {
		if err := validateJSON(t, doc, "UsageRecord", []byte(s)); err != nil {
			t.Errorf("rejected %s: %v", s, err)
		}
	}
	bad := []string{
		`{"id":"e","customer":"c","element":"x","quantity":1,"time":"2026-11-23T01:00:00Z","tenant":"t"}`, // unknown field
		`{"customer":"c","element":"x","quantity":1,"time":"2026-11-23T01:00:00Z"}`,                       // no id
		`{"id":"","customer":"c","element":"x","quantity":1,"time":"2026-11-23T01:00:00Z"}`,
		`{"id":"e","customer":"c","element":"a b","quantity":1,"time":"2026-11-23T01:00:00Z"}`,
		`{"id":"e","customer":"c","element":"x","quantity":-1,"time":"2026-11-23T01:00:00Z"}`,
		`{"id":"e","customer":"c","element":"x","quantity":"-1","time":"2026-11-23T01:00:00Z"}`,
		`{"id":"e","customer":"c","element":"x","quantity":"lots","time":"2026-11-23T01:00:00Z"}`,
		`{"id":"e","customer":"c","element":"x","quantity":true,"time":"2026-11-23T01:00:00Z"}`,
		`{"id":"e","customer":"c","element":"x","quantity":1e18,"time":"2026-11-23T01:00:00Z"}`,
		`{"id":"e","customer":"c","element":"x","quantity":1,"time":"2026-11-23 01:00:00"}`,
		`{"id":"e","customer":"c","element":"x","quantity":1,"time":"2026-11-23T01:00:00Z","contract":""}`,
		`{"id":"e","customer":"c","element":"x","quantity":1,"time":"2026-11-23T01:00:00Z","attributes":{"a":1}}`,
	}
	for _, s := range bad {
		if err := validateJSON(t, doc, "UsageRecord", []byte(s)); err == nil {
			t.Errorf("accepted %s", s)
		}
	}
}

func TestOpenAPIJSON(t *testing.T) {
	b, err := openapi.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("the JSON form does not validate: %v", err)
	}
	if len(operations(doc)) != len(routes) {
		t.Errorf("JSON form has %d operations", len(operations(doc)))
	}

	rec := httptest.NewRecorder()
	openapi.OpenAPIHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || !bytes.Equal(rec.Body.Bytes(), b) {
		t.Errorf("GET /openapi.json: %d %q (%d bytes)", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
}

func TestDocsHandler(t *testing.T) {
	doc := loadDoc(t)
	srv := httptest.NewServer(openapi.DocsHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/docs")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, o := range operations(doc) {
		if !strings.Contains(page, `id="`+o.op.OperationID+`"`) || !strings.Contains(page, ">"+o.path+"<") {
			t.Errorf("page lacks %s (%s)", o, o.op.OperationID)
		}
	}
	for _, want := range []string{"Idempotency-Key", "application/problem+json", "ChargesResponse", "oauth2 (usage:write)", "<code>Kakin-Version</code>"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "src=", "http://", "https://"} {
		if strings.Contains(page, banned) {
			t.Errorf("page contains %q: it must be self-contained", banned)
		}
	}
}

// No summary pluralises a plural again ("customerss") or gives a plural a
// singular's possessive ("customers's"); nor do the descriptions of the
// operations, their parameters and answers, and the schemas. The catalogue's are generated
// from its resources' names (admin/catalogapi).
func TestSummariesHaveNoDoubledPlurals(t *testing.T) {
	doc := loadDoc(t)
	type text struct{ where, s string }
	var texts []text
	for _, o := range operations(doc) {
		texts = append(texts, text{o.String() + " summary", o.op.Summary}, text{o.String() + " description", o.op.Description})
		for code, r := range o.op.Responses.Map() {
			if r.Value != nil && r.Value.Description != nil {
				texts = append(texts, text{o.String() + " " + code, *r.Value.Description})
			}
		}
		for _, p := range o.op.Parameters {
			if p.Value != nil {
				texts = append(texts, text{o.String() + " parameter " + p.Value.Name, p.Value.Description})
			}
		}
	}
	for name, s := range doc.Components.Schemas {
		if s.Value != nil {
			texts = append(texts, text{"schema " + name, s.Value.Description})
		}
	}
	vocabulary := map[string]bool{}
	for _, tx := range texts {
		for _, w := range wordPattern.FindAllString(strings.ToLower(tx.s), -1) {
			vocabulary[w] = true
		}
	}
	for _, tx := range texts {
		for _, d := range doubledPlurals(tx.s, vocabulary) {
			t.Errorf("%s: %q pluralises a plural: %q", tx.where, d, tx.s)
		}
	}
	// The check finds what it is for, and only that.
	got := doubledPlurals("Count customerss; a customers's id; access the customers' list; a class", map[string]bool{"customer": true, "access": true, "class": true})
	if !slices.Equal(got, []string{"customerss", "customers's"}) {
		t.Errorf("doubledPlurals found %q", got)
	}
}

var (
	wordPattern    = regexp.MustCompile(`[a-z]+`)
	doubledPattern = regexp.MustCompile(`\b([a-z]{3,})s(s|'s)\b`)
)

// doubledPlurals returns the words of s that add s or 's to a plural: w+"ss"
// or w+"s's" where w is a word of the vocabulary ("access" is not "acce"
// pluralised twice).
func doubledPlurals(s string, vocabulary map[string]bool) []string {
	var out []string
	for _, m := range doubledPattern.FindAllStringSubmatch(strings.ToLower(s), -1) {
		if vocabulary[m[1]] {
			out = append(out, m[0])
		}
	}
	return out
}

// Every paged list answers one shape from Kakin-Version 2027-01-01 on: its
// array is items, next to nextPage. Lists that had another name for it
// before answer either shape (oneOf), the older one required by it.
func TestListsHaveOneShape(t *testing.T) {
	doc := loadDoc(t)
	legacy := map[string]string{ // the array's name before 2027-01-01
		"GET /v1/usage": "records", "GET /v1/usage/unrated": "records", "GET /v1/usage/duplicates": "records",
		"GET /v1/jobs": "jobs", "GET /v1/clients": "clients", "GET /v1/reports": "reports",
	}
	lists := 0
	for _, o := range operations(doc) {
		if !hasParam(o.op, "query", "pageSize") {
			continue
		}
		lists++
		schema := o.op.Responses.Status(200).Value.Content.Get("application/json").Schema.Value
		for _, body := range []string{`{"items":[]}`, `{"items":[],"nextPage":"abc.def"}`} {
			var v any
			_ = json.Unmarshal([]byte(body), &v)
			if err := schema.VisitJSON(v); err != nil {
				t.Errorf("%s: the list shape %s does not match: %v", o, body, err)
			}
		}
		if name, ok := legacy[o.String()]; ok {
			if len(schema.OneOf) != 2 {
				t.Errorf("%s: answers %v, want oneOf the list shape and the older shape", o, schema)
			}
			var v any
			_ = json.Unmarshal([]byte(`{"`+name+`":[]}`), &v)
			if err := schema.VisitJSON(v); err != nil {
				t.Errorf("%s: the older shape (%s) does not match: %v", o, name, err)
			}
			delete(legacy, o.String())
		}
	}
	if lists < 20 || len(legacy) != 0 {
		t.Errorf("%d paged lists; lists not found: %v", lists, legacy)
	}
}

// Every /v1 route refuses query parameters it does not take, and its 400
// answer lists the ones it takes: they are the ones the document lists.
func TestQueryParametersMatchTheCode(t *testing.T) {
	doc := loadDoc(t)
	code := map[string][]string{ // routes that take none or one, checked in their handlers' tests
		"POST /v1/usage":                      nil,
		"POST /v1/usage/imports":              {"mode"},
		"POST /v1/rerate":                     nil,
		"POST /v1/usage/{usageId}/invalidate": nil,
		"POST /v1/usage/{usageId}/cancel":     nil,
		"POST /v1/usage/invalidate":           nil,
		"POST /v1/usage/cancel":               nil,
	}
	for _, m := range []map[string][]string{usage.QueryParams, jobs.QueryParams, clients.QueryParams, reportsapi.QueryParams, billing.QueryParams} {
		for route, params := range m {
			code[route] = params
		}
	}
	for _, rt := range catalogapi.New(nil, nil, nil).Routes() {
		code[rt.Pattern()] = rt.QueryParams()
	}
	for _, o := range operations(doc) {
		if !strings.HasPrefix(o.path, "/v1/") {
			continue
		}
		want, ok := code[o.String()]
		if !ok {
			t.Errorf("%s: the code says nothing of its query parameters", o)
			continue
		}
		var documented []string
		for _, p := range o.op.Parameters {
			if p.Value.In == "query" {
				documented = append(documented, p.Value.Name)
			}
		}
		want = slices.Sorted(slices.Values(want))
		slices.Sort(documented)
		if !slices.Equal(documented, want) {
			t.Errorf("%s: documents query parameters %v, the code takes %v", o, documented, want)
		}
		delete(code, o.String())
	}
	for route := range code {
		t.Errorf("%s: in the code, not in the document", route)
	}
}
