package catalogapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/internal/tenant"
)

// TestRoutesRefuseUnknownQueryParameters: every catalogue route answers a
// query parameter its OpenAPI operation does not document with 400
// invalid_query naming it and listing the route's parameters, before its
// handler runs (the API here has no store: reaching it would panic).
func TestRoutesRefuseUnknownQueryParameters(t *testing.T) {
	routes := New(nil, page.NewCodec([]byte("k"), 100), nil).Routes()
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle(rt.Pattern(), rt.Handler)
	}
	pathParam := regexp.MustCompile(`\{[^}]+\}`)
	for _, rt := range routes {
		takes := "none"
		if len(rt.QueryParams()) > 0 {
			takes = strings.Join(rt.QueryParams(), ", ")
		}
		unknown := []string{"colour"}
		if !slices.Contains(rt.QueryParams(), "pageSize") {
			unknown = append(unknown, "pageSize") // a count, a read or a write is not paged
		}
		for _, name := range unknown {
			target := pathParam.ReplaceAllString(rt.Path, "x") + "?" + name + "=1"
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(rt.Method, target, strings.NewReader("{}"))
			mux.ServeHTTP(rec, req.WithContext(tenant.With(req.Context(), "acme")))
			var p httpapi.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != 400 || p.Code != "invalid_query" || len(p.Errors) != 1 ||
				p.Errors[0].Field != name || p.Errors[0].Reason != "unknown query parameter; this route takes "+takes {
				t.Errorf("%s %s: %d %s, want 400 naming %s and listing %s", rt.Method, target, rec.Code, rec.Body, name, takes)
			}
		}
	}
}
