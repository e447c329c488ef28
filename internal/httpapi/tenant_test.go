package httpapi

import (
	"net/http/httptest"
	"testing"

	"github.com/kakin-dev/kakin/internal/tenant"
)

func TestRequestTenant(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tenant string // "" : none in the context
		ok     bool
	}{
		{"authenticated", "acme", true},
		{"no tenant", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/jobs", nil)
			if tc.tenant != "" {
				r = r.WithContext(tenant.With(r.Context(), tc.tenant))
			}
			w := httptest.NewRecorder()
			got, ok := RequestTenant(w, r)
			if ok != tc.ok || got != tc.tenant {
				t.Fatalf("RequestTenant = %q, %v; want %q, %v", got, ok, tc.tenant, tc.ok)
			}
			if want := map[bool]int{true: 200, false: 401}[tc.ok]; w.Code != want {
				t.Errorf("status %d, want %d (%s)", w.Code, want, w.Body)
			}
		})
	}
}
