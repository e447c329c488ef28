package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWithVersion(t *testing.T) {
	var seen string
	var newer bool
	h := WithVersion(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, newer = RequestVersion(r.Context()), AtLeast(r.Context(), V20261201)
	}))
	tests := []struct {
		header, want string
		newer        bool
		status       int
	}{
		{"", V20261101, false, 200},
		{V20261101, V20261101, false, 200},
		{V20261201, V20261201, true, 200},
		{V20270101, V20270101, true, 200},
		{"2099-01-01", "", false, 400},
	}
	for _, tt := range tests {
		seen, newer = "", false
		req := httptest.NewRequest("GET", "/", nil)
		if tt.header != "" {
			req.Header.Set(VersionHeader, tt.header)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.status || seen != tt.want || newer != tt.newer {
			t.Errorf("header %q: status %d version %q newer %v", tt.header, rec.Code, seen, newer)
		}
		if tt.status == 200 && rec.Header().Get(VersionHeader) != tt.want {
			t.Errorf("header %q: echoed %q", tt.header, rec.Header().Get(VersionHeader))
		}
	}
}
