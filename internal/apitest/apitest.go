// Package apitest checks HTTP traffic against Kakin's OpenAPI document
// (schemas/openapi.yaml). Tests wrap their client's transport with a
// Validator: every request and every response that goes through it is
// validated, and every mismatch fails the test with the method, path, status
// and the validation error.
//
//	v := apitest.NewValidator(t)
//	client := &http.Client{Transport: v.Transport(http.DefaultTransport)}
//
// A response that does not match the document is always an error. A request
// that does not match it is an error only when the server did not refuse it
// (answered anything but 4xx): a server that accepts what the document
// forbids disagrees with it. Tests that send an invalid request on purpose and
// expect the server to take part of it anyway (a usage batch with some bad
// records, answered 202) mark it with ExpectInvalidRequest.
//
// Authentication is not checked here (any credentials pass): it has tests of
// its own. The package is a regular package, not a _test one, so that tests
// of any package can import it.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/kakin-dev/kakin/schemas/openapi"
)

func init() {
	// Usage intake takes NDJSON; the validator sees it as the array of its
	// lines' records, which is how the document describes it.
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", NDJSONBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/jsonl", NDJSONBodyDecoder)
}

// Validator validates traffic against the OpenAPI document.
type Validator struct {
	t      testing.TB
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options

	mu   sync.Mutex
	seen map[string]map[int]int // operationId -> status -> count
}

// Route is one operation of the document.
type Route struct {
	Method      string   // GET, POST, ...
	Path        string   // path template, e.g. /v1/clients/{clientId}
	OperationID string   // e.g. getClient
	Scopes      []string // scopes the bearer token needs (nil when Public)
	Public      bool     // no bearer token needed (docs, health, the token endpoint)
	PathParams  []string // names of the path template's parameters, in order
	HasBody     bool     // the operation takes a request body
}

// Expand fills the path template with vals (by parameter name).
func (r Route) Expand(vals map[string]string) string {
	p := r.Path
	for _, name := range r.PathParams {
		p = strings.ReplaceAll(p, "{"+name+"}", vals[name])
	}
	return p
}

// NewValidator loads the document (schemas.OpenAPI) and fails t at once if it
// does not load or validate.
func NewValidator(t testing.TB) *Validator {
	t.Helper()
	v, err := newValidator(t)
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	return v
}

func newValidator(t testing.TB) (*Validator, error) {
	doc, err := openapi.OpenAPI()
	if err != nil {
		return nil, err
	}
	// Match any host: the document's servers entry is relative ("/").
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    func(context.Context, *openapi3filter.AuthenticationInput) error { return nil },
		IncludeResponseStatus: true, // an undocumented status is an error
		MultiError:            true,
		SkipSettingDefaults:   true, // never change the request the server gets
		// Reasons and paths only: the bodies are printed with the error.
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()},
	}
	return &Validator{t: t, doc: doc, router: router, opts: opts, seen: map[string]map[int]int{}}, nil
}

// Doc returns the loaded document (do not change it).
func (v *Validator) Doc() *openapi3.T { return v.doc }

// Routes lists every operation of the document, sorted by path and method.
func (v *Validator) Routes() []Route {
	var out []Route
	for _, path := range v.doc.Paths.InMatchingOrder() {
		item := v.doc.Paths.Value(path)
		for method, op := range item.Operations() {
			r := Route{Method: method, Path: path, OperationID: op.OperationID, PathParams: pathParams(path),
				HasBody: op.RequestBody != nil}
			security := v.doc.Security
			if op.Security != nil {
				security = *op.Security
			}
			r.Scopes, r.Public = bearerScopes(v.doc, security)
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Route) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return out
}

// bearerScopes returns the scopes of the first requirement that uses a bearer
// scheme (oauth2, openIdConnect, or http bearer), and whether a request may
// go without one (no requirement, or an empty alternative).
func bearerScopes(doc *openapi3.T, security openapi3.SecurityRequirements) ([]string, bool) {
	if len(security) == 0 {
		return nil, true
	}
	var scopes []string
	needsBearer := true
	found := false
	for _, req := range security {
		bearer := false
		for name, sc := range req {
			ref := doc.Components.SecuritySchemes[name]
			if ref == nil || ref.Value == nil {
				continue
			}
			s := ref.Value
			if s.Type == "oauth2" || s.Type == "openIdConnect" || (s.Type == "http" && strings.EqualFold(s.Scheme, "bearer")) {
				bearer = true
				if !found {
					scopes, found = slices.Clone(sc), true
				}
			}
		}
		if !bearer {
			needsBearer = false
		}
	}
	if !needsBearer {
		return nil, true
	}
	return scopes, false
}

func pathParams(path string) []string {
	var out []string
	for rest := path; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return out
		}
		out = append(out, rest[i+1:i+j])
		rest = rest[i+j+1:]
	}
}

type invalidOKKey struct{}

// ExpectInvalidRequest marks req as deliberately not matching the document,
// so that its request validation errors are only logged, even when the
// server answers 2xx (a usage batch with some bad records gets 202). Its
// response is still validated.
func ExpectInvalidRequest(req *http.Request) *http.Request {
	return req.WithContext(context.WithValue(req.Context(), invalidOKKey{}, true))
}

func invalidOK(ctx context.Context) bool {
	ok, _ := ctx.Value(invalidOKKey{}).(bool)
	return ok
}

// Transport returns a RoundTripper that sends requests through base
// (http.DefaultTransport when nil) and validates each request and response.
// The response body is read in full and handed back unchanged.
func (v *Validator) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{v: v, base: base}
}

// Client returns an http.Client whose transport validates (see Transport).
func (v *Validator) Client() *http.Client {
	return &http.Client{Transport: v.Transport(nil)}
}

type transport struct {
	v    *Validator
	base http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	reqBody, err := readBody(req.Body)
	if err != nil {
		return nil, fmt.Errorf("apitest: reading request body: %w", err)
	}
	out := req.Clone(req.Context())
	setBody(out, reqBody)
	resp, err := tr.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("apitest: reading response body: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	tr.v.Check(req, reqBody, resp.StatusCode, resp.Header, respBody)
	return resp, nil
}

// Handler wraps h so that every request it serves and every response it
// writes is validated: for handler tests without a network round trip.
func (v *Validator) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqBody, err := readBody(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		setBody(r, reqBody)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r.Clone(r.Context()))
		v.Check(r, reqBody, rec.Code, rec.Header(), rec.Body.Bytes())
		for k, vals := range rec.Header() {
			w.Header()[k] = vals
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// Check validates one exchange: req (whose body was reqBody) answered with
// status, header and body. Mismatches are reported with t.Errorf.
func (v *Validator) Check(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) {
	t := v.t
	t.Helper()
	what := fmt.Sprintf("%s %s → %d", req.Method, req.URL.RequestURI(), status)

	vreq := req.Clone(req.Context())
	setBody(vreq, reqBody)
	route, pathParams, err := v.router.FindRoute(vreq)
	if err != nil {
		if invalidOK(req.Context()) {
			t.Logf("apitest: %s: (expected) no operation in the document: %v", what, err)
		} else {
			t.Errorf("apitest: %s: no operation in the document for this request: %v", what, err)
		}
		return
	}
	v.record(route.Operation.OperationID, status)

	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: pathParams, Route: route, Options: v.opts}
	if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
		switch {
		case invalidOK(req.Context()):
			t.Logf("apitest: %s: (expected) request does not match the document: %v", what, err)
		case status >= 400 && status < 500:
			t.Logf("apitest: %s: request does not match the document, and the server refused it: %v", what, err)
		default:
			t.Errorf("apitest: %s: request does not match the document, yet the server did not refuse it: %v\nrequest body: %s",
				what, err, clip(reqBody, 2000))
		}
	}
	// The request body was consumed by validation; the response check does
	// not need it.
	rin := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Options:                v.opts,
	}
	rin.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), rin); err != nil {
		t.Errorf("apitest: %s (%s): response does not match the document: %v\nresponse body: %s",
			what, route.Operation.OperationID, err, clip(body, 2000))
	}
}

func (v *Validator) record(op string, status int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen[op] == nil {
		v.seen[op] = map[int]int{}
	}
	v.seen[op][status]++
}

// Seen returns, per operationId, how many validated responses of each status
// went through the validator.
func (v *Validator) Seen() map[string]map[int]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]map[int]int, len(v.seen))
	for op, m := range v.seen {
		out[op] = make(map[int]int, len(m))
		for s, n := range m {
			out[op][s] = n
		}
	}
	return out
}

// Unvisited lists the routes no validated request reached.
func (v *Validator) Unvisited() []Route {
	seen := v.Seen()
	var out []Route
	for _, r := range v.Routes() {
		if len(seen[r.OperationID]) == 0 {
			out = append(out, r)
		}
	}
	return out
}

// NDJSONBodyDecoder decodes an NDJSON (JSON Lines) body into the array of
// its lines' values; blank lines are skipped, as the server does.
func NDJSONBodyDecoder(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for n, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(line))
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d is not JSON: %w", n+1, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("line %d holds more than one JSON value", n+1)
		}
		out = append(out, v)
	}
	return out, nil
}

func readBody(b io.ReadCloser) ([]byte, error) {
	if b == nil || b == http.NoBody {
		return nil, nil
	}
	defer b.Close()
	return io.ReadAll(b)
}

// setBody gives r a fresh body of data (and GetBody for re-reads).
func setBody(r *http.Request, data []byte) {
	if len(data) == 0 {
		r.Body, r.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
		r.ContentLength = 0
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	r.ContentLength = int64(len(data))
}

func clip(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
