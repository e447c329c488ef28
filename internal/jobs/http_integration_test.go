package jobs

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/tenant"
)

// jobRoutes mounts the job routes as the server does (minor version first),
// every request acting for ten.
func jobRoutes(s *Store, ten string) http.Handler {
	api := NewAPI(s, page.NewCodec([]byte("k"), 100), slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/jobs", api.List)
	mux.HandleFunc("GET /v1/jobs/count", api.Count)
	mux.HandleFunc("GET /v1/jobs/{jobId}", api.Get)
	mux.HandleFunc("GET /v1/jobs/{jobId}/errors", api.Errors)
	mux.HandleFunc("POST /v1/jobs/{jobId}/cancel", api.Cancel)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpapi.WithVersion(mux).ServeHTTP(w, r.WithContext(tenant.With(r.Context(), ten)))
	})
}

func call(h http.Handler, method, version, target string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	if version != "" {
		req.Header.Set(httpapi.VersionHeader, version)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestRoutesRefuseUnknownQueryParameters: a parameter a job route does not
// understand is answered 400 invalid_query naming it and the route's
// parameters, before anything is read or changed; the ones it takes pass.
func TestRoutesRefuseUnknownQueryParameters(t *testing.T) {
	s, _ := newStore(t)
	ten := newTenant("http")
	j := createCount(t, s, ten, 1)
	h := jobRoutes(s, ten)
	tests := []struct {
		method, route string
		unknown       string
		field         string
		takes         string // as the answer lists them
		known         string
		status        int
	}{
		{"GET", "/v1/jobs", "type=import", "type", "kind, status, pageSize, nextPage", "kind=count&status=pending&pageSize=5", 200},
		{"GET", "/v1/jobs/count", "pageSize=5", "pageSize", "kind, status", "kind=count&status=pending", 200},
		{"GET", "/v1/jobs/" + j.ID, "verbose=1", "verbose", "none", "", 200},
		{"GET", "/v1/jobs/" + j.ID + "/errors", "format=ndjson", "format", "none", "", 200},
		{"POST", "/v1/jobs/" + j.ID + "/cancel", "force=true", "force", "none", "", 202},
	}
	for _, tt := range tests {
		rec := call(h, tt.method, "", tt.route+"?"+tt.unknown)
		var p httpapi.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != 400 || p.Code != "invalid_query" || len(p.Errors) != 1 ||
			p.Errors[0].Field != tt.field || p.Errors[0].Reason != "unknown query parameter; this route takes "+tt.takes {
			t.Errorf("%s %s?%s: %d %s, want 400 naming %s and listing %s", tt.method, tt.route, tt.unknown, rec.Code, rec.Body, tt.field, tt.takes)
		}
		if rec := call(h, tt.method, "", tt.route+"?"+tt.known); rec.Code != tt.status {
			t.Errorf("%s %s?%s: %d %s, want %d", tt.method, tt.route, tt.known, rec.Code, rec.Body, tt.status)
		}
	}
	// The refused cancel changed nothing; the accepted one did.
	if got, err := s.CancelRequested(t.Context(), ten, j.ID); err != nil || !got {
		t.Errorf("cancel requested: %v %v", got, err)
	}
}

// TestListAnswersItemsFromV20270101: GET /v1/jobs names its array jobs
// before API version 2027-01-01 and items from it on.
func TestListAnswersItemsFromV20270101(t *testing.T) {
	s, _ := newStore(t)
	ten := newTenant("list")
	createCount(t, s, ten, 1)
	createCount(t, s, ten, 1)
	h := jobRoutes(s, ten)
	for _, tt := range []struct{ version, array string }{
		{"", "jobs"}, {httpapi.V20261101, "jobs"}, {httpapi.V20261201, "jobs"}, {httpapi.V20270101, "items"},
	} {
		rec := call(h, "GET", tt.version, "/v1/jobs?pageSize=1")
		var body map[string]json.RawMessage
		var items []View
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 200 {
			t.Fatalf("version %q: %d %s", tt.version, rec.Code, rec.Body)
		}
		if err := json.Unmarshal(body[tt.array], &items); err != nil || len(items) != 1 || items[0].ID == "" ||
			len(body) != 2 || body["nextPage"] == nil {
			t.Errorf("version %q: %s, want %s with one job and nextPage", tt.version, strings.TrimSpace(rec.Body.String()), tt.array)
		}
	}
}
